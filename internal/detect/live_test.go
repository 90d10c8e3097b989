package detect

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/roottest"
)

// TestLiveSSHD records a fresh log from a real OpenSSH sshd and rsyslogd in
// a network namespace, attacked by a real ssh client from another one over
// a veth pair (scripts/record-samples.sh), and checks what scan makes of it:
// every guess counted once for the real client, the spoofed user names
// never attributed to the addresses they carry, logins and sftp seen.
func TestLiveSSHD(t *testing.T) {
	roottest.Require(t, "sshd", "rsyslogd", "sshpass", "ip", "ssh")
	roottest.Lock(t, "sgtest") // the account the labs log in as: one lab at a time
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/record-samples.sh", dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("record-samples.sh: %v\n%s", err, out)
	}
	for _, name := range []string{"openssh-9.2-traditional.log", "openssh-9.2-rfc3339.log"} {
		var s Scanner
		s.OnUnrecognised = func(_ string, _ int64, text, _ string) {
			if strings.Contains(text, "10.200.0.2") || strings.Contains(text, "fd00:200::2") {
				t.Errorf("%s: line about the client not recognised: %s", name, text)
			}
		}
		failures := map[string]int{}
		probes := map[string]int{}
		logins, sftp := 0, 0
		emit := func(r *Record) {
			switch r.Kind {
			case KindFailure:
				failures[r.Client()] += r.Counted
			case KindProbe:
				probes[r.Client()] += r.Counted
			case KindSuccess:
				logins++
			case KindTransfer:
				sftp++
			}
		}
		scanFile(t, &s, filepath.Join(dir, name), time.Now(), emit)
		s.Flush(emit)
		// admin, sgtest, root, baduser, the two spoofing names, and the
		// wrong key: seven guesses over IPv4, one over IPv6.
		if failures["10.200.0.2"] != 7 || failures["fd00:200::2"] != 1 {
			t.Errorf("%s: failures %v, want 7 for 10.200.0.2 and 1 for fd00:200::2", name, failures)
		}
		for _, spoofed := range []string{"10.9.9.9", "10.9.9.8"} {
			if failures[spoofed] != 0 || probes[spoofed] != 0 {
				t.Errorf("%s: spoofed address %s was attributed events", name, spoofed)
			}
		}
		if probes["10.200.0.2"] < 3 {
			t.Errorf("%s: probes %v, want at least 3 (close, garbage banner, bad kex)", name, probes)
		}
		if logins != 3 || sftp < 4 {
			t.Errorf("%s: %d logins and %d sftp events, want 3 and at least 4", name, logins, sftp)
		}
	}
}
