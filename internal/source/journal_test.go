package source

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"
)

// journalRemote is systemd-journal-remote, which writes real journal files
// from the export format. Debian installs it outside $PATH.
func journalRemote(t *testing.T) string {
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			if _, err := exec.LookPath("journalctl"); err == nil {
				return p
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("systemd-journal-remote and journalctl are required in CI (apt-get install systemd-journal-remote)")
	}
	t.Skip("systemd-journal-remote or journalctl not installed")
	return ""
}

// appendJournal writes entries to a journal file with systemd-journal-remote.
func appendJournal(t *testing.T, remote, file string, pid int, msgs ...string) {
	t.Helper()
	var b strings.Builder
	for i, m := range msgs {
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=jhost\nSYSLOG_IDENTIFIER=%s\n_COMM=sshd\n_UID=0\n_PID=%d\nMESSAGE=%s\n\n",
			time.Now().UnixMicro()+int64(i), time.Now().UnixMicro(), "sshd", pid, m)
	}
	in := filepath.Join(t.TempDir(), "in.export")
	os.WriteFile(in, []byte(b.String()), 0o644)
	if out, err := exec.Command(remote, "--output="+file, in).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", remote, err, out)
	}
}

func TestJournalFollowAndResume(t *testing.T) {
	remote := journalRemote(t)
	file := filepath.Join(t.TempDir(), "sshd.journal")
	appendJournal(t, remote, file, 100, "Invalid user a from 192.0.2.1 port 1", "Failed password for invalid user a from 192.0.2.1 port 1 ssh2")

	var mu sync.Mutex
	var got []detect.Record
	var cursor string
	var s detect.Scanner
	collect := func(line, c string) {
		mu.Lock()
		defer mu.Unlock()
		cursor = c
		s.Line("journald", 0, line, func(r *detect.Record) { got = append(got, *r) })
	}
	waitFor := func(n int) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, fmt.Sprintf("%d records", n), func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= n, fmt.Sprint(len(got))
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	j := &Journal{Args: []string{"--file=" + file}, FromStart: true}
	done := make(chan error, 1)
	go func() { done <- j.Run(ctx, collect) }()
	waitFor(2)
	appendJournal(t, remote, file, 101, "Invalid user b from 2001:db8::2 port 2")
	waitFor(3)
	cancel()
	<-done

	mu.Lock()
	saved := cursor
	if got[0].Reason != "invalid_user" || got[0].Client() != "192.0.2.1" || got[0].Host != "jhost" || got[0].PID != 100 || got[0].Counted != 1 {
		t.Errorf("first record %+v", got[0].Event)
	}
	if got[1].Counted != 0 || got[2].Client() != "2001:db8::2" {
		t.Errorf("records %+v %+v", got[1].Event, got[2].Event)
	}
	got = nil
	mu.Unlock()

	// Entries written while stopped arrive after the saved cursor, and
	// nothing before it is repeated.
	appendJournal(t, remote, file, 102, "Invalid user c from 192.0.2.3 port 3")
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	j2 := &Journal{Args: []string{"--file=" + file}, Cursor: saved}
	go func() { done <- j2.Run(ctx, collect) }()
	waitFor(1)
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].Client() != "192.0.2.3" {
		t.Fatalf("after resume: %d records, first %+v", len(got), got)
	}
}

func TestJournalMissingCommand(t *testing.T) {
	j := &Journal{Command: "/nonexistent/journalctl"}
	err := j.Run(context.Background(), func(string, string) {})
	if err == nil || !strings.Contains(err.Error(), "journald source") {
		t.Fatalf("err = %v", err)
	}
}

