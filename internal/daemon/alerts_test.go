package daemon

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/testkit"
)

// TestDaemonAlertOutage: the SMTP server is down while 3 bans and 2
// logins happen, the daemon is restarted in between, the server comes
// back: every alert arrives exactly once.
func TestDaemonAlertOutage(t *testing.T) {
	h, s := startAlertDaemon(t, "")
	s.Stop()
	for i := 1; i <= 3; i++ {
		for _, u := range []string{"root", "admin", "oracle"} {
			h.logf("Failed password for %s from 203.0.113.%d port %d ssh2", u, i, 40000+i)
		}
	}
	h.waitAlerts(3, true)
	h.halt() // the daemon restarts while the server is still down
	h.start()
	h.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:AAAAC3NzaC1lZDI1NTE5AAAAIOMq")
	h.logf("Accepted password for bob from 198.51.100.5 port 50001 ssh2")
	list := h.waitAlerts(5, true)
	for _, a := range list {
		if e := a.Deliveries["email"]; e.State != "pending" {
			t.Errorf("alert %d: %+v", a.ID, e)
		}
	}
	testkit.Eventually(t, 5*time.Second, "alerts show the retry and its error", func() (bool, string) {
		list := h.alerts(true)
		for _, a := range list {
			if e := a.Deliveries["email"]; e.Attempts >= 1 && strings.Contains(e.Error, "connection refused") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", list)
	})
	s.Restart()
	s.Wait(5, 15*time.Second)
	h.waitAlerts(0, true)
	time.Sleep(time.Second) // room for duplicates to show
	mails := s.Mails()
	ids := map[string]bool{}
	var subjects []string
	for _, m := range mails {
		ids[m.Header.Get("Message-Id")] = true
		subjects = append(subjects, m.Header.Get("Subject"))
	}
	if len(mails) != 5 || len(ids) != 5 {
		t.Fatalf("%d mails, %d distinct, want 5 each: %q", len(mails), len(ids), subjects)
	}
	all := strings.Join(subjects, "\n")
	for _, want := range []string{"[web-01] banned 203.0.113.1 (3 failed attempts, root/admin/oracle)", "banned 203.0.113.2 ", "banned 203.0.113.3 ",
		"[web-01] login: alice from 198.51.100.4 (publickey)", "[web-01] login: bob from 198.51.100.5 (password)"} {
		if !strings.Contains(all, want) {
			t.Errorf("no mail with %q in:\n%s", want, all)
		}
	}
	h.waitAlerts(0, true)
	if sent := h.alerts(false); len(sent) != 5 || sent[0].Deliveries["email"].State != "sent" {
		t.Fatalf("after delivery: %+v", sent)
	}
	// Without the daemon, the CLI's Service reads the database (no root,
	// no kernel set).
	h.halt()
	if list := h.alerts(false); len(list) != 5 || list[0].Deliveries["email"].State != "sent" {
		t.Fatalf("alerts without the daemon: %+v", list)
	}
	// The key fingerprint is in the login mail.
	for _, m := range mails {
		if strings.Contains(m.Header.Get("Subject"), "alice") && !strings.Contains(m.Text, "SHA256:AAAAC3NzaC1lZDI1NTE5AAAAIOMq") {
			t.Errorf("login mail without the key:\n%s", m.Text)
		}
	}
}

// TestDaemonAlertReload: email configured while the daemon runs, read on
// reload, delivers the next login without a restart; a password file
// rotated to a wrong password and reloaded is read again; a reload that
// cannot read the password file (deleted) keeps the running channel and
// its routes, and the next login is still mailed.
func TestDaemonAlertReload(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	h := newHarness(t)
	writeConfig(t, h.dir, "")
	h.logf("Server listening on 0.0.0.0 port 22.")
	h.start()
	reload := func(n int) error {
		t.Helper()
		err := h.d.Reload(context.Background(), h.config())
		if c := h.logCount("reloaded allowlist"); c != n {
			t.Fatalf("%d reloads in the log, want %d:\n%s", c, n, h.log.String())
		}
		return err
	}
	alerttest.WriteConfig(t, h.dir, s, "")
	if err := reload(1); err != nil {
		t.Fatal(err)
	}
	h.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	s.Wait(1, 10*time.Second)
	if subj := s.Mails()[0].Header.Get("Subject"); !strings.HasPrefix(subj, "[web-01] login: alice from 198.51.100.4 (publickey)") {
		t.Errorf("subject %q", subj)
	}
	// The secret file is read again on reload: a wrong password now fails.
	pw := filepath.Join(h.dir, "smtp-password")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	if err := reload(2); err != nil {
		t.Fatal(err)
	}
	h.logf("Accepted publickey for bob from 198.51.100.5 port 50001 ssh2: ED25519 SHA256:y")
	testkit.Eventually(t, 10*time.Second, "the rotated password used", func() (bool, string) {
		list := h.alerts(true)
		return len(list) == 1 && strings.Contains(list[0].Deliveries["email"].Error, "535"), fmt.Sprintf("%+v (mails %d)", list, len(s.Mails()))
	})
	// The right password back: the backlog goes out at once.
	os.WriteFile(pw, []byte(s.Password+"\n"), 0o600)
	if err := reload(3); err != nil {
		t.Fatal(err)
	}
	s.Wait(2, 10*time.Second)
	// The file deleted: the reload says so, and the running channel stays
	// with its routes.
	os.Remove(pw)
	if err := reload(4); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("reload without the password file: %v", err)
	}
	h.logf("Accepted publickey for carol from 198.51.100.6 port 50002 ssh2: ED25519 SHA256:z")
	if m := s.Wait(3, 10*time.Second)[2]; !strings.Contains(m.Header.Get("Subject"), "carol") {
		t.Fatalf("third mail %q", m.Header.Get("Subject"))
	}
}

