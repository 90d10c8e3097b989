package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sshguard-go/internal/alert"
	"sshguard-go/internal/ban"
	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
	"sshguard-go/internal/testkit"
)

// fakeFW records what the engine asked of the kernel.
type fakeFW struct {
	set   map[netip.Prefix]time.Duration
	calls int
}

func (f *fakeFW) Ban(_ context.Context, els []ban.Element) error {
	f.calls++
	for _, e := range els {
		f.set[e.Prefix] = e.Timeout
	}
	return nil
}

func (f *fakeFW) Unban(_ context.Context, ps []netip.Prefix) error {
	for _, p := range ps {
		delete(f.set, p)
	}
	return nil
}

var ctx = context.Background()

// base is the daemon's default weights, with every other setting at its
// zero value (the defaults of ban.WindowConfig and ban.Policy).
func base() Config { return Config{FailureWeight: 1, ProbeWeight: 0.5} }

func withAlerts(p *alert.Policy, wake func()) Config {
	c := base()
	c.Alerts, c.Wake = p, wake
	return c
}

func setup(t *testing.T, cfg Config, allow *ban.Allowlist) (*Guard, *fakeFW, *store.DB, *testkit.Clock) {
	t.Helper()
	db, _ := testkit.OpenDB(t)
	fw := &fakeFW{set: map[netip.Prefix]time.Duration{}}
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	return New(cfg, db, fw, allow, c.Now, nil), fw, db, c
}

func failure(ip, user string, at time.Time) *detect.Record {
	r := &detect.Record{Text: at.Format(time.Stamp) + " Failed password for " + user + " from " + ip}
	r.Kind, r.Reason, r.Addr, r.User, r.Time, r.Counted = detect.KindFailure, "failed_password", netip.MustParseAddr(ip), user, at, 1
	return r
}

