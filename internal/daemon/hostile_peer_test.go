package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"sshguard-go/internal/ban"
	"sshguard-go/internal/control"
	"sshguard-go/internal/engine"
	"sshguard-go/internal/roottest"
	"sshguard-go/internal/testkit"
)

// hostilePeer is a compromised member of the fleet: a raw NATS client
// that publishes what it likes on its own subject (and on others').
type hostilePeer struct {
	t  *testing.T
	nc *nats.Conn
}

func newHostilePeer(t *testing.T, n *natsServer) *hostilePeer {
	nc, err := nats.Connect(n.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return &hostilePeer{t: t, nc: nc}
}

// publish sends v (JSON, or raw bytes) on subject through JetStream (a
// ban or an unban) and waits for the stream's acknowledgement.
func (p *hostilePeer) publish(subject string, v any) {
	p.t.Helper()
	data, ok := v.([]byte)
	if !ok {
		data, _ = json.Marshal(v)
	}
	msg, err := p.nc.Request(subject, data, 5*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"seq"`) {
		p.t.Fatalf("publish on %s: %v %s", subject, err, msg.Data)
	}
}

func (p *hostilePeer) ban(prefix string, expires time.Time) {
	m := map[string]any{"v": 1, "kind": "ban", "prefix": prefix, "reason": "trust me", "origin": "admin"}
	if !expires.IsZero() {
		m["expires"] = expires
	}
	p.publish("sshguard.bans.evil", m)
}

// kernel is what b's nftables table holds, by prefix.
func kernelSet(t *testing.T, nsFd int) map[netip.Prefix]ban.Element {
	t.Helper()
	nft, err := ban.NewNFTSet(ban.NFTConfig{NetNSFd: nsFd})
	if err != nil {
		t.Fatal(err)
	}
	defer nft.Close()
	els, err := nft.List()
	if err != nil {
		t.Fatal(err)
	}
	out := map[netip.Prefix]ban.Element{}
	for _, e := range els {
		out[e.Prefix] = e
	}
	return out
}

// TestHostilePeer: a compromised member of the fleet, publishing on its
// own subject with a raw NATS client, tries every harm the gate closes;
// after each, host b's kernel set, its list and its database agree, no
// element is wider than fleet.min_prefix_*, longer than max_ban_time or
// without a timeout, none holds an allowlisted address, and b's own bans
// are untouched.
func TestHostilePeer(t *testing.T) {
	roottest.Require(t, "ip", "nft")
	n := startNATS(t)
	_, nsf := roottest.NetNS(t, "sghp")
	b := newHarness(t)
	b.useNetNS(int(nsf.Fd()))
	writeConfig(t, b.dir, fmt.Sprintf(`[detection]
threshold = 3
[ban]
allow = ["192.0.2.0/24", "2001:db8:aaaa::/48"]
[audit]
log = ""
[fleet]
nats_url = %q
name = "b"
count_fleetwide = true
fleet_threshold = 6
fleet_quorum = 2
fleet_partitions = 0
`, n.url()))
	b.logf("Server listening on 0.0.0.0 port 22.")
	b.start()
	a := newHarness(t)
	writeConfig(t, a.dir, fmt.Sprintf("[detection]\nthreshold = 3\n[audit]\nlog = \"\"\n[fleet]\nnats_url = %q\nname = \"a\"\ncount_fleetwide = true\nfleet_threshold = 6\nfleet_partitions = 0\n", n.url()))
	a.logf("Server listening on 0.0.0.0 port 22.")
	a.start()
	testkit.Eventually(t, 10*time.Second, "connected", func() (bool, string) {
		st := b.fleet()
		sa := a.fleet()
		return st.Server != "" && st.Fleetwide != nil && st.Fleetwide.Listening && sa.Fleetwide != nil && sa.Fleetwide.Listening, fmt.Sprintf("%+v", st)
	})
	evil := newHostilePeer(t, n)
	testkit.Eventually(t, 10*time.Second, "the stream", func() (bool, string) {
		m, err := evil.nc.Request("$JS.API.STREAM.INFO.SSHGUARD_BANS", nil, time.Second)
		return err == nil && !strings.Contains(string(m.Data), `"error"`), fmt.Sprint(err)
	})
	max := 7 * 24 * time.Hour

	// A ban b made itself, and one it holds by hand.
	b.attack("203.0.113.50")
	b.waitBan("203.0.113.50/32", true)
	if _, err := b.client().Ban(context.Background(), control.BanRequest{Prefix: netip.MustParsePrefix("198.51.100.0/24"), For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	sent := 0
	// settle waits until b has taken every message evil sent.
	settle := func(step string) {
		t.Helper()
		testkit.Eventually(t, 20*time.Second, step+": every message taken", func() (bool, string) {
			st := b.fleet()
			got := int64(0)
			for _, v := range st.Received["evil"] {
				got += v
			}
			return got == int64(sent), fmt.Sprintf("%d of %d: %v", got, sent, st.Received["evil"])
		})
		checkHost(t, step, b, int(nsf.Fd()), max)
	}
	send := func(prefix string, expires time.Time) { evil.ban(prefix, expires); sent++ }

	// 1, 2: IPv4-mapped prefixes judged after unmapping, in every width.
	send("::ffff:0.0.0.0/98", time.Time{})
	send("::ffff:128.0.0.0/97", time.Time{})
	for bits := 96; bits <= 128; bits++ {
		send(fmt.Sprintf("::ffff:10.20.0.0/%d", bits), time.Now().Add(time.Hour))
	}
	settle("mapped prefixes")
	if st := b.fleet().Received["evil"]; st["refused_wide"] < 24 || st["refused_every_address"] != 1 {
		t.Errorf("mapped prefixes: %v", st)
	}
	// 3: an allowlisted address, mapped; a /64 inside an allowlisted /48.
	send("::ffff:192.0.2.7/128", time.Time{})
	send("2001:db8:aaaa:5::/64", time.Time{})
	settle("allowlisted")
	if st := b.fleet().Received["evil"]; st["refused_allowlist"] != 2 {
		t.Errorf("allowlisted: %v", st)
	}
	// 4: far and missing expiries: max_ban_time, never without timeout.
	send("100.70.0.1/32", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	send("100.70.0.2/32", time.Time{})
	settle("far and missing expiries")
	k := kernelSet(t, int(nsf.Fd()))
	for _, p := range []string{"100.70.0.1/32", "100.70.0.2/32"} {
		if e, ok := k[netip.MustParsePrefix(p)]; !ok || e.Timeout <= 0 || e.Timeout > max {
			t.Errorf("%s in the kernel: %+v %v", p, e, ok)
		}
	}
	// 5: a ban, then an unban, of addresses banned here.
	for _, p := range []string{"203.0.113.50/32", "198.51.100.0/24", "198.51.100.7/32"} {
		send(p, time.Now().Add(max))
		evil.publish("sshguard.bans.evil", map[string]any{"v": 1, "kind": "unban", "prefix": p})
		sent++
	}
	settle("bans and unbans of bans made here")
	bans := b.bans()
	if bans["203.0.113.50/32"].Origin != "detected" || bans["198.51.100.0/24"].Origin != "admin" || bans["203.0.113.50/32"].Count != 1 {
		t.Errorf("b's own bans after the peer's: %+v", bans)
	}
	// 6: the same address many times: only ever its own ban, extended.
	for i := range 50 {
		send("100.70.0.3/32", time.Now().Add(time.Duration(i+1)*time.Minute))
	}
	settle("one address 50 times")
	if bi := b.bans()["100.70.0.3/32"]; bi.Origin != "fleet:evil" || bi.Count != 0 || time.Until(bi.Expires) < 49*time.Minute {
		t.Errorf("the repeated address: %+v", bi)
	}
	// 7: thousands of prefixes at once.
	for i := range 3000 {
		send(fmt.Sprintf("100.71.%d.%d/32", i/250, i%250+1), time.Now().Add(time.Hour))
	}
	settle("3,000 prefixes")
	// 8: a ban on b's own subject is b's echo, never applied; garbage
	// is counted.
	evil.publish("sshguard.bans.b", map[string]any{"v": 1, "kind": "ban", "prefix": "100.72.0.1/32"})
	evil.publish("sshguard.bans.evil", []byte(`{"v":1,"kind":"ban","prefix":"100.72.0.2/33"}`))
	evil.publish("sshguard.bans.evil", []byte("\x00\xff not json"))
	sent += 2
	settle("own subject and garbage")
	if _, ok := b.bans()["100.72.0.1/32"]; ok {
		t.Error("a ban on b's own subject was applied")
	}
	if b.fleet().Received["evil"]["garbage"] != 2 {
		t.Errorf("garbage: %v", b.fleet().Received["evil"])
	}

	// 9: fleet-wide counting: forged weights and widths, and one peer's
	// reports on an innocent address, never ban on their own.
	for range 2 {
		data, _ := json.Marshal([]map[string]any{{"p": "160.0.0.0/3", "w": 12.75, "t": time.Now().UnixMilli()},
			{"p": "2001::/16", "w": 12.75, "t": time.Now().UnixMilli()}, {"p": "100.73.0.1/32", "w": 12.75, "t": time.Now().UnixMilli()}})
		if err := evil.nc.Publish("sshguard.attempts.evil", data); err != nil {
			t.Fatal(err)
		}
	}
	// A flood: more attempts than any host publishes.
	var flood []map[string]any
	for i := range 5000 {
		flood = append(flood, map[string]any{"p": fmt.Sprintf("100.74.%d.%d/32", i/250, i%250), "w": 1, "t": time.Now().UnixMilli()})
	}
	data, _ := json.Marshal(flood)
	for range 30 {
		evil.nc.Publish("sshguard.attempts.evil", data)
	}
	evil.nc.Flush()
	var taken int64
	testkit.Eventually(t, 20*time.Second, "the attempts taken", func() (bool, string) {
		st := b.fleet().Fleetwide
		taken = st.Received
		// How many are throttled depends on how fast they come (a unit
		// test with a clock of its own checks that): each is taken or
		// throttled, none lost.
		return st.Refused["evil"] == 4 && st.Received+st.Throttled["evil"] == 2+150000, fmt.Sprintf("%+v", st)
	})
	// One real attempt on a too: 3 (evil's 25.5, capped at b's threshold)
	// and a's 1 make 4, under the fleet threshold of 6.
	a.logf("Failed password for root from 100.73.0.1 port 40000 ssh2")
	testkit.Eventually(t, 10*time.Second, "a's attempt counted on b", func() (bool, string) {
		st := b.fleet().Fleetwide
		return st.Received == taken+1, fmt.Sprintf("%+v", st)
	})
	for _, p := range []string{"160.0.0.0/3", "2001::/16", "100.73.0.1/32"} {
		if _, ok := b.bans()[p]; ok {
			t.Errorf("%s banned by one peer's reports", p)
		}
	}
	checkHost(t, "fleet-wide counting", b, int(nsf.Fd()), max)

	// The database agrees after a restart, which restores from it alone.
	b.halt()
	b.start()
	checkHost(t, "after a restart", b, int(nsf.Fd()), max)
	if bi := b.bans()["203.0.113.50/32"]; bi.Origin != "detected" {
		t.Errorf("after a restart: %+v", bi)
	}
}

// checkHost checks that h's kernel set, its list and its database agree,
// and that every peer's ban in force obeys the gate's rules.
func checkHost(t *testing.T, step string, h *harness, nsFd int, max time.Duration) {
	t.Helper()
	k := kernelSet(t, nsFd)
	list := h.bans()
	now := time.Now()
	stored, err := h.d.db.ActiveBans(now)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != len(list) || len(list) != len(k) {
		t.Errorf("%s: %d in the kernel, %d listed, %d in the database", step, len(k), len(list), len(stored))
	}
	allow := ban.NewAllowlist(netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:aaaa::/48"))
	for _, sb := range stored {
		e, ok := k[sb.Prefix]
		bi := list[sb.Prefix.String()]
		switch {
		case !ok:
			t.Errorf("%s: %s in the database, not in the kernel", step, sb.Prefix)
		case bi.Prefix != sb.Prefix || !bi.Expires.Equal(sb.Expires) || bi.Origin != sb.Origin:
			t.Errorf("%s: %s listed %+v, stored %+v", step, sb.Prefix, bi, sb)
		case sb.Expires.IsZero() != (e.Timeout == 0):
			t.Errorf("%s: %s: kernel timeout %v, stored end %v", step, sb.Prefix, e.Timeout, sb.Expires)
		case !sb.Expires.IsZero() && (e.Expires-sb.Expires.Sub(now)).Abs() > 3*time.Second:
			t.Errorf("%s: %s: %v left in the kernel, %v in the database", step, sb.Prefix, e.Expires, sb.Expires.Sub(now))
		}
		if !engine.IsPeer(sb.Origin) {
			continue
		}
		min := 24
		if sb.Prefix.Addr().Is6() {
			min = 48
		}
		switch {
		case sb.Expires.IsZero() || sb.Expires.Sub(sb.Start) > max:
			t.Errorf("%s: a peer's %s until %v", step, sb.Prefix, sb.Expires)
		case sb.Prefix.Bits() < min || sb.Prefix.Addr().Is4In6():
			t.Errorf("%s: a peer's %s", step, sb.Prefix)
		case allow.Covers(sb.Prefix):
			t.Errorf("%s: a peer's %s holds an allowlisted address", step, sb.Prefix)
		case sb.Count != 0:
			t.Errorf("%s: a peer's %s counted for escalation (%d)", step, sb.Prefix, sb.Count)
		}
	}
}
