package engine

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/store"
)

// These pin down behaviour that mutation runs found no test for.

// An unban here is shared with the fleet; a peer's unban of its own ban
// is not shared again.
func TestUnbanSharedOnlyWhenMadeHere(t *testing.T) {
	var shared []netip.Prefix
	cfg := gateConfig()
	cfg.ShareUnban = func(p netip.Prefix) []byte { shared = append(shared, p); return []byte(p.String()) }
	g, _, _, c := setup(t, cfg, nil)
	mine, theirs := pfx("198.51.100.7/32"), pfx("100.66.0.9/32")
	peer := PeerOrigin("h1")
	_, errs := g.BanMany(ctx, []Request{
		{Prefix: mine, Origin: Admin, For: time.Hour},
		{Prefix: theirs, Origin: peer, Until: c.Now().Add(time.Hour)},
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if err := g.UnbanRemote(ctx, theirs, peer); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 0 {
		t.Fatalf("a peer's unban was shared again: %v", shared)
	}
	if err := g.Unban(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 || shared[0] != mine {
		t.Fatalf("shared %v, want [%v]", shared, mine)
	}
	if err := g.Unban(ctx, mine); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second unban: %v, want not found", err)
	}
}

// InForce and BansAt give a permanent ban no expiry and a timed one its own.
func TestInForceExpiries(t *testing.T) {
	g, _, _, c := setup(t, gateConfig(), nil)
	perm, timed := pfx("198.51.100.0/24"), pfx("192.0.2.9/32")
	_, errs := g.BanMany(ctx, []Request{
		{Prefix: perm, Origin: Admin, Permanent: true, Force: true},
		{Prefix: timed, Origin: Admin, For: 2 * time.Hour},
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	all, err := g.InForce()
	if err != nil || len(all) != 2 {
		t.Fatalf("in force %v %v", all, err)
	}
	for _, b := range all {
		switch b.Prefix {
		case perm:
			if !b.Expires.IsZero() {
				t.Errorf("permanent ban expires %v", b.Expires)
			}
		case timed:
			if !b.Expires.Equal(c.Now().Add(2 * time.Hour)) {
				t.Errorf("timed ban expires %v, want %v", b.Expires, c.Now().Add(2*time.Hour))
			}
		}
	}
	own, _, holding, err := g.BansAt(pfx("198.51.100.5/32"))
	if err != nil || own != nil || len(holding) != 1 || !holding[0].Expires.IsZero() || holding[0].Origin != Admin {
		t.Fatalf("BansAt: own %v holding %v %v", own, holding, err)
	}
}

// A refusal is counted once per origin and code; a ban by hand without a
// reason gets the administrator's.
func TestRefusalsCountedAndDefaultReason(t *testing.T) {
	g, _, db, c := setup(t, gateConfig(), nil)
	for range 3 {
		if _, err := g.Ban(ctx, pfx("0.0.0.0/0"), time.Hour, ""); err == nil {
			t.Fatal("/0 banned")
		}
	}
	var total int64
	for k, n := range g.Refused() {
		if n < 0 {
			t.Fatalf("refusals %s = %d", k, n)
		}
		total += n
	}
	if total != 3 {
		t.Fatalf("refusals %v, want 3 in all", g.Refused())
	}
	if _, err := g.Ban(ctx, pfx("192.0.2.10/32"), time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Ban(ctx, pfx("192.0.2.11/32"), time.Hour, "port scan"); err != nil {
		t.Fatal(err)
	}
	bans, _ := db.ActiveBans(c.Now())
	reasons := map[netip.Prefix]string{}
	for _, b := range bans {
		reasons[b.Prefix] = b.Reason
	}
	if reasons[pfx("192.0.2.10/32")] != "banned by the administrator" || reasons[pfx("192.0.2.11/32")] != "port scan" {
		t.Fatalf("reasons %v", reasons)
	}
}

func TestMore(t *testing.T) {
	for n, want := range map[int]string{0: "", 1: "", 2: " and 1 more", 5: " and 4 more"} {
		if got := more(n); got != want {
			t.Errorf("more(%d) = %q, want %q", n, got, want)
		}
	}
}

// One batch holding logins and bans commits each where it belongs.
func TestMixedBatchLoginsAndBans(t *testing.T) {
	g, fw, db, c := setup(t, base(), nil)
	// Queued before Run starts: Run takes them as one batch.
	if err := g.Submit(ctx, success("198.51.100.4", "alice", c.Now())); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "b", "c", "d", "e"} {
		if err := g.Submit(ctx, failure("203.0.113.9", u, c.Now())); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Submit(ctx, success("198.51.100.5", "bob", c.Now())); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	if err := g.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	<-done
	logins, _ := db.Logins(time.Time{})
	if len(logins) != 2 {
		t.Fatalf("%d logins recorded, want 2: %+v", len(logins), logins)
	}
	for _, l := range logins {
		if l.Addr == netip.MustParseAddr("203.0.113.9") {
			t.Fatalf("a failure recorded as a login: %+v", l)
		}
	}
	if _, ok := fw.set[pfx("203.0.113.9/32")]; !ok || len(fw.set) != 1 {
		t.Fatalf("kernel %v, want only 203.0.113.9/32", fw.set)
	}
}

// A line that counted several attempts (rsyslog's "message repeated 5
// times") counts them all in the hourly counts too, not once.
func TestFlushCountsRepeated(t *testing.T) {
	e, _, db, c := setup(t, base(), nil)
	r := failure("203.0.113.90", "root", c.Now())
	r.Counted = 6
	if _, err := e.Handle(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := e.FlushCounts(); err != nil {
		t.Fatal(err)
	}
	all, err := db.CountsBetween(c.Now().Add(-time.Hour), c.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if all.Kinds["failure"] != 1 || all.Failed != 6 || all.Users["root"] != 6 || all.Addrs["203.0.113.90"] != (store.Tries{Failed: 6}) {
		t.Fatalf("counts %+v, want one line of 6 attempts", all)
	}
}

// The same peer message delivered twice (a redelivery after a lost
// acknowledgement) is "already", never a second ban; a later end renews.
func TestPeerBanDeliveredTwice(t *testing.T) {
	g, _, db, c := setup(t, gateConfig(), nil)
	c.Add(987654321) // a start that is not on a millisecond
	peer := PeerOrigin("h1")
	p := pfx("100.66.1.1/32")
	// An end with nanoseconds, as a clock gives it, and a start that is not
	// on a millisecond.
	until := c.Now().Add(time.Hour + 123456789)
	req := Request{Prefix: p, Origin: peer, Until: until}
	if _, errs := g.BanMany(ctx, []Request{req}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	for range 3 {
		if _, errs := g.BanMany(ctx, []Request{req}); refusalCode(errs[0]) != RefusedAlready {
			t.Fatalf("the same message again: %v, want %s", errs[0], RefusedAlready)
		}
	}
	req.Until = until.Add(time.Minute)
	if _, errs := g.BanMany(ctx, []Request{req}); errs[0] != nil {
		t.Fatalf("a later end: %v", errs[0])
	}
	if bans, _ := db.ActiveBans(c.Now()); len(bans) != 1 {
		t.Fatalf("%d bans", len(bans))
	}
}

func TestOriginFilters(t *testing.T) {
	peer := PeerOrigin("web-01")
	for _, tt := range []struct {
		origin, filter string
		want           bool
	}{
		{Detected, "", true}, {peer, "", true},
		{Detected, Detected, true}, {Admin, Detected, false},
		{peer, Fleet, true}, {peer, peer, true}, {PeerOrigin("web-02"), peer, false},
		{Fleetwide, Fleet, false}, {Detected, Fleet, false},
	} {
		if got := OriginMatches(tt.origin, tt.filter); got != tt.want {
			t.Errorf("OriginMatches(%q, %q) = %v", tt.origin, tt.filter, got)
		}
	}
	if OriginGroup(peer) != Fleet || OriginGroup(Admin) != Admin {
		t.Error("OriginGroup")
	}
	for f, want := range map[string]bool{Detected: true, Fleet: true, peer: true, "fleet:": false, "bogus": false, "": false} {
		if ValidOriginFilter(f) != want {
			t.Errorf("ValidOriginFilter(%q) = %v", f, !want)
		}
	}
}
