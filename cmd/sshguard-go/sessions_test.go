package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/session"
	"sshguard-go/internal/testkit"
)

// TestSessionsEndToEnd: a real sshd with PAM and rsyslog in one namespace,
// real ssh and sftp clients in another: a password login, a key login
// with an sftp upload and download of files of known sizes, a session
// killed by the server (pkill -KILL -P of its sshd), and a session during
// which the daemon restarts. "sessions --json" from the daemon shows each
// with its user, address, method, key fingerprint, bytes, duration and
// end reason, and "sessions FILE" offline agrees on the same log.
func TestSessionsEndToEnd(t *testing.T) {
	l := newLab(t, "sgs", true, "sftp", "pkill")
	os.WriteFile(l.dir+"/sshguard-go.toml", []byte("[audit]\nlog = \"\"\n"), 0o600)
	l.start()
	const server, client = "10.200.9.1", "10.200.9.3"
	key := l.dir + "/userkey"
	ssh := func(args ...string) *exec.Cmd {
		return exec.Command("ip", append([]string{"netns", "exec", l.cli, "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key, "-b", client, "sgtest@" + server}, args...)...)
	}
	sessions := func(args ...string) []*session.Session {
		t.Helper()
		out, err := l.sg(append([]string{"sessions", "--json"}, args...)...)
		var list []*session.Session
		if err != nil || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("sessions: %v\n%s", err, out)
		}
		return list
	}
	waitSessions := func(what string, ok func([]*session.Session) bool, args ...string) []*session.Session {
		t.Helper()
		var list []*session.Session
		testkit.Eventually(t, 20*time.Second, what, func() (bool, string) {
			list = sessions(args...)
			b, _ := json.Marshal(list)
			return ok(list), string(b)
		})
		return list
	}

	// 1. A password login.
	if out, err := l.login(server, "sgtest", "right-password", client); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	// 2. A key login with sftp: 123,457 bytes up, the same down.
	up := make([]byte, 123457)
	rand.Read(up)
	os.WriteFile(l.dir+"/up.bin", up, 0o644)
	sftp := exec.Command("ip", "netns", "exec", l.cli, "sftp", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BindAddress="+client, "-i", key, "-b", "-", "sgtest@"+server)
	sftp.Stdin = strings.NewReader(fmt.Sprintf("put %s/up.bin sg-up.bin\nget sg-up.bin %s/down.bin\n", l.dir, l.dir))
	if out, err := sftp.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	if down, _ := os.ReadFile(l.dir + "/down.bin"); len(down) != len(up) {
		t.Fatalf("downloaded %d bytes", len(down))
	}
	// 3. A session killed on the server: the children of its sshd.
	killed := ssh("sleep 30")
	killed.Start()
	// The third session, open; the two before it ended (their records are
	// written within a moment of their lines).
	open := func(n int) func([]*session.Session) bool {
		return func(l []*session.Session) bool {
			for i, s := range l {
				if s.Active != (i == n-1) {
					return false
				}
			}
			return len(l) == n
		}
	}
	all := waitSessions("the sleeping session open", open(3))
	time.Sleep(time.Second)
	l.sh("pkill", "-KILL", "-P", fmt.Sprint(all[2].PID))
	killed.Wait()
	// 4. A session open across a restart of the daemon.
	long := ssh("sleep 4")
	long.Start()
	waitSessions("the second sleeping session open", open(4))
	l.stop()
	l.start()
	if err := long.Wait(); err != nil {
		t.Fatalf("the session across the restart: %v", err)
	}

	got := waitSessions("four sessions ended", func(l []*session.Session) bool {
		return len(l) == 4 && !l[0].Active && !l[1].Active && !l[2].Active && !l[3].Active
	})
	fp := strings.Fields(l.sh("ssh-keygen", "-lf", key+".pub"))[1] // SHA256:...
	want := []struct {
		method, end string
		minDur      float64
	}{{"password", session.EndLogout, 0}, {"publickey", session.EndLogout, 0}, {"publickey", session.EndKilled, 1}, {"publickey", session.EndLogout, 4}}
	for i, s := range got {
		w := want[i]
		if s.User != "sgtest" || s.IP != client || s.Port == 0 || s.Method != w.method || s.EndReason != w.end || s.End == nil || s.Duration < w.minDur {
			t.Errorf("session %d: %+v", i+1, s)
		}
		if w.method == "publickey" && s.Key != "ED25519 "+fp {
			t.Errorf("session %d: key %q, want ED25519 %s", i+1, s.Key, fp)
		}
	}
	tr := got[1].Transfers
	if len(tr) != 2 || tr[0].BytesWritten != int64(len(up)) || tr[0].BytesRead != 0 || tr[1].BytesRead != int64(len(up)) || !strings.HasSuffix(tr[0].Path, "/sg-up.bin") {
		t.Errorf("transfers %+v", tr)
	}
	if text, _ := l.sg("sessions"); !strings.Contains(text, "killed") || !strings.Contains(text, "2 (241.1 KiB)") {
		t.Errorf("sessions (table):\n%s", text)
	}
	if h, err := l.sg("history", "sgtest"); err != nil || !strings.Contains(h, "Sources: "+client+" 4") || !strings.Contains(h, "sg-up.bin  read 0  written 123457") {
		t.Errorf("history: %v\n%s", err, h)
	}

	// Offline, from the same log: the same sessions.
	out, err := l.sg("sessions", "--json", l.dir+"/auth.log")
	var off []*session.Session
	if err != nil || json.Unmarshal([]byte(out), &off) != nil || len(off) != 4 {
		t.Fatalf("offline: %v\n%s", err, out)
	}
	for i := range off {
		a, b := off[i], got[i]
		if a.User != b.User || a.IP != b.IP || a.Port != b.Port || a.Method != b.Method || a.Key != b.Key || a.EndReason != b.EndReason ||
			!a.Start.Equal(b.Start) || !a.End.Equal(*b.End) || len(a.Transfers) != len(b.Transfers) {
			t.Errorf("session %d offline %+v, daemon %+v", i+1, a, b)
		}
	}
}
