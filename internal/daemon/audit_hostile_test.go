package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/session"
	"sshguard-go/internal/testkit"
)

// auditEvent is one execve of audit session ses, as auditd writes it.
func auditEvent(at time.Time, serial, ses int, argv ...string) string {
	stamp := fmt.Sprintf("%d.%03d:%d", at.Unix(), at.Nanosecond()/1e6, serial)
	var b strings.Builder
	fmt.Fprintf(&b, "type=SYSCALL msg=audit(%s): arch=c000003e syscall=59 success=yes exit=0 ses=%d comm=\"sh\"\n", stamp, ses)
	fmt.Fprintf(&b, "type=EXECVE msg=audit(%s): argc=%d", stamp, len(argv))
	for i, a := range argv {
		fmt.Fprintf(&b, " a%d=%q", i, a)
	}
	fmt.Fprintf(&b, "\ntype=CWD msg=audit(%s): cwd=\"/home/mallory\"\ntype=EOE msg=audit(%s): \n", stamp, stamp)
	return b.String()
}

// TestBanWhileAuditTrailBusy: a local user's session floods the audit
// log with huge commands while an attacker guesses passwords. The ban
// comes while the audit trail is held blocked (its lock taken: the sshd
// pipeline never waits on it), and the session's stored record stays
// within its bound, what was dropped counted in it.
func TestBanWhileAuditTrailBusy(t *testing.T) {
	h := newHarness(t)
	audit := filepath.Join(h.dir, "audit.log")
	os.WriteFile(audit, nil, 0o600)
	writeConfig(t, h.dir, fmt.Sprintf("[audit]\nlog = %q\n", audit))
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	testkit.Eventually(t, 10*time.Second, "the audit log followed", func() (bool, string) {
		_, ok := h.d.sess.status()
		return ok, ""
	})
	af, err := os.OpenFile(audit, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer af.Close()
	const pid, ses = 4100001, 9001
	now := time.Now()
	h.sessionLine(pid, "Accepted password for mallory from 198.51.100.20 port 50100 ssh2")
	fmt.Fprintf(af, "type=LOGIN msg=audit(%d.000:1): pid=%d uid=0 old-auid=4294967295 auid=1001 tty=(none) old-ses=4294967295 ses=%d res=1\n", now.Unix(), pid, ses)
	testkit.Eventually(t, 10*time.Second, "the session joined to its audit session", func() (bool, string) {
		ss := stored(t, h.d)
		return len(ss) == 1 && ss[0].AuditID == ses, fmt.Sprint(len(ss))
	})

	// The hostile stream: 600 commands of 64 arguments of 250 bytes.
	const n = 600
	arg := strings.Repeat("A", 250)
	argv := make([]string, 64)
	for i := range argv {
		argv[i] = arg
	}
	var b strings.Builder
	for i := range n {
		b.WriteString(auditEvent(now, 100+i, ses, argv...))
	}
	if _, err := af.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}

	// The audit trail held: the ban must not wait for it.
	h.d.sess.mu.Lock()
	locked := true
	defer func() {
		if locked {
			h.d.sess.mu.Unlock()
		}
	}()
	for i := range 10 {
		h.logf("Failed password for root from 203.0.113.50 port %d ssh2", 41000+i)
	}
	testkit.Eventually(t, 20*time.Second, "the ban, with the audit trail blocked", func() (bool, string) {
		return h.fw.has("203.0.113.50/32"), ""
	})
	h.d.sess.mu.Unlock()
	locked = false

	h.sessionLine(pid, "pam_unix(sshd:session): session closed for user mallory")
	testkit.Eventually(t, 30*time.Second, "the session ended with every command kept or counted", func() (bool, string) {
		h.d.sess.sweep()
		ss := stored(t, h.d)
		if len(ss) != 1 {
			return false, fmt.Sprint(len(ss))
		}
		s := ss[0]
		var kept int64
		for i := range s.Commands {
			kept += s.Commands[i].Size()
		}
		if kept > session.MaxSessionCommandBytes {
			t.Fatalf("%d bytes of commands kept", kept)
		}
		return !s.Active && len(s.Commands)+s.CommandsMore == n && s.CommandsMore > 0 && s.CommandBytesMore > 0,
			fmt.Sprintf("active %v, %d kept (%d bytes), %d dropped (%d bytes)", s.Active, len(s.Commands), kept, s.CommandsMore, s.CommandBytesMore)
	})
}

// TestSessionQueueDrops: when the audit trail's queue is full, submit
// drops the record and counts it, without waiting.
func TestSessionQueueDrops(t *testing.T) {
	s := &sessions{in: make(chan detect.Record, 2), log: slog.New(slog.DiscardHandler)}
	r := &detect.Record{}
	for range 5 {
		s.submit(r)
	}
	if len(s.in) != 2 || s.dropped.Load() != 3 {
		t.Fatalf("queued %d, dropped %d", len(s.in), s.dropped.Load())
	}
}
