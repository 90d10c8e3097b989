package engine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/store"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

// gateConfig is base() with a wide IPv6 prefix counted and the peers'
// limits at their defaults (/24, /48).
func gateConfig() Config {
	c := base()
	c.WideV6, c.Wide.Threshold = 48, 20
	return c
}

// refusalCode is err's gate code, "" when err is nil, "error" when it is
// no refusal.
func refusalCode(err error) string {
	var r *Refusal
	switch {
	case err == nil:
		return ""
	case errors.As(err, &r):
		return r.Code
	}
	return "error"
}

// TestEveryWayInThroughTheGate: every way a ban comes in (detected,
// wide, by hand, allow add, archive, peer, fleet-wide) meets the same
// rules, each refusal with its code; the kernel, the store and the gate's
// index agree after each step.
func TestEveryWayInThroughTheGate(t *testing.T) {
	allow := ban.NewAllowlist(pfx("192.0.2.0/28"), pfx("2001:db8:aaaa::/48"))
	g, fw, db, c := setup(t, gateConfig(), allow)
	now := c.Now()
	peer := PeerOrigin("evil")
	max := 7 * 24 * time.Hour

	// Bans made here first, for the precedence rules below.
	local := map[string]Request{
		"admin /24":       {Prefix: pfx("198.51.100.0/24"), For: time.Hour, Origin: Admin},
		"admin permanent": {Prefix: pfx("203.0.113.99/32"), Permanent: true, Origin: Admin},
		"archive":         {Prefix: pfx("203.0.113.98/32"), Origin: Archive},
	}
	for name, r := range local {
		if _, errs := g.BanMany(ctx, []Request{r}); errs[0] != nil {
			t.Fatalf("%s: %v", name, errs[0])
		}
	}
	for range 5 { // detected: 203.0.113.7 by its window
		g.Handle(ctx, failure("203.0.113.7", "root", now))
	}
	if _, ok := fw.set[pfx("203.0.113.7/32")]; !ok {
		t.Fatal("the detected ban was not made")
	}

	cases := []struct {
		name string
		req  Request
		code string        // "" : made
		dur  time.Duration // the kernel's timeout when made (-1: not checked)
	}{
		// By hand.
		{"admin: every address", Request{Prefix: pfx("0.0.0.0/0"), Origin: Admin, Force: true}, RefusedEvery, 0},
		{"admin: /8 without force", Request{Prefix: pfx("10.0.0.0/8"), For: time.Hour, Origin: Admin}, RefusedWide, 0},
		{"admin: own session", Request{Prefix: pfx("100.64.0.0/24"), For: time.Hour, Origin: Admin, Self: addr("100.64.0.9")}, RefusedOwn, 0},
		{"admin: own session, mapped", Request{Prefix: pfx("100.64.0.0/24"), For: time.Hour, Origin: Admin, Self: addr("::ffff:100.64.0.9")}, RefusedOwn, 0},
		{"admin: allowlisted", Request{Prefix: pfx("192.0.2.5/32"), For: time.Hour, Origin: Admin}, RefusedAllowlist, 0},
		{"admin: holds an allowlisted address", Request{Prefix: pfx("192.0.2.0/24"), For: time.Hour, Origin: Admin}, RefusedAllowlist, 0},
		{"admin: loopback", Request{Prefix: pfx("127.0.0.1/32"), For: time.Hour, Origin: Admin}, RefusedAllowlist, 0},
		{"admin: link-local", Request{Prefix: pfx("fe80::/64"), For: time.Hour, Origin: Admin}, RefusedSpecial, 0},
		{"admin: multicast", Request{Prefix: pfx("224.1.2.3/32"), For: time.Hour, Origin: Admin}, RefusedSpecial, 0},
		{"admin: under a second", Request{Prefix: pfx("100.64.1.1/32"), For: 500 * time.Microsecond, Origin: Admin}, RefusedLength, 0},
		{"admin: past max_ban_time", Request{Prefix: pfx("100.64.1.1/32"), For: 30 * 24 * time.Hour, Origin: Admin}, RefusedLength, 0},
		{"admin: inside a ban in force", Request{Prefix: pfx("198.51.100.7/32"), For: time.Hour, Origin: Admin}, RefusedInside, 0},
		{"admin: holds a ban in force", Request{Prefix: pfx("198.51.0.0/16"), For: time.Hour, Origin: Admin}, RefusedHolds, 0},
		{"admin: renews its own", Request{Prefix: pfx("198.51.100.0/24"), For: 2 * time.Hour, Origin: Admin}, "", 2 * time.Hour},
		{"admin: /8 with force", Request{Prefix: pfx("10.0.0.0/8"), For: time.Hour, Origin: Admin, Force: true}, "", time.Hour},
		{"admin: ::ffff:10.9.0.0/112 is 10.9.0.0/16", Request{Prefix: pfx("::ffff:10.9.0.0/112"), For: time.Hour, Origin: Admin}, RefusedInside, 0},
		// From an archive: the same rules, and nothing it replaces.
		{"archive: /8", Request{Prefix: pfx("11.0.0.0/8"), Origin: Archive}, RefusedWide, 0},
		{"archive: own session", Request{Prefix: pfx("100.64.2.1/32"), Origin: Archive, Self: addr("100.64.2.1")}, RefusedOwn, 0},
		{"archive: detected here", Request{Prefix: pfx("203.0.113.7/32"), Origin: Archive}, RefusedAlready, 0},
		{"archive: by the policy", Request{Prefix: pfx("100.64.3.1/32"), Origin: Archive}, "", time.Hour},
		// A peer.
		{"peer: ::ffff:0.0.0.0/98 is 0.0.0.0/2", Request{Prefix: pfx("::ffff:0.0.0.0/98"), Origin: peer}, RefusedWide, 0},
		{"peer: ::ffff:128.0.0.0/97 is 128.0.0.0/1", Request{Prefix: pfx("::ffff:128.0.0.0/97"), Origin: peer}, RefusedWide, 0},
		{"peer: ::ffff:0.0.0.0/96 is every IPv4 address", Request{Prefix: pfx("::ffff:0.0.0.0/96"), Origin: peer}, RefusedEvery, 0},
		{"peer: ::/0", Request{Prefix: pfx("::/0"), Origin: peer}, RefusedEvery, 0},
		{"peer: 2001::/16", Request{Prefix: pfx("2001::/16"), Origin: peer}, RefusedWide, 0},
		{"peer: /23", Request{Prefix: pfx("100.65.0.0/23"), Origin: peer}, RefusedWide, 0},
		{"peer: mapped allowlisted address", Request{Prefix: pfx("::ffff:192.0.2.3/128"), Origin: peer}, RefusedAllowlist, 0},
		{"peer: inside a local allowlisted prefix", Request{Prefix: pfx("2001:db8:aaaa:1::/64"), Origin: peer}, RefusedAllowlist, 0},
		{"peer: loopback", Request{Prefix: pfx("::ffff:127.0.0.1/128"), Origin: peer}, RefusedAllowlist, 0},
		{"peer: link-local", Request{Prefix: pfx("169.254.3.4/32"), Origin: peer}, RefusedSpecial, 0},
		{"peer: expired", Request{Prefix: pfx("100.66.0.1/32"), Origin: peer, Until: now.Add(500 * time.Millisecond)}, RefusedExpired, 0},
		{"peer: detected here", Request{Prefix: pfx("203.0.113.7/32"), Origin: peer, Until: now.Add(max)}, RefusedAlready, 0},
		{"peer: by hand here", Request{Prefix: pfx("198.51.100.0/24"), Origin: peer, Until: now.Add(max)}, RefusedAlready, 0},
		{"peer: inside a ban here", Request{Prefix: pfx("198.51.100.9/32"), Origin: peer}, RefusedInside, 0},
		{"peer: permanent here", Request{Prefix: pfx("203.0.113.99/32"), Origin: peer}, RefusedAlready, 0},
		{"peer: no end is max_ban_time", Request{Prefix: pfx("100.66.0.2/32"), Origin: peer}, "", max},
		{"peer: 9999-12-31 is max_ban_time", Request{Prefix: pfx("100.66.0.3/32"), Origin: peer, Until: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}, "", max},
		{"peer: its own, shorter", Request{Prefix: pfx("100.66.0.3/32"), Origin: peer, Until: now.Add(time.Hour)}, RefusedAlready, 0},
		{"peer: another's", Request{Prefix: pfx("100.66.0.2/32"), Origin: PeerOrigin("other"), Until: now.Add(max)}, RefusedAlready, 0},
		{"peer: a /64 from a mapped /128", Request{Prefix: pfx("::ffff:100.66.0.4/128"), Origin: peer, Until: now.Add(time.Hour)}, "", time.Hour},
		// The fleet-wide count: only lengths this host counts by.
		{"fleetwide: /16", Request{Prefix: pfx("100.67.0.0/16"), Origin: Fleetwide}, RefusedWide, 0},
		{"fleetwide: an address", Request{Prefix: pfx("100.67.0.1/32"), Origin: Fleetwide}, "", time.Hour},
		{"fleetwide: a wide /48", Request{Prefix: pfx("2001:db8:cc::/48"), Origin: Fleetwide}, "", time.Hour},
		{"fleetwide: detected here", Request{Prefix: pfx("203.0.113.7/32"), Origin: Fleetwide}, RefusedAlready, 0},
		// Origins no way in may claim.
		{"no origin", Request{Prefix: pfx("100.68.0.1/32")}, RefusedInvalid, 0},
		{"made-up origin", Request{Prefix: pfx("100.68.0.1/32"), Origin: "root"}, RefusedInvalid, 0},
	}
	for _, tc := range cases {
		_, errs := g.BanMany(ctx, []Request{tc.req})
		if got := refusalCode(errs[0]); got != tc.code {
			t.Errorf("%s: %q (%v), want %q", tc.name, got, errs[0], tc.code)
			continue
		}
		if tc.code == "" && tc.dur >= 0 {
			if got := fw.set[ban.Unmap(tc.req.Prefix)]; got != tc.dur {
				t.Errorf("%s: kernel timeout %v, want %v", tc.name, got, tc.dur)
			}
		}
		agree(t, tc.name, g, fw, db, c.Now())
	}

	// A peer never raises this host's escalation count.
	if off, _ := db.Offender(pfx("100.66.0.2/32")); off.Bans != 0 {
		t.Errorf("a peer's ban counted for escalation: %+v", off)
	}
	// A peer lifts only its own ban.
	for p, want := range map[string]error{"203.0.113.7/32": ErrNotTheirs, "198.51.100.0/24": ErrNotTheirs, "100.66.0.2/32": nil,
		"100.66.0.3/32": ErrNotTheirs /* another peer asks */} {
		by := peer
		if p == "100.66.0.3/32" {
			by = PeerOrigin("other")
		}
		if err := g.UnbanRemote(ctx, pfx(p), by); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s unbans %s: %v, want %v", by, p, err, want)
		}
	}
	for _, p := range []string{"203.0.113.7/32", "198.51.100.0/24", "100.66.0.3/32"} {
		if _, ok := fw.set[pfx(p)]; !ok {
			t.Errorf("%s lifted by a peer", p)
		}
	}
	agree(t, "after the peers' unbans", g, fw, db, c.Now())

	// allow add: the allowlist lifts the bans it covers, and no way in
	// bans there again.
	a2 := ban.NewAllowlist(append(allow.Prefixes(), pfx("100.64.3.0/24"))...)
	if err := g.SetAllowlist(ctx, a2); err != nil {
		t.Fatal(err)
	}
	if _, ok := fw.set[pfx("100.64.3.1/32")]; ok {
		t.Error("allow add did not lift the ban it covers")
	}
	for _, o := range []string{Admin, Archive, peer, Fleetwide} {
		if _, errs := g.BanMany(ctx, []Request{{Prefix: pfx("100.64.3.1/32"), For: time.Hour, Origin: o}}); refusalCode(errs[0]) != RefusedAllowlist {
			t.Errorf("%s after allow add: %v", o, errs[0])
		}
	}
	for range 10 {
		g.Handle(ctx, failure("100.64.3.1", "root", c.Now()))
	}
	if _, ok := fw.set[pfx("100.64.3.1/32")]; ok {
		t.Error("detected after allow add")
	}
	agree(t, "after allow add", g, fw, db, c.Now())
}