func TestBanAtThreshold(t *testing.T) {
	e, fw, db, c := setup(t, base(), nil)
	var got *store.Ban
	for i := 0; i < 5; i++ {
		b, err := e.Handle(ctx, failure("203.0.113.7", []string{"root", "admin"}[i%2], c.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if b != nil && i < 4 {
			t.Fatalf("banned after %d attempts", i+1)
		}
		got = b
		c.Add(time.Minute)
	}
	key := netip.MustParsePrefix("203.0.113.7/32")
	if got == nil || got.Prefix != key || got.Count != 1 || got.Expires.Sub(got.Start) != time.Hour || len(got.Users) != 2 || len(got.Evidence) != 2 {
		t.Fatalf("ban %+v", got)
	}
	if fw.set[key] != time.Hour {
		t.Fatalf("kernel set %v", fw.set)
	}
	active, _ := db.ActiveBans(c.Now())
	if len(active) != 1 {
		t.Fatalf("store has %d active bans", len(active))
	}
	// Lines that did not count an attempt are ignored.
	r := failure("203.0.113.8", "root", c.Now())
	r.Counted = 0
	for i := 0; i < 10; i++ {
		if b, _ := e.Handle(ctx, r); b != nil {
			t.Fatal("uncounted lines banned")
		}
	}
}

func TestProbesWeighHalf(t *testing.T) {
	e, _, _, c := setup(t, base(), nil)
	for i := 1; i <= 10; i++ {
		r := failure("198.51.100.9", "", c.Now())
		r.Kind = detect.KindProbe
		b, _ := e.Handle(ctx, r)
		if (b != nil) != (i == 10) {
			t.Fatalf("probe %d: ban %v", i, b)
		}
	}
}

// TestProbeThenFailureCountsOneFailure: a connection that offered a key,
// which was refused, then closed while authenticating (OpenSSH 9.2's two
// lines) counts as one failure, its probe taken back: at threshold 5 the
// fifth such connection is banned, at its failure line, not the fourth
// (1.5 each). When probes weigh more than failures, the connection
// weighs the probe.
func TestProbeThenFailureCountsOneFailure(t *testing.T) {
	for _, c := range []struct {
		failure, probe float64
		conns          int    // the connection that is banned
		line           string // at its line
	}{{1, 0.5, 5, "disconnected_preauth_user"}, {1, 0, 5, "disconnected_preauth_user"}, {2.5, 0.5, 2, "disconnected_preauth_user"},
		{0.5, 1, 5, "received_disconnect_preauth"}} {
		e, _, _, clk := setup(t, Config{FailureWeight: c.failure, ProbeWeight: c.probe}, nil)
		var s detect.Scanner
		s.SetRef(clk.Now())
		banned := ""
		for i := 1; i <= 6 && banned == ""; i++ {
			pid, port := 1760+i, 60770+i
			for _, l := range []string{
				fmt.Sprintf("Dec  5 11:16:0%d vm sshd[%d]: Received disconnect from 10.77.0.6 port %d:11: Bye Bye [preauth]", i, pid, port),
				fmt.Sprintf("Dec  5 11:16:0%d vm sshd[%d]: Disconnected from authenticating user root 10.77.0.6 port %d [preauth]", i, pid, port),
			} {
				s.Line("auth.log", int64(i), l, func(r *detect.Record) {
					r.Time = clk.Now()
					if b, _ := e.Handle(ctx, r); b != nil {
						banned = fmt.Sprintf("connection %d, %s line", i, r.Reason)
					}
				})
			}
			clk.Add(time.Second)
		}
		if want := fmt.Sprintf("connection %d, %s line", c.conns, c.line); banned != want {
			t.Errorf("weights %g and %g: banned at %q, want %q", c.failure, c.probe, banned, want)
		}
	}
}

func TestIPv6BannedPer64(t *testing.T) {
	e, fw, _, c := setup(t, base(), nil)
	for i, ip := range []string{"2001:db8:7::1", "2001:db8:7::2", "2001:db8:7::a:3", "2001:db8:7::4", "2001:db8:7:0:ffff::5"} {
		b, _ := e.Handle(ctx, failure(ip, "root", c.Now()))
		if (b != nil) != (i == 4) {
			t.Fatalf("attempt %d: %v", i, b)
		}
	}
	if _, ok := fw.set[netip.MustParsePrefix("2001:db8:7::/64")]; !ok {
		t.Fatalf("kernel set %v", fw.set)
	}
}

func TestAllowlistedNeverBannedAndLifted(t *testing.T) {
	e, fw, _, c := setup(t, base(), ban.NewAllowlist(netip.MustParsePrefix("192.0.2.0/24")))
	for i := 0; i < 20; i++ {
		if b, _ := e.Handle(ctx, failure("192.0.2.50", "root", c.Now())); b != nil {
			t.Fatal("allowlisted address banned")
		}
	}
	if _, err := e.Ban(ctx, netip.MustParsePrefix("192.0.2.50/32"), time.Hour, ""); !errors.Is(err, ErrAllowlisted) {
		t.Fatalf("manual ban of allowlisted: %v", err)
	}
	for i := 0; i < 5; i++ {
		e.Handle(ctx, failure("203.0.113.20", "root", c.Now()))
	}
	key := netip.MustParsePrefix("203.0.113.20/32")
	if _, ok := fw.set[key]; !ok {
		t.Fatal("not banned")
	}
	// Allowlisting a banned key lifts its ban at once.
	if err := e.SetAllowlist(ctx, ban.NewAllowlist(netip.MustParsePrefix("203.0.113.0/24"))); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.set[key]; ok {
		t.Fatal("ban not lifted by the allowlist")
	}
}

func TestEscalationUnbanAndRestore(t *testing.T) {
	e, fw, db, c := setup(t, base(), nil)
	key := netip.MustParsePrefix("203.0.113.30/32")
	attack := func() *store.Ban {
		var b *store.Ban
		for i := 0; i < 5; i++ {
			b, _ = e.Handle(ctx, failure("203.0.113.30", "root", c.Now()))
		}
		return b
	}
	if b := attack(); b == nil || b.Count != 1 {
		t.Fatalf("first ban %+v", b)
	}
	c.Add(2 * time.Hour) // the first ban expired
	if b := attack(); b == nil || b.Count != 2 || b.Expires.Sub(b.Start) != 2*time.Hour {
		t.Fatalf("second ban %+v", b)
	}
	// Unban lifts it and forgets the counter: four more attempts do not ban.
	if err := e.Unban(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.set[key]; ok {
		t.Fatal("still in the kernel set")
	}
	for i := 0; i < 4; i++ {
		if b, _ := e.Handle(ctx, failure("203.0.113.30", "root", c.Now())); b != nil {
			t.Fatal("banned again at once after unban")
		}
	}
	if err := e.Unban(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unban of a lifted ban: %v", err)
	}
	// A reboot: an empty kernel set, the same store, 30 minutes later.
	e.Ban(ctx, netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "by hand")
	if _, errs := e.BanMany(ctx, []Request{{Prefix: netip.MustParsePrefix("198.51.101.1/32"), Permanent: true, Reason: "forever", Origin: Admin}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	c.Add(30 * time.Minute)
	fw2 := &fakeFW{set: map[netip.Prefix]time.Duration{}}
	e2 := New(base(), db, fw2, nil, c.Now, nil)
	n, err := e2.Restore(ctx)
	if err != nil || n != 2 {
		t.Fatalf("restored %d, %v", n, err)
	}
	if left := fw2.set[netip.MustParsePrefix("198.51.100.0/24")]; left != 30*time.Minute {
		t.Fatalf("restored with %v left, want 30m", left)
	}
	if left, ok := fw2.set[netip.MustParsePrefix("198.51.101.1/32")]; !ok || left != 0 {
		t.Fatalf("permanent ban restored as %v %v", left, ok)
	}
}

func TestReconfigureKeepsCounters(t *testing.T) {
	e, fw, _, c := setup(t, base(), nil)
	for i := 0; i < 3; i++ {
		e.Handle(ctx, failure("203.0.113.50", "root", c.Now()))
	}
	// Lower the threshold to 4 and lengthen bans: the three attempts
	// already counted still count.
	if err := e.Reconfigure(Config{FailureWeight: 1, ProbeWeight: 0.5, Window: ban.WindowConfig{Threshold: 4}, Policy: ban.Policy{BanTime: 3 * time.Hour}}); err != nil {
		t.Fatalf("Reconfigure refused a lower threshold: %v", err)
	}
	b, _ := e.Handle(ctx, failure("203.0.113.50", "root", c.Now()))
	if b == nil || b.Expires.Sub(b.Start) != 3*time.Hour {
		t.Fatalf("ban after reconfigure: %+v", b)
	}
	if _, ok := fw.set[netip.MustParsePrefix("203.0.113.50/32")]; !ok {
		t.Fatal("not in the kernel set")
	}
	if e.Reconfigure(Config{FailureWeight: 1, Window: ban.WindowConfig{Threshold: 50}}) == nil {
		t.Fatal("a threshold above the remembered events was accepted as fully applied")
	}
}

// TestReconfigureKeepsLimitsItCannotHold: a reload whose thresholds and
// weights need more remembered attempts per address than the start made
// room for (a lighter weight, probes counted anew, a higher wide
// threshold) says so and leaves the threshold and weights as they were,
// so that bans still come where they came; the count stopped short of the
// threshold before, and nothing was banned again while Reconfigure said
// all was applied.
func TestReconfigureKeepsLimitsItCannotHold(t *testing.T) {
	deferred := func(t *testing.T, err error, need, room int) {
		t.Helper()
		var d *Deferred
		if !errors.As(err, &d) || !d.Limits || d.Horizons || d.Need != need || d.Room != room {
			t.Fatalf("Reconfigure: %v (%+v), want the limits deferred: need %d, room %d", err, d, need, room)
		}
	}
	// until feeds r (a copy each time) until a ban, and returns how many
	// it took (0: none in n).
	until := func(e *Guard, c *testkit.Clock, r func() *detect.Record, n int) int {
		for i := 1; i <= n; i++ {
			if b, _ := e.Handle(ctx, r()); b != nil {
				return i
			}
			c.Add(time.Second)
		}
		return 0
	}
	t.Run("lighter weight", func(t *testing.T) {
		// failure_weight 5 at threshold 5: room for one attempt.
		e, _, _, c := setup(t, Config{FailureWeight: 5, Window: ban.WindowConfig{Threshold: 5}}, nil)
		deferred(t, e.Reconfigure(Config{FailureWeight: 1, Window: ban.WindowConfig{Threshold: 5}}), 5, 1)
		if n := until(e, c, func() *detect.Record { return failure("203.0.113.77", "root", c.Now()) }, 50); n != 1 {
			t.Fatalf("banned at failure %d, want 1 (failure_weight 5 still in force)", n)
		}
	})
	t.Run("probes counted anew", func(t *testing.T) {
		e, _, _, c := setup(t, Config{FailureWeight: 1}, nil) // room for 5
		deferred(t, e.Reconfigure(Config{FailureWeight: 1, ProbeWeight: 0.5}), 10, 5)
		probe := func() *detect.Record {
			r := failure("198.51.100.77", "", c.Now())
			r.Kind = detect.KindProbe
			return r
		}
		if n := until(e, c, probe, 50); n != 0 {
			t.Fatalf("probes banned at the %dth, with probes not counted in force", n)
		}
		if n := until(e, c, func() *detect.Record { return failure("198.51.100.77", "root", c.Now()) }, 50); n != 5 {
			t.Fatalf("banned at failure %d after the probes, want 5", n)
		}
	})
	t.Run("wide threshold", func(t *testing.T) {
		cfg := Config{FailureWeight: 1, WideV6: 48, Wide: ban.WindowConfig{Threshold: 20}} // room for 20 a /48
		e, fw, _, c := setup(t, cfg, nil)
		cfg.Wide.Threshold = 25
		deferred(t, e.Reconfigure(cfg), 25, 20)
		n := 0
		wide := func() *detect.Record { n++; return failure(fmt.Sprintf("2001:db8:78:%x::1", n), "root", c.Now()) }
		if got := until(e, c, wide, 50); got != 20 {
			t.Fatalf("the /48 banned at failure %d, want 20 (%v)", got, fw.set)
		}
	})
	t.Run("fits", func(t *testing.T) {
		// Room for 10 (probes of 0.5): a failure_weight of 0.5 fits, and
		// is applied.
		e, _, _, c := setup(t, base(), nil)
		if err := e.Reconfigure(Config{FailureWeight: 0.5, ProbeWeight: 0.5}); err != nil {
			t.Fatal(err)
		}
		if n := until(e, c, func() *detect.Record { return failure("192.0.2.77", "root", c.Now()) }, 50); n != 10 {
			t.Fatalf("banned at failure %d, want 10", n)
		}
	})
}

// listingFW is a fakeFW that can also list, with the time left.
type listingFW struct{ fakeFW }

func (f *listingFW) List() ([]ban.Element, error) {
	var out []ban.Element
	for p, d := range f.set {
		out = append(out, ban.Element{Prefix: p, Timeout: d, Expires: d / 2})
	}
	return out, nil
}

func TestRestoreAdoptsUnknownKernelElements(t *testing.T) {
	_, _, db, c := setup(t, base(), nil)
	fw := &listingFW{fakeFW{set: map[netip.Prefix]time.Duration{
		netip.MustParsePrefix("203.0.113.40/32"): 2 * time.Hour, // 1 h left
		netip.MustParsePrefix("203.0.113.41/32"): 0,             // permanent
	}}}
	e := New(base(), db, fw, nil, c.Now, nil)
	n, err := e.Restore(ctx)
	if err != nil || n != 2 {
		t.Fatalf("restored %d, %v", n, err)
	}
	active, _ := db.ActiveBans(c.Now())
	if len(active) != 2 {
		t.Fatalf("store has %v", active)
	}
	for _, b := range active {
		if b.Prefix.Addr().String() == "203.0.113.40" && b.Expires.Sub(c.Now()) != time.Hour {
			t.Errorf("adopted ban expires in %v, want the kernel's 1h", b.Expires.Sub(c.Now()))
		}
		if b.Prefix.Addr().String() == "203.0.113.41" && !b.Expires.IsZero() {
			t.Errorf("permanent element adopted as %v", b.Expires)
		}
	}
	// Known now: a second restore adopts nothing new.
	if _, err := e.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	if hist, _ := db.History(c.Now().Add(-time.Hour)); len(hist) != 2 {
		t.Fatalf("history %d, want 2", len(hist))
	}
}

// TestRecordedLogBansOnlyTheRealClient runs the real recorded log through
// detection and the engine with a threshold of 5.
func TestRecordedLogBansOnlyTheRealClient(t *testing.T) {
	e, fw, _, _ := setup(t, base(), nil)
	data, err := os.ReadFile("../../testdata/recorded/openssh-9.2-traditional.log")
	if err != nil {
		t.Fatal(err)
	}
	var s detect.Scanner
	emit := func(r *detect.Record) {
		r.Time = time.Time{} // the clock decides
		if _, err := e.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	s.SetRef(time.Now())
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		s.Line("auth.log", int64(i+1), line, emit)
	}
	s.Flush(emit)
	if len(fw.set) != 1 {
		t.Fatalf("kernel set %v, want only 10.200.0.2", fw.set)
	}
	if _, ok := fw.set[netip.MustParsePrefix("10.200.0.2/32")]; !ok {
		t.Fatalf("kernel set %v", fw.set)
	}
}

func success(ip, user string, at time.Time) *detect.Record {
	r := &detect.Record{Text: "Accepted publickey for " + user + " from " + ip}
	r.Kind, r.Reason, r.Addr, r.User, r.Method, r.Time = detect.KindSuccess, "accepted", netip.MustParseAddr(ip), user, "publickey", at
	return r
}

// outbox returns the alert records in the store, oldest first, their bans
// resolved as the worker resolves them.
func outbox(t *testing.T, db *store.DB) []*alert.Message {
	t.Helper()
	var out []*alert.Message
	db.Alerts(0, func(_ uint64, data []byte, _ bool) bool {
		m, err := alert.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == alert.KindBan && (m.Ban != nil || len(m.BanRef) == 0) {
			t.Errorf("ban alert %+v holds a copy of the ban instead of a reference to it", m)
		}
		m.ResolveBan(Resolver(db))
		out = append([]*alert.Message{m}, out...)
		return true
	})
	return out
}

// TestLoginAlerts: with the injected clock, a login alert is written with
// the login; the same user and address within 5 minutes gives none; a
// login after failed attempts of the same client is high and says so; a
// ban writes its alert with its escalation level.
func TestLoginAlerts(t *testing.T) {
	woken := 0
	pol := &alert.Policy{Host: "web-01", Routes: []alert.Route{{Channel: "email", Kinds: alert.Kinds}}}
	e, _, db, c := setup(t, withAlerts(pol, func() { woken++ }), nil)
	login := func(ip, user string) {
		t.Helper()
		if _, err := e.Handle(ctx, success(ip, user, c.Now())); err != nil {
			t.Fatal(err)
		}
	}
	login("198.51.100.4", "alice")
	c.Add(4 * time.Minute)
	login("198.51.100.4", "alice") // within 5 minutes of the last: no alert
	c.Add(4 * time.Minute)
	login("198.51.100.4", "alice") // 4 minutes after the last login, which is what counts: none
	c.Add(6 * time.Minute)
	login("198.51.100.4", "alice") // alert, known network now: info
	for _, u := range []string{"root", "admin"} {
		e.Handle(ctx, failure("192.0.2.50", u, c.Now()))
	}
	login("192.0.2.50", "bob") // after 2 failed attempts: high
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		e.Handle(ctx, failure("203.0.113.9", u, c.Now()))
	}
	got := outbox(t, db)
	if len(got) != 4 || woken != 4 {
		t.Fatalf("%d alerts (woken %d), want 4: %+v", len(got), woken, got)
	}
	if got[0].Severity != alert.Warning || got[1].Severity != alert.Info || got[1].Login.User != "alice" {
		t.Errorf("alice: %v then %v", got[0].Severity, got[1].Severity)
	}
	if got[2].Severity != alert.High || got[2].Login.Failed != 2 || !strings.Contains(strings.Join(got[2].Reasons, ";"), "after 2 failed attempts") {
		t.Errorf("login after failures: %+v", got[2])
	}
	if b := got[3].Ban; got[3].Kind != alert.KindBan || b == nil || b.Nth != 1 || b.Attempts != 5 || len(b.Users) != 5 || b.Duration != time.Hour || b.First == "" {
		t.Errorf("ban alert: %+v", got[3])
	}
	logins, _ := db.Logins(time.Time{})
	if len(logins) != 5 {
		t.Errorf("%d logins recorded, want 5 (de-duplication drops alerts, not records)", len(logins))
	}
}

// failingFW refuses every write, as a kernel without nftables would.
type failingFW struct{}

func (f *failingFW) Ban(context.Context, []ban.Element) error {
	return errors.New("netlink: operation not permitted")
}
func (f *failingFW) Unban(context.Context, []netip.Prefix) error {
	return errors.New("netlink: operation not permitted")
}

// TestFirewallFailureRecordsNothing: kernel first, store second. A ban
// the kernel refused is not recorded (list would lie) and not alerted;
// an unban the kernel refused keeps the ban recorded.
func TestFirewallFailureRecordsNothing(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	pol := &alert.Policy{Host: "web-01", Routes: []alert.Route{{Channel: "email", Kinds: alert.Kinds}}}
	e := New(withAlerts(pol, nil), db, &failingFW{}, nil, c.Now, nil)
	var err error
	for range 5 {
		_, err = e.Handle(ctx, failure("203.0.113.60", "root", c.Now()))
	}
	if err == nil || !strings.Contains(err.Error(), "operation not permitted") {
		t.Fatalf("ban through a failing firewall: %v", err)
	}
	if _, err := e.Ban(ctx, netip.MustParsePrefix("198.51.100.0/24"), time.Hour, ""); err == nil {
		t.Fatal("manual ban through a failing firewall succeeded")
	}
	if bans, _ := db.ActiveBans(c.Now()); len(bans) != 0 {
		t.Fatalf("bans recorded without the kernel: %+v", bans)
	}
	if got := outbox(t, db); len(got) != 0 {
		t.Fatalf("alerts for bans that were not made: %+v", got)
	}
	// A recorded ban whose unban the kernel refuses stays recorded.
	e2, _, db2, c2 := setup(t, base(), nil)
	key := netip.MustParsePrefix("203.0.113.61/32")
	if _, err := e2.Ban(ctx, key, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	e3 := New(base(), db2, &failingFW{}, nil, c2.Now, nil)
	if err := e3.Unban(ctx, key); err == nil {
		t.Fatal("unban through a failing firewall succeeded")
	}
	if bans, _ := db2.ActiveBans(c2.Now()); len(bans) != 1 {
		t.Fatalf("ban lifted in the store though the kernel kept it: %+v", bans)
	}
}

// TestRestoreSkipsAlmostExpired: a ban with less than a second left is
// left to expire instead of being written with a zero (permanent!) or
// sub-second timeout.
func TestRestoreSkipsAlmostExpired(t *testing.T) {
	e, _, db, c := setup(t, base(), nil)
	e.Ban(ctx, netip.MustParsePrefix("203.0.113.70/32"), time.Hour, "")
	e.Ban(ctx, netip.MustParsePrefix("203.0.113.71/32"), 10*time.Second, "")
	c.Add(9*time.Second + 600*time.Millisecond) // 0.4 s left on .71
	fw := &fakeFW{set: map[netip.Prefix]time.Duration{}}
	n, err := New(base(), db, fw, nil, c.Now, nil).Restore(ctx)
	if err != nil || n != 1 {
		t.Fatalf("restored %d, %v; want 1", n, err)
	}
	if _, ok := fw.set[netip.MustParsePrefix("203.0.113.71/32")]; ok {
		t.Fatalf("a ban with 0.4 s left was restored: %v", fw.set)
	}
}

// TestFlushCounts: the hourly counts gathered by Handle reach the store
// at FlushCounts, in the hour of each event's own time, and a second
// flush adds only what came since.
func TestFlushCounts(t *testing.T) {
	e, _, db, c := setup(t, base(), nil)
	early := c.Now().Add(-3 * time.Hour)
	e.Handle(ctx, failure("203.0.113.80", "root", early))
	e.Handle(ctx, failure("203.0.113.80", "admin", c.Now()))
	probe := failure("198.51.100.80", "", c.Now())
	probe.Kind = detect.KindProbe
	e.Handle(ctx, probe)
	if err := e.FlushCounts(); err != nil {
		t.Fatal(err)
	}
	e.Handle(ctx, failure("203.0.113.81", "oracle", c.Now()))
	if err := e.FlushCounts(); err != nil {
		t.Fatal(err)
	}
	if err := e.FlushCounts(); err != nil { // nothing new: adds nothing
		t.Fatal(err)
	}
	all, err := db.CountsBetween(early.Add(-time.Hour), c.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if all.Kinds["failure"] != 3 || all.Kinds["probe"] != 1 || all.Addrs["203.0.113.80"] != (store.Tries{Failed: 2}) || all.Addrs["198.51.100.80"] != (store.Tries{Probes: 1}) ||
		all.Users["oracle"] != 1 || all.Failed != 3 || all.Probes != 1 {
		t.Fatalf("counts %+v", all)
	}
	thisHour, _ := db.CountsBetween(c.Now().Truncate(time.Hour), c.Now().Add(time.Hour))
	if thisHour.Kinds["failure"] != 2 {
		t.Fatalf("counts of this hour %+v: the early failure belongs 3 hours back", thisHour)
	}
}

// gateFW holds its first Ban until released (a slow kernel), and counts
// the batches and elements it was given.
type gateFW struct {
	mu      sync.Mutex
	gate    chan struct{}
	batches []int
	set     map[netip.Prefix]time.Duration
}

func (f *gateFW) Ban(_ context.Context, els []ban.Element) error {
	<-f.gate
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, len(els))
	for _, e := range els {
		f.set[e.Prefix] = e.Timeout
	}
	return nil
}

func (f *gateFW) Unban(context.Context, []netip.Prefix) error { return nil }

func (f *gateFW) state() (int, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.set), slices.Clone(f.batches)
}

// TestSubmitGroupsBans: while the kernel is busy with one ban, the bans
// decided meanwhile are committed together (one netlink batch and one
// transaction each), none is lost, and the same key twice is escalated as
// two bans in order; an idle ban goes alone at once.
func TestSubmitGroupsBans(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	fw := &gateFW{gate: make(chan struct{}), set: map[netip.Prefix]time.Duration{}}
	cfg := base()
	cfg.Window.Threshold = 1
	g := New(cfg, db, fw, nil, c.Now, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	defer func() { stop(); <-done }()

	const n = 3000
	for i := range n {
		if err := g.Submit(ctx, failure(fmt.Sprintf("10.1.%d.%d", i/250, i%250+1), "root", c.Now())); err != nil {
			t.Fatal(err)
		}
	}
	// Its ban is decided and waits in the queue: a second decision for
	// it is refused by the gate (banned already), not made again.
	g.Submit(ctx, failure("10.1.0.1", "root", c.Now()))
	if r := g.Refused(); r["detected already"] != 1 {
		t.Fatalf("the repeat decision: %v", r)
	}
	close(fw.gate)
	testkit.Eventually(t, time.Minute, "every ban recorded", func() (bool, string) {
		bans, err := db.ActiveBans(c.Now())
		return len(bans) == n, fmt.Sprintf("%d recorded, %v", len(bans), err)
	})
	k, batches := fw.state()
	if k != n || len(batches) > 20 {
		t.Fatalf("%d in the set, %d netlink batches for %d bans: not grouped (%v)", k, len(batches), n, batches)
	}
	if off, err := db.Offender(netip.MustParsePrefix("10.1.0.1/32")); err != nil || off.Bans != 1 {
		t.Fatalf("the repeat ban recorded: %+v %v", off, err)
	}
	// Idle: one ban, alone, without waiting for company.
	g.Submit(ctx, failure("192.0.2.200", "root", c.Now()))
	testkit.Eventually(t, 10*time.Second, "the idle ban", func() (bool, string) {
		k, b := fw.state()
		return k == n+1 && b[len(b)-1] == 1, fmt.Sprintf("%d, batches %v", k, b)
	})
}

// TestAncientStampCountsAsNow: one line stamped 0001-01-01 does not stop
// the next 20 failures from banning (it counts as now).
func TestAncientStampCountsAsNow(t *testing.T) {
	e, fw, _, c := setup(t, base(), nil)
	e.Handle(ctx, failure("198.51.100.1", "root", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)))
	for i := range 20 {
		e.Handle(ctx, failure(fmt.Sprintf("203.0.113.%d", 100+i/5), "root", c.Now()))
	}
	if len(fw.set) != 4 {
		t.Fatalf("%d bans after 20 failures from 4 addresses, want 4: %v", len(fw.set), fw.set)
	}
}

// TestLinkLocalNeverBanned: failures from a neighbour's link-local
// address ban nothing (fe80::/64 in the set would cut neighbour discovery).
func TestLinkLocalNeverBanned(t *testing.T) {
	e, fw, _, c := setup(t, base(), nil)
	for i := range 20 {
		r := failure("fe80::1", "root", c.Now())
		r.Addr = netip.MustParseAddr("fe80::1%eth0")
		e.Handle(ctx, r)
		e.Handle(ctx, failure(fmt.Sprintf("ff02::%d", i%2+1), "root", c.Now()))
	}
	if len(fw.set) != 0 {
		t.Fatalf("banned %v", fw.set)
	}
}

// TestWidePrefixBanned: an IPv6 attacker rotating through the /64s of
// its /56 (4 guesses from each of 50) stays under the per-/64 threshold;
// counted per /48 too, it is banned there.
func TestWidePrefixBanned(t *testing.T) {
	cfg := base()
	cfg.WideV6, cfg.Wide.Threshold = 48, 20
	e, fw, _, c := setup(t, cfg, nil)
	for n := range 50 {
		for range 4 {
			e.Handle(ctx, failure(fmt.Sprintf("2001:db8:77:%x::1", n), "root", c.Now()))
		}
		c.Add(time.Second)
	}
	if len(fw.set) != 1 {
		t.Fatalf("kernel set %v, want the /48 only", fw.set)
	}
	if _, ok := fw.set[netip.MustParsePrefix("2001:db8:77::/48")]; !ok {
		t.Fatalf("kernel set %v", fw.set)
	}
	// Off: nothing.
	e2, fw2, _, c2 := setup(t, base(), nil)
	for n := range 50 {
		for range 4 {
			e2.Handle(ctx, failure(fmt.Sprintf("2001:db8:77:%x::1", n), "root", c2.Now()))
		}
	}
	if len(fw2.set) != 0 {
		t.Fatalf("banned with wide prefixes off: %v", fw2.set)
	}
}

// pickyFW refuses one prefix, as the kernel refuses an element that
// overlaps an interval already in the set.
type pickyFW struct {
	fakeFW
	refuse netip.Prefix
}

func (f *pickyFW) Ban(ctx context.Context, els []ban.Element) error {
	for _, e := range els {
		if e.Prefix == f.refuse {
			return errors.New("netlink: file exists")
		}
	}
	return f.fakeFW.Ban(ctx, els)
}

// TestBatchSurvivesOneRefusal: one element the kernel refuses does not
// sink the other bans of its batch; it alone is not recorded.
func TestBatchSurvivesOneRefusal(t *testing.T) {
	db, _ := testkit.OpenDB(t)
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	fw := &pickyFW{fakeFW: fakeFW{set: map[netip.Prefix]time.Duration{}}, refuse: netip.MustParsePrefix("10.0.0.3/32")}
	g := New(base(), db, fw, nil, c.Now, nil)
	var reqs []Request
	for i := 1; i <= 5; i++ {
		reqs = append(reqs, Request{Prefix: netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/32", i)), For: time.Hour, Origin: Admin})
	}
	bans, errs := g.BanMany(ctx, reqs)
	for i := range bans {
		if (bans[i] == nil) != (i == 2) || (errs[i] == nil) != (i != 2) {
			t.Fatalf("ban %d: %v, %v", i, bans[i], errs[i])
		}
	}
	if len(fw.set) != 4 {
		t.Fatalf("%d in the kernel", len(fw.set))
	}
	if active, _ := db.ActiveBans(c.Now()); len(active) != 4 {
		t.Fatalf("%d recorded", len(active))
	}
}

// TestCountsDistinct: connections (host and pid) and addresses are counted
// once per hour and once per day, days ending at midnight in the
// configured zone; bans count in the hour they start.
func TestCountsDistinct(t *testing.T) {
	cfg := base()
	cfg.Loc = time.FixedZone("UTC+2", 2*3600)
	e, _, db, c := setup(t, cfg, nil)
	// 21:10 UTC is 23:10 in the zone; 22:10 UTC the next day there.
	at := time.Date(2026, 11, 24, 21, 10, 0, 0, time.UTC)
	rec := func(ip string, pid int, at time.Time) {
		r := failure(ip, "root", at)
		r.Host, r.PID = "web1", pid
		e.Handle(ctx, r)
	}
	rec("192.0.2.1", 100, at)
	rec("192.0.2.1", 100, at.Add(time.Minute))    // same connection, same address
	rec("192.0.2.2", 101, at.Add(2*time.Minute))  // another of each
	rec("192.0.2.1", 102, at.Add(30*time.Minute)) // a new connection, a known address
	rec("192.0.2.1", 102, at.Add(time.Hour))      // the next hour (and day, in the zone)
	rec("192.0.2.3", 103, at.Add(time.Hour))
	c.Set(at.Add(time.Hour))
	if _, err := e.Ban(ctx, netip.MustParsePrefix("198.51.100.0/24"), time.Hour, "by hand"); err != nil {
		t.Fatal(err)
	}
	if err := e.FlushCounts(); err != nil {
		t.Fatal(err)
	}
	var hours []store.Counts
	db.Hours(at.Add(-time.Hour), at.Add(2*time.Hour), func(_ time.Time, h store.Counts) { hours = append(hours, h) })
	if len(hours) != 2 {
		t.Fatalf("%d hours", len(hours))
	}
	h1, h2 := hours[0], hours[1]
	if h1.Conns != 3 || h1.Addresses != 2 || h1.DayConns != 3 || h1.DayAddresses != 2 || h1.Failed != 4 || h1.Bans != 0 {
		t.Errorf("first hour %+v", h1)
	}
	// A new day in the zone: the known connection and address count again.
	if h2.Conns != 2 || h2.Addresses != 2 || h2.DayConns != 2 || h2.DayAddresses != 2 || h2.Bans != 1 {
		t.Errorf("second hour %+v", h2)
	}
}

// TestSubmitWhileRunStops: bans submitted while Run stops are all made,
// none left in a queue that nobody reads any more (Submit used to pick at
// random between the queue and the stopped channel, and about half were
// lost).
func TestSubmitWhileRunStops(t *testing.T) {
	for round := range 5 {
		db, _ := testkit.OpenDB(t)
		c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
		cfg := base()
		cfg.Window.Threshold = 1
		fw := &gateFW{gate: make(chan struct{}), set: map[netip.Prefix]time.Duration{}}
		close(fw.gate)
		g := New(cfg, db, fw, nil, c.Now, nil)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- g.Run(runCtx) }()
		const n = 100
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if i == n/2 {
					stop() // Run stops while the others submit
				}
				if err := g.Submit(ctx, failure(fmt.Sprintf("10.9.%d.%d", round, i+1), "root", c.Now())); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		stop()
		<-done
		if bans, _ := db.ActiveBans(c.Now()); len(bans) != n {
			t.Fatalf("round %d: %d of %d bans made", round, len(bans), n)
		}
	}
}

// syncFW is a firewall safe for concurrent use that tells what it banned.
type syncFW struct {
	mu  sync.Mutex
	set map[netip.Prefix]bool
	in  chan netip.Prefix
}

func (f *syncFW) Ban(_ context.Context, els []ban.Element) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range els {
		f.set[e.Prefix] = true
		f.in <- e.Prefix
	}
	return nil
}

func (f *syncFW) Unban(context.Context, []netip.Prefix) error { return nil }

// TestBanNotBehindAnotherRecord: while a peer's batch is being recorded
// (its OnBan held, inside its turn of the store's stage), a ban detected
// here still goes into the kernel at once; both are then recorded. When
// one commit held the kernel and the store together, the detected ban
// waited for the other's whole write.
func TestBanNotBehindAnotherRecord(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	cfg := base()
	cfg.OnBan = func(origin string) {
		if origin == PeerOrigin("b") {
			entered <- struct{}{}
			<-release
		}
	}
	db, _ := testkit.OpenDB(t)
	fw := &syncFW{set: map[netip.Prefix]bool{}, in: make(chan netip.Prefix, 16)}
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	g := New(cfg, db, fw, nil, c.Now, nil)
	peer, mine := netip.MustParsePrefix("198.51.100.1/32"), netip.MustParsePrefix("203.0.113.7/32")
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errs := g.BanMany(ctx, []Request{{Prefix: peer, Until: c.Now().Add(time.Hour), Reason: "peer", Origin: PeerOrigin("b")}})
		if errs[0] != nil {
			t.Error(errs[0])
		}
	})
	if p := <-fw.in; p != peer {
		t.Fatalf("first in the kernel: %v", p)
	}
	<-entered // the peer's batch is in the store's stage, held there
	wg.Go(func() {
		for range 5 {
			if _, err := g.Handle(ctx, failure(mine.Addr().String(), "root", c.Now())); err != nil {
				t.Error(err)
			}
		}
	})
	select {
	case p := <-fw.in:
		if p != mine {
			t.Fatalf("in the kernel: %v, want %v", p, mine)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the detected ban waited for the peer's batch to be recorded")
	}
	close(release)
	wg.Wait()
	active, err := db.ActiveBans(c.Now())
	if err != nil || len(active) != 2 {
		t.Fatalf("recorded: %+v %v", active, err)
	}
}

// firstBanHeld is a Guard banning at the first attempt, its committer
// (Run) running, whose first ban is held inside its store stage (OnBan)
// until free is called; entered receives when it is. The test's end frees
// it and stops Run.
func firstBanHeld(t *testing.T) (g *Guard, fw *syncFW, db *store.DB, c *testkit.Clock, entered <-chan struct{}, free func()) {
	release, in := make(chan struct{}), make(chan struct{}, 1)
	var bans atomic.Int32
	cfg := base()
	cfg.Window.Threshold = 1
	cfg.OnBan = func(string) {
		if bans.Add(1) == 1 {
			in <- struct{}{}
			<-release
		}
	}
	fw = &syncFW{set: map[netip.Prefix]bool{}, in: make(chan netip.Prefix, 16)}
	free = sync.OnceFunc(func() { close(release) })
	g, db, c = running(t, cfg, fw, free)
	return g, fw, db, c, in, free
}

// TestBanNotBehindTheLastOnesDisk: Run's next detected ban goes into the
// kernel while the one before it is still being written to the store
// (held there, as a disk sync is while a local user fills the disk), and
// a Sync returns only once both are written.
func TestBanNotBehindTheLastOnesDisk(t *testing.T) {
	g, fw, db, c, entered, free := firstBanHeld(t)

	if err := g.Submit(ctx, failure("203.0.113.1", "root", c.Now())); err != nil {
		t.Fatal(err)
	}
	<-entered // the first ban is in its store stage, held there
	synced := make(chan error, 1)
	go func() { synced <- g.Sync(ctx) }()
	if err := g.Submit(ctx, failure("203.0.113.2", "root", c.Now())); err != nil {
		t.Fatal(err)
	}
	if p := <-fw.in; p.String() != "203.0.113.1/32" {
		t.Fatalf("first in the kernel: %v", p)
	}
	select {
	case p := <-fw.in:
		if p.String() != "203.0.113.2/32" {
			t.Fatalf("second in the kernel: %v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second ban waited in the queue for the first one's store stage")
	}
	select {
	case err := <-synced:
		t.Fatalf("Sync returned (%v) while the first ban was not written", err)
	default:
	}
	free()
	if err := <-synced; err != nil {
		t.Fatal(err)
	}
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	active, err := db.ActiveBans(c.Now())
	if err != nil || len(active) != 2 {
		t.Fatalf("recorded: %+v %v", active, err)
	}
}

// TestRestoreWaitsForPendingRecords: the table found gone at run time is
// made again and restored from the store; a ban whose element went into
// the old table and whose record was still waiting for the disk is
// restored too (Restore waits for the store stages before it reads).
func TestRestoreWaitsForPendingRecords(t *testing.T) {
	g, fw, _, c, entered, free := firstBanHeld(t)
	if err := g.Submit(ctx, failure("203.0.113.9", "root", c.Now())); err != nil {
		t.Fatal(err)
	}
	<-entered // in the kernel; its record waits
	<-fw.in
	fw.mu.Lock()
	clear(fw.set) // the table deleted, made again empty
	fw.mu.Unlock()
	restored := make(chan error, 1)
	go func() { _, err := g.Restore(ctx); restored <- err }()
	testkit.Eventually(t, 10*time.Second, "the restore waiting for the record, or done", func() (bool, string) {
		g.turns.mu.Lock()
		defer g.turns.mu.Unlock()
		return g.turns.next > 1 || len(restored) > 0, ""
	})
	if len(restored) > 0 {
		t.Fatal("the restore read the store while a ban's record was still to be written")
	}
	free()
	if err := <-restored; err != nil {
		t.Fatal(err)
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if !fw.set[netip.MustParsePrefix("203.0.113.9/32")] {
		t.Fatalf("not restored: %v", fw.set)
	}
}

// TestPanicInCommitFreesTheNext: a callback that panics inside a commit's
// store stage (an HTTP server recovers it, and the daemon goes on) leaves
// the stages free: a later ban is made and recorded, an unban answers.
func TestPanicInCommitFreesTheNext(t *testing.T) {
	cfg := base()
	cfg.OnBan = func(origin string) {
		if origin == Admin {
			panic("boom")
		}
	}
	db, _ := testkit.OpenDB(t)
	fw := &syncFW{set: map[netip.Prefix]bool{}, in: make(chan netip.Prefix, 16)}
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	g := New(cfg, db, fw, nil, c.Now, nil)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("OnBan's panic did not reach the caller")
			}
		}()
		g.Ban(ctx, netip.MustParsePrefix("198.51.100.1/32"), time.Hour, "by hand")
	}()
	<-fw.in
	done := make(chan error, 1)
	go func() {
		for range 5 {
			if _, err := g.Handle(ctx, failure("203.0.113.7", "root", c.Now())); err != nil {
				done <- err
				return
			}
		}
		done <- g.Unban(ctx, netip.MustParsePrefix("198.51.100.9/32"))
	}()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unban of a prefix never banned: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a ban and an unban stuck after a recovered panic in a commit")
	}
	if b, err := db.ActiveBans(c.Now()); err != nil || !slices.ContainsFunc(b, func(b store.Ban) bool { return b.Prefix.String() == "203.0.113.7/32" }) {
		t.Fatalf("the later ban not recorded: %+v %v", b, err)
	}
}

// heldFW is a firewall whose first call is held (entered receives its
// size) until release is closed; calls has every call's prefixes in order.
type heldFW struct {
	mu      sync.Mutex
	calls   [][]netip.Prefix
	entered chan int
	release chan struct{}
}

func (f *heldFW) Ban(_ context.Context, els []ban.Element) error {
	f.mu.Lock()
	first := len(f.calls) == 0
	ps := make([]netip.Prefix, len(els))
	for i, e := range els {
		ps[i] = e.Prefix
	}
	f.calls = append(f.calls, ps)
	f.mu.Unlock()
	if first {
		f.entered <- len(els)
		<-f.release
	}
	return nil
}

func (f *heldFW) Unban(context.Context, []netip.Prefix) error { return nil }

// TestDetectedBanBeforeAPeersPieces: a peer's batch of 1,000 bans goes
// into the kernel in pieces; a ban detected here while the first piece
// is being written goes in right after it, before the rest, and every ban
// of both is recorded. When the batch went in whole, the detected ban
// waited for all of it (up to 100 ms into a set of 100,000 elements).
func TestDetectedBanBeforeAPeersPieces(t *testing.T) {
	cfg := base()
	cfg.Window.Threshold = 1
	fw := &heldFW{entered: make(chan int, 1), release: make(chan struct{})}
	free := sync.OnceFunc(func() { close(fw.release) })
	g, db, c := running(t, cfg, fw, free)

	reqs := peerBans(1000, c.Now())
	var wg sync.WaitGroup
	wg.Go(func() {
		_, errs := g.BanMany(ctx, reqs)
		for i, err := range errs {
			if err != nil {
				t.Errorf("peer ban %d: %v", i, err)
			}
		}
	})
	n := <-fw.entered // the peer's first netlink batch, held
	mine := netip.MustParsePrefix("203.0.113.7/32")
	if err := g.Submit(ctx, failure(mine.Addr().String(), "root", c.Now())); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the detected ban waiting for the kernel", func() (bool, string) {
		return g.fwMu.urgent.Load() == 1, fmt.Sprint("urgent ", g.fwMu.urgent.Load())
	})
	free()
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	fw.mu.Lock()
	calls := slices.Clone(fw.calls)
	fw.mu.Unlock()
	if n >= len(reqs) || len(calls) < 3 || len(calls[1]) != 1 || calls[1][0] != mine {
		sizes := make([]int, len(calls))
		for i, c := range calls {
			sizes[i] = len(c)
		}
		t.Fatalf("netlink batches of %v: want the peer's first piece, then the detected ban alone, then the peer's rest", sizes)
	}
	seen := map[netip.Prefix]int{}
	for _, c := range calls {
		for _, p := range c {
			seen[p]++
		}
	}
	if len(seen) != len(reqs)+1 {
		t.Fatalf("%d prefixes in the kernel, want %d", len(seen), len(reqs)+1)
	}
	for p, k := range seen {
		if k != 1 {
			t.Fatalf("%v written %d times", p, k)
		}
	}
	active, err := db.ActiveBans(c.Now())
	if err != nil || len(active) != len(reqs)+1 {
		t.Fatalf("recorded: %d bans, want %d (%v)", len(active), len(reqs)+1, err)
	}
}

