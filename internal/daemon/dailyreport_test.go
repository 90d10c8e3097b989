package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/alerttest"
	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

func TestDailyReport(t *testing.T) {
	s := alerttest.StartSMTP(t, alerttest.Options{})
	dir := t.TempDir()
	cfg, err := config.Load(alerttest.WriteConfig(t, dir, s, ""), true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Alerts.DailyReport, cfg.Alerts.ReportHour, cfg.Alerts.Timezone = true, 7, "UTC"
	db, err := store.Open(filepath.Join(dir, "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	// Yesterday: attempts, a ban, two logins; and one login two days ago.
	var c store.Counts
	for i := 0; i < 7; i++ {
		c.Add("failure", "203.0.113.7", "root", true, false)
	}
	c.Add("failure", "198.51.100.9", "admin", true, false)
	c.Add("probe", "198.51.100.9", "", false, true)
	db.AddCounts(day.Add(10*time.Hour), c)
	testkit.RecordBans(t, db, &store.Ban{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: day.Add(10 * time.Hour), Expires: day.Add(11 * time.Hour), Reason: "7 failed attempts in 10m"})
	for _, l := range []store.Login{
		{Time: day.Add(-20 * time.Hour), User: "old", Addr: netip.MustParseAddr("192.0.2.1"), Method: "password"},
		{Time: day.Add(9 * time.Hour), User: "alice", Addr: netip.MustParseAddr("192.0.2.10"), Method: "publickey", Key: "ED25519 SHA256:abc"},
		{Time: day.Add(23 * time.Hour), User: "bob", Addr: netip.MustParseAddr("2001:db8::5"), Method: "password"},
	} {
		db.RecordLogin(l, func(store.LoginHistory, *store.Login) []byte { return nil })
	}
	// Sessions: one of yesterday with a transfer, one still open, one older.
	end := day.Add(9*time.Hour + 90*time.Second)
	for _, ss := range []*session.Session{
		{Host: "web-01", PID: 10, User: "alice", IP: "192.0.2.10", Port: 1, Start: day.Add(9 * time.Hour), End: &end, EndReason: session.EndLogout,
			Transfers: []session.Transfer{{Path: "/x", BytesWritten: 4096}}},
		{Host: "web-01", PID: 11, User: "bob", IP: "2001:db8::5", Port: 2, Start: day.Add(23 * time.Hour), Active: true},
		{Host: "web-01", PID: 12, User: "old", IP: "192.0.2.1", Port: 3, Start: day.Add(-20 * time.Hour), Active: true},
	} {
		db.PutSession(store.SessionKey(ss.Start, ss.Host, ss.PID), ss.Marshal(), ss.Active)
	}
	chans, err := cfg.Alerts.Channels()
	if err != nil {
		t.Fatal(err)
	}
	w := alert.NewWorker(cfg.Alerts.WorkerConfig(), db, chans, nil, nil)
	at := day.Add(24*time.Hour + 6*time.Hour) // 06:00: before the report hour
	if err := reportIfDue(db, cfg.Alerts, w, at); err != nil {
		t.Fatal(err)
	}
	at = at.Add(time.Hour + 5*time.Minute) // 07:05
	for range 2 {                          // the second call the same day makes nothing
		if err := reportIfDue(db, cfg.Alerts, w, at); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Hour)
	}
	w.DeliverDue(context.Background())
	time.Sleep(200 * time.Millisecond)
	mails := s.Mails()
	if len(mails) != 1 {
		t.Fatalf("%d report mails, want 1", len(mails))
	}
	m := mails[0]
	if subj := m.Header.Get("Subject"); subj != "[web-01] daily report: 8 failed attempts, 1 bans, 2 logins" {
		t.Errorf("subject %q", subj)
	}
	for _, want := range []string{"Failed attempts: 8   probes: 1   bans: 1   logins: 2", "203.0.113.7", "root", "7 failed attempts in 10m",
		"alice from 192.0.2.10 (publickey ED25519 SHA256:abc)", "bob from 2001:db8::5 (password)", "Sessions (2)",
		"1m30s  logout  4096 bytes", "still open"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("report lacks %q:\n%s", want, m.Text)
		}
	}
	if strings.Contains(m.Text, "old from") || strings.Contains(m.Text, "old  ") {
		t.Errorf("report lists a login older than 24 hours:\n%s", m.Text)
	}
	// Top addresses are sorted by counted attempts.
	if i, j := strings.Index(m.Text, "203.0.113.7"), strings.Index(m.Text, "198.51.100.9"); i < 0 || j < 0 || i > j {
		t.Errorf("top addresses out of order:\n%s", m.Text)
	}
}

// TestDailyReportProbeTakenBack: the daily report's figures are the
// hourly counts' as detection counts them: OpenSSH 9.2's four connections
// that offered a refused key, then closed while authenticating, are four
// failed attempts and no probe, and a connection of six guesses in five
// failure lines (rsyslog's "message repeated 5 times", PAM's tally) six
// failed attempts. It counted lines: 4 probes, and 9 failed attempts.
func TestDailyReportProbeTakenBack(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g := engine.New(engine.Config{FailureWeight: 1, ProbeWeight: 0.5}, db, &memFirewall{set: map[netip.Prefix]time.Duration{}}, nil, nil, nil)
	data, err := os.ReadFile("../../testdata/samples/openssh-9.2-key-refused.log")
	if err != nil {
		t.Fatal(err)
	}
	eras, err := os.ReadFile("../../testdata/samples/openssh-eras.log")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(eras), "\n") {
		if strings.Contains(l, " sshd[4227]: ") { // of Nov 20: put in the report's day
			data = append(data, strings.Replace(l, "Nov 20", "Dec  5", 1)+"\n"...)
		}
	}
	var sc detect.Scanner
	sc.SetRef(time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC))
	emit := func(r *detect.Record) {
		if _, err := g.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sc.Line("auth.log", int64(i+1), l, emit)
	}
	sc.Flush(emit)
	if err := g.FlushCounts(); err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	r, err := buildReport(db, day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	text := alert.Render(&alert.Message{Kind: alert.KindReport, Time: day.Add(24 * time.Hour), Report: &r}, "1").Text
	if r.Failed != 10 || r.Probes != 0 || !strings.Contains(text, "Failed attempts: 10   probes: 0   bans: 1") {
		t.Fatalf("report %+v:\n%s", r, text)
	}
}