// agree checks that the kernel (fw), the store's bans in force and the
// gate's index hold the same bans, with the same ends.
func agree(t *testing.T, step string, g *Guard, fw *fakeFW, db *store.DB, now time.Time) {
	t.Helper()
	bans, err := db.ActiveBans(now)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[netip.Prefix]store.Ban{}
	for _, b := range bans {
		stored[b.Prefix] = b
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, timeout := range fw.set {
		b, ok := stored[p]
		switch {
		case !ok:
			t.Errorf("%s: %s in the kernel, not in the store", step, p)
		case b.Expires.IsZero() != (timeout == 0):
			t.Errorf("%s: %s: kernel timeout %v, store expires %v", step, p, timeout, b.Expires)
		case !b.Expires.IsZero() && b.Expires.Sub(b.Start).Round(time.Second) != timeout:
			t.Errorf("%s: %s: kernel timeout %v, the store's ban lasts %v", step, p, timeout, b.Expires.Sub(b.Start))
		}
		if h, ok := g.idx.get(p, now.UnixNano()); !ok || h.expires != expiresNano(b.Expires) || h.origin != b.Origin {
			t.Errorf("%s: %s: the gate holds %+v, the store %v %q", step, p, h, b.Expires, b.Origin)
		}
	}
	for p := range stored {
		if _, ok := fw.set[p]; !ok {
			t.Errorf("%s: %s in the store, not in the kernel", step, p)
		}
	}
	n := 0
	for _, h := range g.idx.bans {
		if h.active(now.UnixNano()) {
			n++
		}
	}
	if n != len(stored) {
		t.Errorf("%s: the gate holds %d bans in force, the store %d", step, n, len(stored))
	}
}

// TestPeerMessagesProperty: random sequences of peer messages (bans of
// every width, IPv4-mapped among them, far, near, missing and past
// expiries; unbans, of their own bans and of others') beside bans made
// here: after each, every kernel element obeys the gate's rules, every
// local ban is still there, and kernel, store and gate agree.
func TestPeerMessagesProperty(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { peerProperty(t, seed) })
	}
}