// TestBansNotBehindManyDisks: while the store stages of many detected
// bans wait for the disk (held in OnBan), every next detected ban still
// goes into the kernel at once. With 4 store stages at once, the fifth
// waited in the queue for one of them to end.
func TestBansNotBehindManyDisks(t *testing.T) {
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	cfg := base()
	cfg.Window.Threshold = 1
	cfg.OnBan = func(string) { <-release }
	fw := &syncFW{set: map[netip.Prefix]bool{}, in: make(chan netip.Prefix, 16)}
	g, db, c := running(t, cfg, fw, free)
	const n = 12
	for i := range n {
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		if err := g.Submit(ctx, failure(ip, "root", c.Now())); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-fw.in:
			if p.Addr().String() != ip {
				t.Fatalf("in the kernel: %v, want %s", p, ip)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("ban %d of %d waited for the store stages of the %d before it", i+1, n, i)
		}
	}
	free()
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if active, err := db.ActiveBans(c.Now()); err != nil || len(active) != n {
		t.Fatalf("recorded: %d, want %d (%v)", len(active), n, err)
	}
}

// twoHeldFW holds its first two netlink batches, each until its out is
// closed (in receives when one is entered).
type twoHeldFW struct {
	mu  sync.Mutex
	n   int
	in  [2]chan struct{}
	out [2]chan struct{}
}