// TestJournalStartsAtRun: without a cursor, an entry written after Run
// was called but before journalctl has started is delivered; one
// written before Run is not.
func TestJournalStartsAtRun(t *testing.T) {
	remote := journalRemote(t)
	file := filepath.Join(t.TempDir(), "sshd.journal")
	appendJournal(t, remote, file, 100, "Invalid user old from 192.0.2.1 port 1")
	time.Sleep(10 * time.Millisecond)
	var mu sync.Mutex
	var got []string
	j := &Journal{Args: []string{"--file=" + file}, Ready: func() {
		appendJournal(t, remote, file, 101, "Invalid user new from 192.0.2.2 port 2")
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- j.Run(ctx, func(line, _ string) {
			mu.Lock()
			got = append(got, line)
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()
	testkit.Eventually(t, 10*time.Second, "an entry", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0, "none"
	})
	time.Sleep(300 * time.Millisecond) // room for entries that should not come
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "Invalid user new") {
		t.Fatalf("got %q, want only the entry written after Run", got)
	}
}

// TestJournalArgsMachineID: with a machine ID, every boot of this machine
// is read (no implicit current-boot filter), and no remote journal.
func TestJournalArgsMachineID(t *testing.T) {
	a := strings.Join((&Journal{MachineID: "c0fbafd06de048e68c2a04de3f36dff1", Cursor: "s=1"}).args(), " ")
	for _, want := range []string{"--merge", "_MACHINE_ID=c0fbafd06de048e68c2a04de3f36dff1", "--after-cursor=s=1", "SYSLOG_IDENTIFIER=sshd"} {
		if !strings.Contains(a, want) {
			t.Errorf("args %q lack %q", a, want)
		}
	}
	if a := strings.Join((&Journal{}).args(), " "); strings.Contains(a, "--merge") {
		t.Errorf("args without a machine ID: %q", a)
	}
}

// TestJournalTrustByProcess: entries read from a real journal file (made
// by systemd-journal-remote from the export format) are believed by the
// process that wrote them, never by its unit. Where pam_systemd fails to
// move a session to its own scope, a user's shell runs in ssh.service: its
// lines tagged sshd, whatever _COMM it gives itself, are counted untrusted
// and give no event. sshd's own processes (sshd, sshd-session, sshd-auth
// as root) are believed in any unit or none; an sftp server, which runs
// as the user, only for its transfers.
func TestJournalTrustByProcess(t *testing.T) {
	remote := journalRemote(t)
	file := filepath.Join(t.TempDir(), "sshd.journal")
	entries := []struct{ ident, comm, uid, unit, msg string }{
		// A user's shell, left in the ssh unit: not sshd.
		{"sshd", "bash", "1000", "ssh.service", "Failed password for root from 192.0.2.10 port 22 ssh2"},
		{"sshd", "sshd", "1000", "ssh.service", "Accepted password for root from 192.0.2.11 port 22 ssh2"},
		{"sshd-session", "sshd-session", "1000", "sshd.service", "Failed password for root from 192.0.2.12 port 22 ssh2"},
		{"sftp-server", "sftp-server", "1000", "ssh.service", "Failed password for root from 192.0.2.13 port 22 ssh2"},
		{"internal-sftp", "sshd-session", "1000", "ssh.service", "Invalid user x from 192.0.2.14 port 22"},
		// sshd's own processes, as root, in a unit or none.
		{"sshd", "sshd", "0", "ssh.service", "Failed password for root from 203.0.113.1 port 22 ssh2"},
		{"sshd-session", "sshd-session", "0", "", "Invalid user a from 203.0.113.2 port 22"},
		{"sshd-auth", "sshd-auth", "0", "session-3.scope", "Invalid user b from 203.0.113.3 port 22"},
		// sftp servers, as the user: their transfers.
		{"sftp-server", "sftp-server", "1000", "session-4.scope", "session opened for local user alice from [203.0.113.4]"},
		{"internal-sftp", "sshd-session", "1000", "ssh.service", `close "/home/alice/f" bytes read 0 written 12`},
	}
	var b strings.Builder
	now := time.Now().UnixMicro()
	for i, e := range entries {
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=jhost\nSYSLOG_IDENTIFIER=%s\n_COMM=%s\n_UID=%s\n_PID=%d\n",
			now+int64(i), now+int64(i), e.ident, e.comm, e.uid, 500+i)
		if e.unit != "" {
			fmt.Fprintf(&b, "_SYSTEMD_UNIT=%s\n", e.unit)
		}
		fmt.Fprintf(&b, "MESSAGE=%s\n\n", e.msg)
	}
	in := filepath.Join(t.TempDir(), "in.export")
	os.WriteFile(in, []byte(b.String()), 0o644)
	if out, err := exec.Command(remote, "--output="+file, in).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", remote, err, out)
	}

	var mu sync.Mutex
	var s detect.Scanner
	var got []detect.Record
	lines := 0
	ctx, cancel := context.WithCancel(context.Background())
	j := &Journal{Args: []string{"--file=" + file}, FromStart: true}
	done := make(chan error, 1)
	go func() {
		done <- j.Run(ctx, func(line, _ string) {
			mu.Lock()
			defer mu.Unlock()
			lines++
			s.Line("journald", 0, line, func(r *detect.Record) { got = append(got, *r) })
		})
	}()
	testkit.Eventually(t, 10*time.Second, "every entry", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return lines == len(entries), fmt.Sprint(lines)
	})
	cancel()
	<-done
	s.Flush(func(r *detect.Record) { got = append(got, *r) })
	var clients []string
	for _, r := range got {
		clients = append(clients, r.Client()+"/"+r.Kind.String())
	}
	want := "203.0.113.1/failure 203.0.113.2/failure 203.0.113.3/failure 203.0.113.4/transfer /transfer"
	if strings.Join(clients, " ") != want || s.Stats.Untrusted != 5 {
		t.Fatalf("records %q, untrusted %d; want %q and 5", clients, s.Stats.Untrusted, want)
	}
}

// TestJournalLongEntrySkipped: an entry whose JSON line is longer than
// MaxJournalLine (a local user may give an entry tagged sshd many fields)
// is skipped with a warning, without holding it; the entries around it are
// delivered.
func TestJournalLongEntrySkipped(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "journalctl")
	// A stand-in for journalctl that prints three entries, the middle one
	// 3 MiB long, then waits to be stopped.
	os.WriteFile(script, []byte(`#!/bin/sh
echo '{"__CURSOR":"s=1","MESSAGE":"first"}'
printf '{"__CURSOR":"s=2","MESSAGE":"'; head -c 3145728 /dev/zero | tr '\0' x; echo '"}'
echo '{"__CURSOR":"s=3","MESSAGE":"third"}'
exec sleep 60
`), 0o755)
	var mu sync.Mutex
	var got, warns []string
	ctx, cancel := context.WithCancel(context.Background())
	j := &Journal{Command: script, FromStart: true, Warn: func(m string) { mu.Lock(); warns = append(warns, m); mu.Unlock() }}
	done := make(chan error, 1)
	go func() {
		done <- j.Run(ctx, func(line, cursor string) { mu.Lock(); got = append(got, cursor); mu.Unlock() })
	}()
	testkit.Eventually(t, 10*time.Second, "two entries", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2, strings.Join(got, ",")
	})
	cancel()
	<-done
	if strings.Join(got, ",") != "s=1,s=3" || len(warns) == 0 || !strings.Contains(warns[0], "longer than 1024 KiB") {
		t.Fatalf("cursors %q, warnings %q", got, warns)
	}
}
