package daemon

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/config"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// monthLine is one line of a generated month, before it is written.
type monthLine struct {
	at   time.Time
	pid  int
	text string
}

// writeMonth writes days of sshd's log from start, RFC 3339 stamps, and
// returns how many lines and logins it wrote: attackers (IPv4 addresses
// and IPv6 /64s) guessing in bursts, some again while banned and some
// after their ban ended (escalation), and logins of users with their
// sessions from an office's addresses.
func writeMonth(w io.Writer, start time.Time, days, logins int, seed uint64) (lines, nLogins int, err error) {
	rng := rand.New(rand.NewPCG(seed, 7))
	span := time.Duration(days) * 24 * time.Hour
	var out []monthLine
	pid := 1000
	add := func(at time.Time, p int, format string, args ...any) {
		out = append(out, monthLine{at, p, fmt.Sprintf(format, args...)})
	}
	attackers := make([]string, 0, 40)
	for i := range 30 {
		attackers = append(attackers, fmt.Sprintf("203.0.113.%d", i+1))
	}
	for i := range 10 {
		attackers = append(attackers, fmt.Sprintf("2001:db8:%x::%x", i, rng.IntN(1000)+1))
	}
	for _, ip := range attackers {
		at := start.Add(time.Duration(rng.Int64N(int64(span / 2))))
		for burst := range 2 + rng.IntN(12) {
			n := 3 + rng.IntN(18)
			for k := range n {
				pid++
				t := at.Add(time.Duration(k) * time.Duration(5+rng.IntN(50)) * time.Second)
				user := []string{"root", "admin", "oracle", "test"}[rng.IntN(4)]
				add(t, pid, "Failed password for %s from %s port %d ssh2", user, ip, 30000+rng.IntN(30000))
				add(t.Add(time.Millisecond), pid, "Connection closed by authenticating user %s %s port %d [preauth]", user, ip, 30000+rng.IntN(30000))
			}
			// The next burst: soon (still banned), or after the ban.
			gap := []time.Duration{20 * time.Minute, 90 * time.Minute, 3 * time.Hour, 9 * time.Hour, 30 * time.Hour}[rng.IntN(5)]
			at = at.Add(gap + time.Duration(rng.Int64N(int64(time.Hour))))
			_ = burst
		}
	}
	// A few at the end: banned still when the month is read.
	for i := range 5 {
		at := start.Add(span - time.Duration(5+rng.IntN(45))*time.Minute)
		for k := range 6 {
			pid++
			add(at.Add(time.Duration(k)*10*time.Second), pid, "Failed password for root from 192.0.2.%d port %d ssh2", 100+i, 30000+rng.IntN(30000))
		}
	}
	for range logins {
		pid++
		at := start.Add(time.Duration(rng.Int64N(int64(span))))
		user := []string{"alice", "bob", "carol", "dave"}[rng.IntN(4)]
		ip := fmt.Sprintf("198.51.100.%d", 1+rng.IntN(50))
		port := 40000 + rng.IntN(20000)
		add(at, pid, "Accepted publickey for %s from %s port %d ssh2: ED25519 SHA256:TZNeiCTCTlvIYUy8EeTnjSoapIo676aoheF7ElbBGdo", user, ip, port)
		add(at.Add(time.Millisecond), pid, "pam_unix(sshd:session): session opened for user %s(uid=1000) by (uid=0)", user)
		end := at.Add(time.Duration(1+rng.IntN(120)) * time.Minute)
		add(end, pid, "Received disconnect from %s port %d:11: disconnected by user", ip, port)
		add(end.Add(time.Millisecond), pid, "Disconnected from user %s %s port %d", user, ip, port)
		add(end.Add(2*time.Millisecond), pid, "pam_unix(sshd:session): session closed for user %s", user)
	}
	slices.SortStableFunc(out, func(a, b monthLine) int { return a.at.Compare(b.at) })
	bw := bufio.NewWriter(w)
	for _, l := range out {
		if l.at.After(start.Add(span)) {
			continue // the month's end: no line from the future
		}
		fmt.Fprintf(bw, "%s web-01 sshd[%d]: %s\n", l.at.UTC().Format("2006-01-02T15:04:05.000000-07:00"), l.pid, l.text)
		lines++
	}
	return lines, logins, bw.Flush()
}

// banRecord is what both ends of TestBacklogReadLikeLive compare.
type banRecord struct {
	Prefix         netip.Prefix
	Start, Expires time.Time
	Count          int
	Origin         string
}

func records(t *testing.T, bans []store.Ban) []banRecord {
	t.Helper()
	out := make([]banRecord, len(bans))
	for i, b := range bans {
		out[i] = banRecord{b.Prefix, b.Start.UTC(), b.Expires.UTC(), b.Count, b.Origin}
	}
	slices.SortFunc(out, func(a, b banRecord) int {
		return cmp.Or(a.Start.Compare(b.Start), a.Prefix.Addr().Compare(b.Prefix.Addr()))
	})
	return out
}