func (f *twoHeldFW) Ban(_ context.Context, els []ban.Element) error {
	f.mu.Lock()
	k := f.n
	f.n++
	f.mu.Unlock()
	if k < 2 {
		f.in[k] <- struct{}{}
		<-f.out[k]
	}
	return nil
}

func (f *twoHeldFW) Unban(context.Context, []netip.Prefix) error { return nil }

// blockedOnLock reports whether a goroutine running fn waits for a
// sync.Mutex.
func blockedOnLock(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		head, _, _ := strings.Cut(g, "\n")
		if strings.Contains(head, "[sync.Mutex.Lock") && strings.Contains(g, fn) {
			return true
		}
	}
	return false
}

// TestRestoreDuringASplitPeerBatch: a peer's batch steps aside for a
// detected ban after its first piece; a Restore (the table found gone)
// then takes the kernel and waits for every turn taken. The peer's first
// part is recorded before it asks for the kernel again, so all three end.
// When the part waited for the whole batch, the peer waited for the
// kernel that the Restore held while it waited for the peer's turn.
func TestRestoreDuringASplitPeerBatch(t *testing.T) {
	cfg := base()
	cfg.Window.Threshold = 1
	fw := &twoHeldFW{}
	for i := range 2 {
		fw.in[i], fw.out[i] = make(chan struct{}, 1), make(chan struct{})
	}
	out0, out1 := sync.OnceFunc(func() { close(fw.out[0]) }), sync.OnceFunc(func() { close(fw.out[1]) })
	g, db, c := running(t, cfg, fw, func() { out0(); out1() })
	reqs := peerBans(1000, c.Now())
	peer := make(chan struct{})
	go func() { g.BanMany(ctx, reqs); close(peer) }()
	<-fw.in[0] // the peer's first piece in the kernel
	if err := g.Submit(ctx, failure("203.0.113.7", "root", c.Now())); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the detected ban waiting for the kernel", func() (bool, string) { return g.fwMu.urgent.Load() == 1, "" })
	out0()
	<-fw.in[1] // the detected ban in the kernel
	restored := make(chan error, 1)
	go func() { _, err := g.Restore(ctx); restored <- err }()
	testkit.Eventually(t, 10*time.Second, "the restore waiting for the kernel", func() (bool, string) { return blockedOnLock(").Restore("), "" })
	out1()
	for _, c := range []struct {
		name string
		ch   <-chan struct{}
	}{{"the peer's batch", peer}} {
		select {
		case <-c.ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never ended: the restore and the peer's batch wait for each other", c.name)
		}
	}
	select {
	case err := <-restored:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the restore never ended")
	}
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	active, err := db.ActiveBans(c.Now())
	if err != nil || len(active) != len(reqs)+1 {
		t.Fatalf("recorded: %d, want %d (%v)", len(active), len(reqs)+1, err)
	}
}

