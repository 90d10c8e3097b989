package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/control"
)

// alertConfig is a configuration that sends every alert by email to s,
// with the password in a file, and retries quickly.
func alertConfig(t testing.TB, dir string, s *alerttest.SMTP, extra string) string {
	t.Helper()
	pw := filepath.Join(dir, "smtp-password")
	if err := os.WriteFile(pw, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[detection]
threshold = 3
[firewall]
backend = "none"
[alerts]
hostname = "web-01"
retry_min = "200ms"
retry_max = "1s"
[alerts.email]
host = %q
port = %d
username = %q
password_file = %q
from = "sshguard-go@web-01.example.org"
to = ["admin@example.org"]
ca_file = %q
%s`, s.Host, s.Port, s.User, pw, s.CAFile, extra)
	p := filepath.Join(dir, "sshguard-go.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon runs `sshguard-go run` (the test binary as the program) on a
// log file, with no firewall; no root needed.
type daemon struct {
	t    testing.TB
	dir  string
	self string
	cmd  *exec.Cmd
}

func (d *daemon) sg(args ...string) (string, error) { return cli(d.self, d.dir, args...) }

// cli runs the sshguard-go CLI (the test binary self) with the socket and
// database of the daemon in dir.
func cli(self, dir string, args ...string) (string, error) {
	cmd := exec.Command(self, append(args, "--socket", dir+"/ctl.sock", "--db", dir+"/state.db")...)
	cmd.Env = append(os.Environ(), "SG_MAIN=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *daemon) start() {
	d.t.Helper()
	log, _ := os.OpenFile(d.dir+"/daemon.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	d.cmd = exec.Command(d.self, "run", "--config", d.dir+"/sshguard-go.toml", "--log", d.dir+"/auth.log",
		"--db", d.dir+"/state.db", "--socket", d.dir+"/ctl.sock")
	d.cmd.Env = append(os.Environ(), "SG_MAIN=1")
	d.cmd.Stdout, d.cmd.Stderr = log, log
	startReady(d.t, d.cmd, d.dir)
	waitControl(d.t, d.dir)
}

// startReady starts the daemon cmd with a systemd notify socket in dir
// and waits up to 15 s for its READY=1, which it sends once the log
// source has fixed where it reads from (so the test's next line counts).
func startReady(tb testing.TB, cmd *exec.Cmd, dir string) {
	tb.Helper()
	path := dir + "/notify.sock"
	os.Remove(path)
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	defer notify.Close()
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+path)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	notify.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, err := notify.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "READY=1") {
		b, _ := os.ReadFile(dir + "/daemon.log")
		tb.Fatalf("no READY=1 from the daemon (%v, %q):\n%s", err, buf[:n], b)
	}
}

// waitControl waits up to 5 s for the daemon's control socket in dir, and
// fails tb with the daemon's log if it does not answer.
func waitControl(tb testing.TB, dir string) {
	tb.Helper()
	for i := 0; i < 100; i++ {
		if _, err := control.Dial(dir + "/ctl.sock"); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(dir + "/daemon.log")
	tb.Fatalf("daemon did not start:\n%s", b)
}

// startAlertDaemon starts an SMTP server and the daemon, configured by
// alertConfig (plus extra) to send every alert there; the daemon is
// stopped when tb ends.
func startAlertDaemon(tb testing.TB, extra string) (*daemon, *alerttest.SMTP) {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	s := alerttest.StartSMTP(tb, alerttest.Options{})
	d := &daemon{t: tb, dir: tb.TempDir(), self: self}
	alertConfig(tb, d.dir, s, extra)
	d.logf("Server listening on 0.0.0.0 port 22.")
	d.start()
	tb.Cleanup(d.stop)
	return d, s
}

func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	d.cmd = nil
}

// logf appends sshd lines stamped now to the log.
func (d *daemon) logf(format string, args ...any) {
	f, err := os.OpenFile(d.dir+"/auth.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s web-01 sshd[%d]: %s\n", time.Now().Format(time.Stamp), 1000+time.Now().Nanosecond()%50000, fmt.Sprintf(format, args...))
}

func (d *daemon) alerts(pending bool) []control.AlertInfo {
	d.t.Helper()
	args := []string{"alerts", "--json"}
	if pending {
		args = append(args, "--pending")
	}
	out, err := d.sg(args...)
	if err != nil {
		d.t.Fatalf("alerts: %v\n%s", err, out)
	}
	var list []control.AlertInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		d.t.Fatalf("alerts --json: %v\n%s", err, out)
	}
	return list
}

// waitAlerts waits up to 10 s for n alerts (pending ones if pending).
func (d *daemon) waitAlerts(n int, pending bool) []control.AlertInfo {
	d.t.Helper()
	var list []control.AlertInfo
	for i := 0; i < 100; i++ {
		if list = d.alerts(pending); len(list) == n {
			return list
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(d.dir + "/daemon.log")
	d.t.Fatalf("%d alerts (pending %v), want %d: %+v\n%s", len(list), pending, n, list, b)
	return nil
}

// TestDaemonAlertOutage: the SMTP server is down while 3 bans and 2
// logins happen, the daemon is restarted in between, the server comes
// back: every alert arrives exactly once.
func TestDaemonAlertOutage(t *testing.T) {
	d, s := startAlertDaemon(t, "")
	s.Stop()
	for i := 1; i <= 3; i++ {
		for _, u := range []string{"root", "admin", "oracle"} {
			d.logf("Failed password for %s from 203.0.113.%d port %d ssh2", u, i, 40000+i)
		}
	}
	d.waitAlerts(3, true)
	d.stop() // the daemon restarts while the server is still down
	d.start()
	d.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:AAAAC3NzaC1lZDI1NTE5AAAAIOMq")
	d.logf("Accepted password for bob from 198.51.100.5 port 50001 ssh2")
	list := d.waitAlerts(5, true)
	for _, a := range list {
		if e := a.Deliveries["email"]; e.State != "pending" {
			t.Errorf("alert %d: %+v", a.ID, e)
		}
	}
	if out, _ := d.sg("alerts"); !strings.Contains(out, "email:pending(try") || !strings.Contains(out, "connection refused") {
		t.Errorf("alerts does not show the retry and its error:\n%s", out)
	}
	s.Restart()
	s.Wait(5, 15*time.Second)
	time.Sleep(1500 * time.Millisecond) // room for duplicates to show
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
	d.waitAlerts(0, true)
	if sent := d.alerts(false); len(sent) != 5 || sent[0].Deliveries["email"].State != "sent" {
		t.Fatalf("after delivery: %+v", sent)
	}
	// Without the daemon, alerts reads the database (no root, no kernel set).
	d.stop()
	if list := d.alerts(false); len(list) != 5 || list[0].Deliveries["email"].State != "sent" {
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
// SIGHUP, delivers the next login without a restart; a password file
// rotated to a wrong password and reloaded is read again.
func TestDaemonAlertReload(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: t.TempDir(), self: self}
	if err := os.WriteFile(d.dir+"/sshguard-go.toml", []byte("[firewall]\nbackend = \"none\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.logf("Server listening on 0.0.0.0 port 22.")
	d.start()
	t.Cleanup(d.stop)
	reload := func(n int) {
		t.Helper()
		d.cmd.Process.Signal(syscall.SIGHUP)
		for i := 0; i < 100; i++ {
			if b, _ := os.ReadFile(d.dir + "/daemon.log"); strings.Count(string(b), "reloaded alerts") == n {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		b, _ := os.ReadFile(d.dir + "/daemon.log")
		t.Fatalf("no reload %d in the log:\n%s", n, b)
	}
	alertConfig(t, d.dir, s, "")
	reload(1)
	d.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	s.Wait(1, 10*time.Second)
	if subj := s.Mails()[0].Header.Get("Subject"); !strings.HasPrefix(subj, "[web-01] login: alice from 198.51.100.4 (publickey)") {
		t.Errorf("subject %q", subj)
	}
	// The secret file is read again on reload: a wrong password now fails.
	os.WriteFile(d.dir+"/smtp-password", []byte("wrong\n"), 0o600)
	reload(2)
	d.logf("Accepted publickey for bob from 198.51.100.5 port 50001 ssh2: ED25519 SHA256:y")
	for i := 0; i < 100; i++ {
		if list := d.alerts(true); len(list) == 1 && strings.Contains(list[0].Deliveries["email"].Error, "535") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the rotated password was not used: %+v (mails %d)", d.alerts(false), len(s.Mails()))
}

// TestLoginAlertRules: a repeated login within 5 minutes gives no second
// alert; a login after failed attempts is high and says so.
func TestLoginAlertRules(t *testing.T) {
	d, s := startAlertDaemon(t, "")
	// A login two days old (a backlog) is recorded, not alerted.
	f, _ := os.OpenFile(d.dir+"/auth.log", os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "%s web-01 sshd[4242]: Accepted password for carol from 198.51.100.8 port 50009 ssh2\n", time.Now().Add(-48*time.Hour).Format(time.Stamp))
	f.Close()
	d.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	d.logf("Accepted publickey for alice from 198.51.100.4 port 50002 ssh2: ED25519 SHA256:x")
	d.logf("Failed password for root from 192.0.2.50 port 40000 ssh2")
	d.logf("Failed password for root from 192.0.2.50 port 40000 ssh2")
	d.logf("Accepted password for root from 192.0.2.50 port 40000 ssh2")
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

func TestAlertTestCommand(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	tw := alerttest.StartTwilio(t)
	dir := t.TempDir()
	p := alertConfig(t, dir, s, fmt.Sprintf(`[alerts.sms]
account_sid = %q
auth_token = %q
from = "+15005550006"
to = ["+15551230001"]
base_url = %q
`, tw.SID, tw.Token, tw.URL))
	out, _, err := run(t, "", "alert", "test", "--config", p)
	if err != nil || !strings.Contains(out, "email: sent") || !strings.Contains(out, "sms: sent") {
		t.Fatalf("alert test: %v\n%s", err, out)
	}
	if m := s.Wait(1, 5*time.Second)[0]; !strings.Contains(m.Header.Get("Subject"), "[web-01] This is a test message") {
		t.Errorf("test mail subject %q", m.Header.Get("Subject"))
	}
	if sms := tw.Messages(); len(sms) != 1 || !strings.Contains(sms[0].Body, "test message") {
		t.Errorf("test SMS %+v", sms)
	}
	tw.FailNext(400, 21211, "The 'To' number +15551230001 is not a valid phone number.")
	out, _, err = run(t, "", "alert", "test", "--config", p, "--channel", "sms")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "sms: FAILED") || !strings.Contains(out, "21211") || strings.Contains(out, "email") {
		t.Fatalf("failing sms: exit %d\n%s", code, out)
	}
	s.Stop()
	out, _, err = run(t, "", "alert", "test", "--config", p, "--channel", "email")
	if code := exitCode(err); code != 1 || !strings.Contains(out, "email: FAILED") || !strings.Contains(out, "connection refused") {
		t.Fatalf("SMTP down: exit %d\n%s", code, out)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exitError); ok {
		return ee.code
	}
	return -1
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
	d, s := startAlertDaemon(t, fmt.Sprintf("[metrics]\nlisten = \"127.0.0.1:%d\"\n", port))
	for _, u := range []string{"root", "admin", "oracle"} {
		d.logf("Failed password for %s from 203.0.113.1 port 40000 ssh2", u)
	}
	d.logf("Accepted publickey for alice from 198.51.100.4 port 50000 ssh2: ED25519 SHA256:x")
	d.logf("a message no sshd version writes")
	s.Wait(2, 10*time.Second)
	want := []string{
		`sshguard_bans_total{origin="detected"} 1`,
		`sshguard_events_total{kind="failure"} 3`,
		`sshguard_events_total{kind="success"} 1`,
		`sshguard_attempts_counted_total{kind="failure"} 3`,
		`sshguard_alert_deliveries_total{channel="email",result="sent"} 2`,
		`sshguard_active_bans 1`,
		`sshguard_parse_errors_total{reason="unrecognised"} 1`,
		fmt.Sprintf(`sshguard_lines_read_total{source=%q} 5`, d.dir+"/auth.log"), // the line before the first start is not read
		`sshguard_tracked_keys 0`,
		`process_resident_memory_bytes`,
	}
	var body string
	for i := 0; i < 50; i++ {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := 0
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	t.Logf("metrics:\n%s", body)
}

// BenchmarkLoginAlertLatency measures, over 200 logins, the time from
// appending an "Accepted" line to the log to the login alert's mail being
// accepted by an SMTP server (STARTTLS and AUTH on loopback), through the
// daemon process: tail, parse, engine, login record and outbox in one
// transaction, worker, go-mail. No root needed.
//
//	go test ./cmd/sshguard-go -run XXX -bench LoginAlertLatency -benchtime 1x
func BenchmarkLoginAlertLatency(b *testing.B) {
	d, s := startAlertDaemon(b, "")
	const n = 200
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		start := time.Now()
		d.logf("Accepted publickey for user%d from 198.51.100.4 port %d ssh2: ED25519 SHA256:x", i, 40000+i)
		s.Wait(i+1, 10*time.Second)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[n/2]), "p50-ms")
	b.ReportMetric(ms(lat[n*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[n-1]), "max-ms")
}
