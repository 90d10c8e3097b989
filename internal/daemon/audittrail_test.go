package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// sessionLine appends an sshd line of host web-01's pid, stamped now.
func (h *harness) sessionLine(pid int, format string, args ...any) {
	h.t.Helper()
	f, err := os.OpenFile(filepath.Join(h.dir, "auth.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s sshd[%d]: %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00"), h.d.sess.host, pid, fmt.Sprintf(format, args...))
}

// stored reads every session of the database.
func stored(t *testing.T, d *Daemon) []*session.Session {
	t.Helper()
	var out []*session.Session
	d.db.Sessions(time.Time{}, func(v []byte, chunks [][]byte) bool {
		s, err := session.UnmarshalChunks(v, chunks)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
		return true
	})
	return out
}

// TestSessionSweep: a session left open by a daemon that stopped, whose
// sshd is gone, is ended as daemon_restart by the next daemon's sweep; one
// whose sshd vanished without a word while the daemon ran (no PAM) as
// killed; one whose sshd still runs stays open.
func TestSessionSweep(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n")
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	db, err := store.Open(filepath.Join(h.dir, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	old := &session.Session{Host: host, PID: 4000001, User: "alice", IP: "198.51.100.7", Port: 50000, Method: "publickey",
		Start: time.Now().Add(-time.Hour), Active: true}
	db.PutSession(store.SessionKey(old.Start, old.Host, old.PID), old.Marshal(), true)
	db.Close()
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	alive := map[int]bool{4000003: true}
	h.d.sess.mu.Lock()
	h.d.sess.alive = func(pid int) bool { return alive[pid] }
	h.d.sess.mu.Unlock()
	h.sessionLine(4000002, "Accepted password for bob from 198.51.100.8 port 50001 ssh2")
	h.sessionLine(4000003, "Accepted password for carol from 198.51.100.9 port 50002 ssh2")
	testkit.Eventually(t, 5*time.Second, "three sessions stored", func() (bool, string) {
		n := len(stored(t, h.d))
		return n == 3, fmt.Sprint(n)
	})
	h.d.sess.mu.Lock()
	h.d.sess.now = func() time.Time { return time.Now().Add(time.Minute) }
	h.d.sess.mu.Unlock()
	h.d.sess.sweep()
	ends := map[string]string{}
	for _, s := range stored(t, h.d) {
		ends[s.User] = s.EndReason
	}
	if ends["alice"] != session.EndRestart || ends["bob"] != session.EndKilled || ends["carol"] != "" {
		t.Fatalf("end reasons %v", ends)
	}
	var live []string
	h.d.db.ActiveSessions(func(v []byte, _ [][]byte) bool {
		s, _ := session.Unmarshal(v)
		live = append(live, s.User)
		return true
	})
	if len(live) != 1 || live[0] != "carol" {
		t.Fatalf("live %v", live)
	}
}

// TestSessionAlerts: with the three audit trail alerts on, a failed
// attempt at a local account (not at a dictionary name), a session that
// moves more than transfer_alert_bytes and one open longer than
// session_alert_after each reach the mail server once.
func TestSessionAlerts(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	h := newHarness(t)
	p := alerttest.WriteConfig(t, h.dir, s, "[audit]\nlog = \"\"\n")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, []byte(strings.Replace(string(b), "[alerts]\n",
		"[alerts]\ntargeted_failures = true\ntransfer_alert_bytes = 1000\nsession_alert_after = \"1m\"\n", 1)), 0o600)
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	h.d.sess.mu.Lock()
	h.d.sess.users = func() map[string]bool { return map[string]bool{"alice": true} }
	h.d.sess.mu.Unlock()
	read := h.d.Stats().Scan.Lines
	h.sessionLine(5001, "Failed password for alice from 203.0.113.5 port 40000 ssh2")
	h.sessionLine(5002, "Failed password for alice from 203.0.113.5 port 40001 ssh2") // de-duplicated
	h.sessionLine(5003, "Failed password for root from 203.0.113.5 port 40002 ssh2")  // not a local account here
	h.sessionLine(5010, "Accepted publickey for alice from 198.51.100.7 port 50000 ssh2: ED25519 SHA256:abc")
	f, _ := os.OpenFile(filepath.Join(h.dir, "auth.log"), os.O_APPEND|os.O_WRONLY, 0o644)
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000000-07:00")
	fmt.Fprintf(f, "%s %s internal-sftp[5011]: session opened for local user alice from [198.51.100.7]\n", stamp, h.d.sess.host)
	fmt.Fprintf(f, "%s %s internal-sftp[5011]: close \"/home/alice/db.dump\" bytes read 250000 written 0\n", stamp, h.d.sess.host)
	f.Close()
	// The six lines read (the transfer's among them) before the clock
	// moves on: a sweep first would end the session before its transfer.
	testkit.Eventually(t, 5*time.Second, "every line read", func() (bool, string) {
		n := h.d.Stats().Scan.Lines
		return n == read+6 && len(stored(t, h.d)) == 1, fmt.Sprint(n-read, " of 6")
	})
	h.d.sess.mu.Lock()
	h.d.sess.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	h.d.sess.mu.Unlock()
	h.d.sess.sweep()
	h.d.sess.sweep() // once each
	var subjects []string
	testkit.Eventually(t, 10*time.Second, "three session alerts", func() (bool, string) {
		subjects = subjects[:0]
		for _, m := range s.Mails() {
			if m.Header.Get("X-Sshguard-Kind") == "session" {
				subjects = append(subjects, m.Header.Get("Subject"))
			}
		}
		return len(subjects) >= 3, fmt.Sprintf("%q", subjects)
	})
	time.Sleep(500 * time.Millisecond) // and no fourth
	n := 0
	for _, m := range s.Mails() {
		if m.Header.Get("X-Sshguard-Kind") == "session" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d session mails in the end", n)
	}
	want := []string{"targeted guess: 1 failed attempts at local account alice from 203.0.113.5", "moved 244.1 KiB", "open for 2m"}
	if n := len(subjects); n != 3 {
		t.Fatalf("%d session mails: %q", n, subjects)
	}
	for _, w := range want {
		found := false
		for _, sub := range subjects {
			found = found || strings.Contains(sub, w)
		}
		if !found {
			t.Errorf("no mail with %q in %q", w, subjects)
		}
	}
}

// TestSessionsFromAuditLog: the daemon follows an audit log beside the
// auth log; the recorded sessions, their lines appended to both (the
// audit records after sshd's, as a slow audit log would bring them), end
// up stored with the commands the offline builder finds in the same files.
func TestSessionsFromAuditLog(t *testing.T) {
	h := newHarness(t)
	audit := filepath.Join(h.dir, "audit.log")
	os.WriteFile(audit, nil, 0o600)
	writeConfig(t, h.dir, fmt.Sprintf("[audit]\nlog = %q\n", audit))
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	testkit.Eventually(t, 5*time.Second, "the audit log followed", func() (bool, string) {
		_, ok := h.d.sess.status()
		return ok, ""
	})
	appendFile := func(dst, src string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0o644)
		f.Write(b)
		f.Close()
	}
	appendFile(filepath.Join(h.dir, "auth.log"), "../../testdata/sessions/auth.log")
	testkit.Eventually(t, 5*time.Second, "five sessions ended", func() (bool, string) {
		ss := stored(t, h.d)
		return len(ss) == 5 && !ss[4].Active, fmt.Sprint(len(ss))
	})
	appendFile(audit, "../../testdata/sessions/audit.log")
	o := session.NewOffline()
	for _, name := range []string{"audit.log", "auth.log"} {
		b, _ := os.ReadFile("../../testdata/sessions/" + name)
		var sc detect.Scanner
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if name == "audit.log" {
				o.AuditLine(line)
			} else {
				sc.Line(name, 0, line, o.Record)
			}
		}
		sc.Flush(o.Record)
	}
	want := o.Sessions()
	testkit.Eventually(t, 5*time.Second, "the commands joined", func() (bool, string) {
		h.d.sess.sweep() // flushes the audit event being gathered
		got := stored(t, h.d)
		var diff []string
		for i, s := range got {
			if len(s.Commands) != len(want[i].Commands) || s.AuditID != want[i].AuditID || s.EndReason != want[i].EndReason {
				diff = append(diff, fmt.Sprintf("session %d: %d commands (audit %d), offline %d (audit %d)", i+1, len(s.Commands), s.AuditID,
					len(want[i].Commands), want[i].AuditID))
			}
		}
		return len(got) == len(want) && len(diff) == 0, strings.Join(diff, "; ")
	})
}

// TestLocalAccounts: the accounts of a passwd file from a uid on
// (nobody left out), read again when the threshold changes.
func TestLocalAccounts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(p, []byte("root:x:0:0::/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\nsvc:x:999:999::/:/bin/false\n"), 0o644)
	min := 1000
	users := localAccounts(p, func() int { return min })
	if u := users(); len(u) != 1 || !u["alice"] {
		t.Fatalf("%v", u)
	}
	min = 0
	if u := users(); len(u) != 3 || !u["root"] || !u["svc"] || u["nobody"] {
		t.Fatalf("after the threshold changed: %v", u)
	}
}