// running is a Guard on a fresh database and clock with its committer
// (Run) running; the test's end calls free (what releases fw or the
// callbacks), then stops Run.
func running(t *testing.T, cfg Config, fw Firewall, free func()) (*Guard, *store.DB, *testkit.Clock) {
	t.Helper()
	db, _ := testkit.OpenDB(t)
	c := testkit.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	g := New(cfg, db, fw, nil, c.Now, nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	t.Cleanup(func() { free(); stop(); <-done })
	return g, db, c
}

// peerBans is n bans of peer b's, 198.18.0.0 onwards, for an hour from now.
func peerBans(n int, now time.Time) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32),
			Until: now.Add(time.Hour), Reason: "peer", Origin: PeerOrigin("b")}
	}
	return reqs
}

// TestDetectionBeforeAPeersGate: a peer's batch of 1,000 passes the gate
// a piece at a time and steps aside for a line's decision that waits:
// the decision (seen from OnAttempt, under the gate's lock) finds at most
// one piece of the peer's admitted. When the batch held the lock for all
// of its requests, the decision waited for all 1,000; without the
// priority, the batch took the lock again before the waiter it woke.
func TestDetectionBeforeAPeersGate(t *testing.T) {
	cfg := base()
	cfg.Window.Threshold = 5 // the failure is counted, not banned: only the gate's order is looked at
	var g *Guard
	held := -1
	cfg.OnAttempt = func(netip.Prefix, time.Time, float64) { held = len(g.idx.bans) } // under g.mu
	g, _, c := running(t, cfg, &fakeFW{set: map[netip.Prefix]time.Duration{}}, func() {})
	if err := g.load(); err != nil {
		t.Fatal(err)
	}
	reqs := peerBans(1000, c.Now())
	g.mu.Lock() // the peer's batch waits for it first, the decision after
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, errs := g.BanMany(ctx, reqs); errs[0] != nil {
			t.Errorf("peer ban: %v", errs[0])
		}
	})
	testkit.Eventually(t, 10*time.Second, "the peer's batch waiting for the gate", func() (bool, string) {
		return blockedOnLock("admitAll"), ""
	})
	wg.Go(func() {
		if err := g.Submit(ctx, failure("203.0.113.7", "root", c.Now())); err != nil {
			t.Error(err)
		}
	})
	testkit.Eventually(t, 10*time.Second, "the decision waiting for the gate", func() (bool, string) {
		return g.mu.urgent.Load() == 1, ""
	})
	g.mu.Unlock()
	wg.Wait()
	if held < 0 || held > admitPiece {
		t.Fatalf("the line's decision found %d of the peer's 1,000 bans admitted: it waited for more than one piece (%d)", held, admitPiece)
	}
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	n := len(g.idx.bans)
	g.mu.Unlock()
	if n != len(reqs) {
		t.Fatalf("%d bans held after the batch, want %d", n, len(reqs))
	}
}