func peerProperty(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	allow := ban.NewAllowlist(pfx("10.1.0.0/16"), pfx("2001:db8:1::/48"))
	g, fw, db, c := setup(t, gateConfig(), allow)
	max := 7 * 24 * time.Hour
	peers := []string{PeerOrigin("p1"), PeerOrigin("p2"), PeerOrigin("p3")}
	randPrefix := func() netip.Prefix {
		var a netip.Addr
		switch rng.IntN(4) {
		case 0: // a small IPv4 space, so that bans meet
			a = netip.AddrFrom4([4]byte{10, byte(rng.IntN(3)), byte(rng.IntN(4)), byte(rng.IntN(8))})
		case 1: // the same, IPv4-mapped
			a = netip.AddrFrom16(netip.AddrFrom4([4]byte{10, byte(rng.IntN(3)), byte(rng.IntN(4)), byte(rng.IntN(8))}).As16())
		case 2:
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(3)), 0, byte(rng.IntN(4)), 8: byte(rng.IntN(4))})
		default: // anywhere
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			a = netip.AddrFrom16(b)
		}
		p, _ := a.Prefix(rng.IntN(a.BitLen() + 1))
		return p
	}
	local := map[netip.Prefix]time.Time{} // bans made here, and their ends
	for step := range 300 {
		now := c.Now()
		switch k := rng.IntN(10); {
		case k < 6: // a peer's ban
			var until time.Time
			switch rng.IntN(5) {
			case 0: // none
			case 1:
				until = now.Add(time.Duration(rng.Int64N(int64(2 * time.Second))))
			case 2:
				until = now.Add(time.Duration(rng.Int64N(int64(10 * max))))
			case 3:
				until = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
			default:
				until = now.Add(-time.Hour)
			}
			g.BanMany(ctx, []Request{{Prefix: randPrefix(), Until: until, Origin: peers[rng.IntN(len(peers))]}})
		case k < 8: // a peer's unban
			g.UnbanRemote(ctx, randPrefix(), peers[rng.IntN(len(peers))])
		case k < 9: // a ban by hand here
			p := randPrefix()
			bans, _ := g.BanMany(ctx, []Request{{Prefix: p, For: time.Duration(1+rng.IntN(48)) * time.Hour, Origin: Admin, Force: true}})
			if bans[0] != nil {
				local[bans[0].Prefix] = bans[0].Expires
			}
		default: // time passes
			c.Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		}
		now = c.Now()
		bans, _ := db.ActiveBans(now)
		byPrefix := map[netip.Prefix]store.Ban{}
		for _, b := range bans {
			byPrefix[b.Prefix] = b
		}
		for p, end := range local {
			b, ok := byPrefix[p]
			switch {
			case !now.Before(end):
				delete(local, p) // expired
			case !ok:
				t.Fatalf("step %d: %s made here was lifted", step, p)
			case b.Origin != Admin || !b.Expires.Equal(end):
				t.Fatalf("step %d: %s made here until %v is now %q's until %v", step, p, end, b.Origin, b.Expires)
			}
		}
		for p, timeout := range fw.set {
			b := byPrefix[p]
			if !IsPeer(b.Origin) {
				continue
			}
			min := 24
			if p.Addr().Is6() {
				min = 48
			}
			switch {
			case p.Addr().Is4In6():
				t.Fatalf("step %d: %s in the kernel as IPv4-mapped", step, p)
			case timeout <= 0 || timeout > max:
				t.Fatalf("step %d: a peer's %s with timeout %v", step, p, timeout)
			case p.Bits() < min:
				t.Fatalf("step %d: a peer's %s wider than /%d", step, p, min)
			case allow.Covers(p):
				t.Fatalf("step %d: a peer's %s holds an allowlisted address", step, p)
			}
		}
		// Expired elements leave the fake kernel as they leave the real one.
		for p := range fw.set {
			if _, ok := byPrefix[p]; !ok && fw.set[p] != 0 {
				delete(fw.set, p)
			}
		}
		agree(t, fmt.Sprint("step ", step), g, fw, db, now)
	}
}

