package detect

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// FuzzJournalJSON: whatever a journal entry holds (its JSON, byte-array
// values, repeated fields), reading it neither panics nor believes it
// beyond what journald's trusted fields allow: an event other than a
// transfer only from sshd's own processes running as root. Seeded with
// the journal entries of the recorded samples and of the trust tests.
func FuzzJournalJSON(f *testing.F) {
	for _, name := range []string{"../../testdata/samples/openssh-versions.log", "../../testdata/samples/openssh-older.log"} {
		file, err := os.Open(name)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "{") {
				f.Add(sc.Text())
			}
		}
		file.Close()
	}
	f.Add(`{"SYSLOG_IDENTIFIER":"sftp-server","_COMM":"sftp-server","_UID":"1000","_PID":"9","MESSAGE":"Failed password for root from 192.0.2.13 port 22 ssh2"}`)
	f.Add(`{"SYSLOG_IDENTIFIER":"sshd","_COMM":[115,115,104,100],"_UID":[48],"_PID":"9","MESSAGE":[70,97,105,108,101,100,32]}`)
	f.Add(`{"SYSLOG_IDENTIFIER":["sshd","cron"],"_COMM":"bash","_UID":"1000","_SYSTEMD_UNIT":"ssh.service","MESSAGE":"Invalid user a from 192.0.2.1 port 1"}`)
	f.Fuzz(func(t *testing.T, line string) {
		var s Scanner
		var r Record
		if !s.Parse("journald", 1, line, &r) {
			return
		}
		var e journalEntry
		if json.Unmarshal([]byte(line), &e) != nil {
			return // not JSON: read as a plain line
		}
		comm, uid := journalValue(e.Comm), journalValue(e.UID)
		root := uid == "0" && (comm == "sshd" || comm == "sshd-session" || comm == "sshd-auth")
		if strings.HasPrefix(strings.TrimSpace(line), "{") && len(e.Message) > 0 && r.Kind != KindTransfer && !root {
			t.Fatalf("believed %v %q from _COMM %q _UID %q: %q", r.Kind, r.Reason, comm, uid, line)
		}
	})
}
