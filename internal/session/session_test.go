package session

import (
	"bufio"
	"os"
	"strconv"
	"testing"
	"time"

	"sshguard-go/internal/detect"
)

// offline builds the sessions of the recorded logs (scripts/record-sessions.sh).
func offline(t *testing.T, withAudit bool) []*Session {
	t.Helper()
	o := NewOffline()
	if withAudit {
		each(t, "../../testdata/sessions/audit.log", o.AuditLine)
	}
	var sc detect.Scanner
	each(t, "../../testdata/sessions/auth.log", func(line string) { sc.Line("auth.log", 0, line, o.Record) })
	sc.Flush(o.Record)
	return o.Sessions()
}

func each(t *testing.T, path string, f func(string)) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	s := bufio.NewScanner(file)
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		f(s.Text())
	}
}

// TestRecordedSessions: the five recorded sessions, each with its user,
// address, method, key, duration, end reason, transfers and commands.
func TestRecordedSessions(t *testing.T) {
	got := offline(t, true)
	if len(got) != 5 {
		t.Fatalf("%d sessions", len(got))
	}
	want := []struct {
		method, end string
		transfers   int
		minDur      float64
	}{
		{"password", EndLogout, 0, 0}, {"publickey", EndLogout, 2, 0}, {"publickey", EndKilled, 0, 1},
		{"publickey", EndTimeout, 0, 4}, {"publickey", EndKilled, 0, 1},
	}
	for i, s := range got {
		w := want[i]
		if s.User != "sgtest" || s.IP != "10.200.1.2" || s.Port == 0 || s.Method != w.method || s.EndReason != w.end ||
			len(s.Transfers) != w.transfers || s.End == nil || s.Duration < w.minDur || s.Active || s.AuditID == 0 {
			t.Errorf("session %d: %+v", i+1, s)
		}
		if w.method == "publickey" && s.Key == "" {
			t.Errorf("session %d: no key", i+1)
		}
	}
	up, down := got[1].Transfers[0], got[1].Transfers[1]
	if up.Path != "/home/sgtest/up.bin" || up.BytesWritten != 100000 || up.BytesRead != 0 || down.BytesRead != 100000 || down.BytesWritten != 0 {
		t.Errorf("transfers %+v", got[1].Transfers)
	}
	// The first ran id, ls and echo (a shell builtin: not an execve) through bash -c.
	var argv [][]string
	for _, c := range got[0].Commands {
		argv = append(argv, c.Argv)
	}
	found := map[string]bool{}
	for _, a := range argv {
		found[a[0]] = true
		if a[0] == "bash" && (len(a) != 3 || a[2] != `id; ls /tmp >/dev/null; echo "two words" > /tmp/sg-ses-test`) {
			t.Errorf("bash -c decoded as %q", a)
		}
	}
	if !found["id"] || !found["ls"] || !found["bash"] {
		t.Errorf("commands of session 1: %q", argv)
	}
	for _, c := range got[0].Commands {
		if c.Argv[0] == "id" && (c.Cwd != "/home/sgtest" || c.Exit != 0 || c.Time.Before(got[0].Start) || c.Time.After(*got[0].End)) {
			t.Errorf("id: %+v", c)
		}
	}
	// Without the audit log: the same sessions, no commands.
	for i, s := range offline(t, false) {
		if len(s.Commands) != 0 || s.AuditID != 0 || s.EndReason != got[i].EndReason {
			t.Errorf("without audit, session %d: %+v", i+1, s)
		}
	}
}

// TestTrackerBounds: a wave of accepted connections that never end is
// held to MaxOpen; the oldest give way as "unknown".
func TestTrackerBounds(t *testing.T) {
	tr := NewTracker()
	ended := 0
	tr.OnEnd = func(s *Session) {
		if s.EndReason == EndUnknown {
			ended++
		}
	}
	base := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	var sc detect.Scanner
	for i := range MaxOpen + 500 {
		line := base.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02T15:04:05.000000-07:00") +
			" h sshd[" + itoa(1000+i) + "]: Accepted password for u from 192.0.2.1 port " + itoa(1024+i%60000) + " ssh2"
		sc.Line("x", 0, line, tr.Record)
	}
	if n := len(tr.Open()); n != MaxOpen || ended != 500 {
		t.Fatalf("%d open, %d given way", n, ended)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestTrackerYear: a year's worth of sessions that end keeps nothing of
// them in the Tracker.
func TestTrackerYear(t *testing.T) {
	tr := NewTracker()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var sc detect.Scanner
	for i := range 100000 {
		at := base.Add(time.Duration(i) * 5 * time.Minute)
		stamp := func(d time.Duration) string { return at.Add(d).Format("2006-01-02T15:04:05.000000-07:00") }
		pid, port := itoa(1000+i%30000), itoa(1024+i%60000)
		sc.Line("x", 0, stamp(0)+" h sshd["+pid+"]: Accepted password for u from 192.0.2.1 port "+port+" ssh2", tr.Record)
		sc.Line("x", 0, stamp(time.Second)+" h sshd["+pid+"]: pam_unix(sshd:session): session closed for user u", tr.Record)
	}
	if len(tr.open) != 0 || len(tr.peers) != 0 || len(tr.order) > 1024+1 || len(tr.ended) > MaxOpen {
		t.Fatalf("kept: %d open, %d peers, %d in order, %d ended", len(tr.open), len(tr.peers), len(tr.order), len(tr.ended))
	}
}