// TestPeerBansBounded: one peer may have fleet.max_peer_bans in force
// here at once: its next new ban is refused (peer_limit, counted), its own
// ban renewed is not, another peer's and this host's are not; when its
// bans end (or are lifted) and are pruned, it may ban again.
func TestPeerBansBounded(t *testing.T) {
	cfg := gateConfig()
	cfg.PeerMaxBans = 3
	g, fw, _, c := setup(t, cfg, nil)
	evil, other := PeerOrigin("evil"), PeerOrigin("other")
	peerBan := func(origin, p string, until time.Time) error {
		_, errs := g.BanMany(ctx, []Request{{Prefix: pfx(p), Origin: origin, Until: until}})
		return errs[0]
	}
	soon, later := c.Now().Add(time.Minute), c.Now().Add(time.Hour)
	for i, p := range []string{"100.66.0.1/32", "100.66.0.2/32", "100.66.0.3/32"} {
		until := later
		if i == 0 {
			until = soon
		}
		if err := peerBan(evil, p, until); err != nil {
			t.Fatal(err)
		}
	}
	err := peerBan(evil, "100.66.0.4/32", later)
	if refusalCode(err) != RefusedPeerLimit || err.Error() == "" {
		t.Fatalf("evil's 4th ban: %v", err)
	}
	if _, ok := fw.set[pfx("100.66.0.4/32")]; ok {
		t.Fatal("the refused ban is in the kernel")
	}
	if err := peerBan(evil, "100.66.0.2/32", later.Add(time.Hour)); err != nil {
		t.Errorf("evil's own ban renewed: %v", err)
	}
	if err := peerBan(other, "100.66.0.9/32", later); err != nil {
		t.Errorf("another peer's: %v", err)
	}
	if _, errs := g.BanMany(ctx, []Request{{Prefix: pfx("100.66.0.10/32"), For: time.Hour, Origin: Admin}}); errs[0] != nil {
		t.Errorf("by hand: %v", errs[0])
	}
	if n := g.Refused()[evil+" "+RefusedPeerLimit]; n != 1 {
		t.Errorf("peer_limit refusals counted %d, want 1", n)
	}
	// Its first ban ends and is pruned: room for one more.
	c.Add(3 * time.Minute)
	g.Prune()
	if err := peerBan(evil, "100.66.0.4/32", later); err != nil {
		t.Errorf("after one of its bans ended: %v", err)
	}
	if err := peerBan(evil, "100.66.0.5/32", later); refusalCode(err) != RefusedPeerLimit {
		t.Errorf("again at the bound: %v", err)
	}
}