// TestLoginAlertRules: a repeated login within 5 minutes gives no second
// alert; a login after failed attempts is high and says so.
func TestLoginAlertRules(t *testing.T) {
	h, s := startAlertDaemon(t, "")
	// A login two days old (a backlog) is recorded, not alerted.
	f, _ := os.OpenFile(filepath.Join(h.dir, "auth.log"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "%s web-01 sshd[4242]: Accepted password for carol from 198.51.100.8 port 50009 ssh2\n", time.Now().Add(-48*time.Hour).Format(time.Stamp))
	f.Close()
	h.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	h.logf("Accepted publickey for alice from 198.51.100.4 port 50002 ssh2: ED25519 SHA256:x")
	h.logf("Failed password for root from 192.0.2.50 port 40000 ssh2")
	h.logf("Failed password for root from 192.0.2.50 port 40000 ssh2")
	h.logf("Accepted password for root from 192.0.2.50 port 40000 ssh2")
	s.Wait(2, 10*time.Second)
	time.Sleep(time.Second)
	mails := s.Mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails, want 2", len(mails))
	}
	high := mails[1]
	if !strings.Contains(high.Header.Get("Subject"), "login: root from 192.0.2.50 (password) [HIGH]") ||
		high.Header.Get("X-Sshguard-Severity") != "high" || !regexp.MustCompile(`after 2 failed attempts`).MatchString(high.Text) {
		t.Fatalf("brute-force login mail:\n%s\n%s", high.Header.Get("Subject"), high.Text)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMetrics scrapes the daemon's /metrics after a ban, a login and an
// unrecognised sshd line.
func TestMetrics(t *testing.T) {
	port := freePort(t)
	h, s := startAlertDaemon(t, fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", port))
	for _, u := range []string{"root", "admin", "oracle"} {
		h.logf("Failed password for %s from 203.0.113.1 port 40000 ssh2", u)
	}
	h.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	h.logf("a message no sshd version writes")
	s.Wait(2, 10*time.Second)
	want := []string{
		`sshguard_bans_total{origin="detected"} 1`,
		`sshguard_events_total{kind="failure"} 3`,
		`sshguard_events_total{kind="success"} 1`,
		`sshguard_attempts_counted_total{kind="failure"} 3`,
		`sshguard_alert_deliveries_total{channel="email",result="sent"} 2`,
		`sshguard_active_bans 1`,
		`sshguard_parse_errors_total{reason="unknown_shape"} 1`,
		fmt.Sprintf(`sshguard_lines_read_total{source=%q} 5`, filepath.Join(h.dir, "auth.log")), // the line before the first start is not read
		`sshguard_tracked_keys 0`,
		`process_resident_memory_bytes`,
	}
	testkit.Eventually(t, 5*time.Second, "metrics", func() (bool, string) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			return false, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				missing = append(missing, w)
			}
		}
		return len(missing) == 0, fmt.Sprintf("lacking %q in:\n%s", missing, b)
	})
}

// BenchmarkLoginAlertLatency measures, over 200 logins, the time from
// appending an "Accepted" line to the log to the login alert's mail being
// accepted by an SMTP server (STARTTLS and AUTH on loopback), through the
// daemon: tail, parse, engine, login record and outbox in one
// transaction, worker, go-mail. No root needed.
//
//	go test ./internal/daemon -run XXX -bench LoginAlertLatency -benchtime 1x
func BenchmarkLoginAlertLatency(b *testing.B) {
	h, s := startAlertDaemon(b, "")
	const n = 200
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		start := time.Now()
		h.logf("Accepted publickey for user%d from 198.51.100.4 port %d ssh2: ED25519 SHA256:x", i, 40000+i)
		s.Wait(i+1, 10*time.Second)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	testkit.ReportQuantiles(b, lat)
}

// TestReloadAuditAtNextStart: the audit log is chosen at the start; a
// reload that changes [audit] says it takes effect at the next start and
// keeps the one in use (it was silently taken as changed).
func TestReloadAuditAtNextStart(t *testing.T) {
	h := newHarness(t)
	writeConfig(t, h.dir, "[audit]\nlog = \"\"\n")
	h.start()
	writeConfig(t, h.dir, "[audit]\nlog = "+strconv.Quote(filepath.Join(h.dir, "audit.log"))+"\n")
	if err := h.d.Reload(context.Background(), h.config()); err != nil {
		t.Fatal(err)
	}
	if got := h.d.cfg.Load().Audit.Log; got != "" {
		t.Errorf("after the reload the configuration says the audit log is %q, the daemon follows none", got)
	}
	if log := h.log.String(); !strings.Contains(log, "[audit]") || !strings.Contains(log, "next start") {
		t.Errorf("no word that [audit] changes at the next start:\n%s", log)
	}
}