// TestBacklogReadLikeLive: a month of log read from its start ends in the
// state a daemon that ran through that month would be in: the same lines
// fed one by one to an engine whose clock follows them make exactly the
// same bans (prefix, start, end, nth), the same bans in force now, and no
// address is banned again while its ban (in the log's time) was in
// force.
func TestBacklogReadLikeLive(t *testing.T) {
	h := newHarness(t)
	f, err := os.Create(filepath.Join(h.dir, "auth.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The month ends a few minutes ago: some of its bans are in force.
	start := time.Now().Add(-30*24*time.Hour - 5*time.Minute).Truncate(time.Second)
	lines, _, err := writeMonth(f, start, 30, 500, 1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	writeConfig(t, h.dir, "[log]\nfrom_start = true\n[audit]\nlog = \"\"\n")
	h.start()
	h.readAll(t, int64(lines), time.Minute)

	// The same lines, one by one, on a clock that follows them.
	db := liveBans(t, h.config(), filepath.Join(h.dir, "auth.log"), start)
	got, err := h.d.db.History(time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := db.History(time.Time{})
	if len(want) < 40 {
		t.Fatalf("the reference made %d bans: the month is not a test", len(want))
	}
	g, w := records(t, got), records(t, want)
	if !slices.Equal(g, w) {
		for i := range max(len(g), len(w)) {
			var a, b banRecord
			if i < len(g) {
				a = g[i]
			}
			if i < len(w) {
				b = w[i]
			}
			if a != b {
				t.Errorf("ban %d: read from the start %+v, live %+v", i, a, b)
			}
		}
		t.Fatalf("%d bans read from the start, %d live", len(g), len(w))
	}
	// Never banned again while banned: each prefix's bans do not overlap.
	last := map[netip.Prefix]time.Time{}
	escalated := 0
	for _, b := range g {
		if end, ok := last[b.Prefix]; ok && b.Start.Before(end) {
			t.Errorf("%s banned again at %v, its ban ran until %v", b.Prefix, b.Start, end)
		}
		last[b.Prefix] = b.Expires
		if b.Count > 1 {
			escalated++
		}
	}
	if escalated == 0 {
		t.Error("no ban was a repeat: the month does not test escalation")
	}
	activeGot, _ := h.d.db.ActiveBans(time.Now())
	activeWant, _ := db.ActiveBans(time.Now())
	if len(activeWant) == 0 || !slices.Equal(records(t, activeGot), records(t, activeWant)) {
		t.Errorf("in force now: read from the start %v, live %v", records(t, activeGot), records(t, activeWant))
	}
	gl, _ := h.d.db.Logins(time.Time{})
	wl, _ := db.Logins(time.Time{})
	if len(gl) != len(wl) || len(gl) == 0 {
		t.Errorf("%d logins read from the start, %d live", len(gl), len(wl))
	}
}

// liveBans feeds the log's lines one by one to an engine of cfg whose
// clock follows them (a daemon that ran through them), and returns its
// store, its clock then set to now.
func liveBans(t *testing.T, cfg *config.Config, log string, start time.Time) *store.DB {
	t.Helper()
	db, _ := testkit.OpenDB(t)
	clock := testkit.NewClock(start)
	ref := engine.New(engineConfig(cfg, nil, nil), db, nopFW{}, nil, clock.Now, nil)
	lf, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	var sc detect.Scanner
	feed := func(r *detect.Record) {
		if r.Time.After(clock.Now()) {
			clock.Set(r.Time)
		}
		if _, err := ref.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	s := bufio.NewScanner(lf)
	for n := int64(1); s.Scan(); n++ {
		sc.Line("auth.log", n, s.Text(), feed)
	}
	sc.Flush(feed)
	clock.Set(time.Now())
	return db
}

// nopFW is a firewall that takes everything.
type nopFW struct{}

func (nopFW) Ban(context.Context, []ban.Element) error    { return nil }
func (nopFW) Unban(context.Context, []netip.Prefix) error { return nil }

// BenchmarkBacklog: a month of log with thousands of logins read from its
// start by the daemon (backend none), until everything is committed:
// lines a second.
//
//	go test ./internal/daemon -run XXX -bench Backlog -benchtime 1x
func BenchmarkBacklog(b *testing.B) {
	for range b.N {
		h := newHarness(b)
		f, _ := os.Create(filepath.Join(h.dir, "auth.log"))
		start := time.Now().Add(-30 * 24 * time.Hour)
		lines, logins, err := writeMonth(f, start, 30, 5000, 2)
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		writeConfig(b, h.dir, "[log]\nfrom_start = true\n[audit]\nlog = \"\"\n")
		t0 := time.Now()
		h.start()
		h.readAll(b, int64(lines), 5*time.Minute)
		el := time.Since(t0)
		b.ReportMetric(float64(lines)/el.Seconds(), "lines/s")
		b.ReportMetric(el.Seconds(), "s")
		b.Logf("%d lines, %d logins: %v, %.0f lines/s", lines, logins, el.Round(time.Millisecond), float64(lines)/el.Seconds())
		h.halt()
	}
}

// readAll waits until the daemon has read lines lines of its log and
// decided everything in them (the correlator holds no record waiting for
// its connection's next line: those are decided 2 s after the log falls
// quiet), and until what it decided is written (Guard.Sync).
func (h *harness) readAll(tb testing.TB, lines int64, within time.Duration) {
	tb.Helper()
	testkit.Eventually(tb, within, "every line read and decided", func() (bool, string) {
		n := h.d.Stats().Scan.Lines
		p := h.d.pipe
		p.mu.Lock()
		held := p.scan.Corr.Pending()
		p.mu.Unlock()
		return n == lines && held == 0, fmt.Sprint(n, " of ", lines, " lines, ", held, " records held")
	})
	if err := h.d.guard.Sync(context.Background()); err != nil {
		tb.Fatal(err)
	}
}
