package share

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

func counter(c *testkit.Clock) *Counter {
	k := NewCounter(CountConfig{Name: "me", Threshold: 6, Window: time.Hour, Quorum: 2, HostCap: 3, WideV6: 48, MaxTracked: 1000})
	k.now = c.Now
	return k
}

func batch(t *testing.T, at time.Time, entries ...attempt) []byte {
	t.Helper()
	for i := range entries {
		if entries[i].T == 0 {
			entries[i].T = at.UnixMilli()
		}
	}
	data, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func bansOf(k *Counter) []FleetBan {
	var out []FleetBan
	for {
		select {
		case b := <-k.bans:
			out = append(out, b)
		default:
			return out
		}
	}
}

// TestCounterQuorumAndCap: one peer's reports, however heavy, never ban
// alone; each host counts for at most HostCap; a second host's attempts
// make the quorum; the fleet threshold is reached at exactly 6.
func TestCounterQuorumAndCap(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := counter(c)
	p := netip.MustParsePrefix("198.51.100.7/32")
	for range 10 {
		if err := k.receive("evil", batch(t, c.Now(), attempt{P: p, W: 12.75})); err != nil {
			t.Fatal(err)
		}
	}
	if b := bansOf(k); len(b) != 0 {
		t.Fatalf("one peer alone banned: %v", b)
	}
	k.Local(p, c.Now(), 1) // this host: 3 (evil, capped) + 1
	k.Local(p, c.Now(), 1) // + 1 = 5
	if b := bansOf(k); len(b) != 0 {
		t.Fatalf("banned at 5 of 6: %v", b)
	}
	k.receive("other", batch(t, c.Now(), attempt{P: p, W: 1})) // 6, from 3 hosts
	b := bansOf(k)
	if len(b) != 1 || b[0].Prefix != p || b[0].Attempts != 6 || b[0].Hosts != 3 {
		t.Fatalf("bans %+v", b)
	}
	// Quorum 2 but a host's own reports only: never.
	q := netip.MustParsePrefix("198.51.100.8/32")
	for range 10 {
		k.Local(q, c.Now(), 1)
	}
	if b := bansOf(k); len(b) != 0 {
		t.Fatalf("this host alone banned: %v", b)
	}
}

// TestCounterRefuses: widths this host does not count by, NaN, zero,
// negative and too heavy weights, times out of the window or in the
// future are refused and counted per peer; IPv4-mapped prefixes are
// judged unmapped.
func TestCounterRefuses(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := counter(c)
	now := c.Now()
	bad := []attempt{
		{P: netip.MustParsePrefix("160.0.0.0/3"), W: 1},
		{P: netip.MustParsePrefix("2001::/16"), W: 1},
		{P: netip.MustParsePrefix("::ffff:10.0.0.0/104"), W: 1}, // 10.0.0.0/8
		{P: netip.MustParsePrefix("10.0.0.0/31"), W: 1},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 0},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: -1},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 12.8},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 1, T: now.Add(-time.Hour - time.Second).UnixMilli()},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 1, T: now.Add(time.Minute + time.Second).UnixMilli()},
		{W: 1},
	}
	if err := k.receive("evil", batch(t, now, bad...)); err != nil {
		t.Fatal(err)
	}
	// NaN does not survive JSON: sent as text it fails the batch.
	if err := k.receive("evil", []byte(`[{"p":"10.0.0.1/32","w":NaN,"t":1}]`)); err == nil {
		t.Error("a NaN weight taken")
	}
	good := []attempt{
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 12.75},
		{P: netip.MustParsePrefix("::ffff:10.0.0.2/128"), W: 1},
		{P: netip.MustParsePrefix("2001:db8::/64"), W: 1},
		{P: netip.MustParsePrefix("2001:db8::/48"), W: 1},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 1, T: now.Add(-time.Hour + time.Second).UnixMilli()},
		{P: netip.MustParsePrefix("10.0.0.1/32"), W: 1, T: now.Add(time.Minute).UnixMilli()},
	}
	if err := k.receive("evil", batch(t, now, good...)); err != nil {
		t.Fatal(err)
	}
	st := k.Status()
	if st.Refused["evil"] != int64(len(bad)) || st.Received != int64(len(good)) {
		t.Fatalf("refused %v, received %d", st.Refused, st.Received)
	}
	if err := k.receive("evil", batch(t, now, make([]attempt, maxBatch+1)...)); err == nil {
		t.Error("a batch over the bound taken")
	}
}

// TestCounterThrottles: a peer gets the rate an honest host publishes at
// most; what it sends beyond is throttled and counted; its budget comes
// back with time.
func TestCounterThrottles(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := counter(c)
	k.cfg.MaxTracked = 1_000_000 // the default: its addresses within its share
	flood := make([]attempt, maxBatch)
	for i := range flood {
		flood[i] = attempt{P: netip.MustParsePrefix(fmt.Sprintf("10.%d.%d.%d/32", i/65536, i/256%256, i%256)), W: 1}
	}
	data := batch(t, c.Now(), flood...)
	sent := int64(0)
	for range 30 { // 150,000 at once: 50,000 taken
		k.receive("evil", data)
		sent += maxBatch
	}
	st := k.Status()
	if st.Received != int64(peerRate) || st.Throttled["evil"] != sent-int64(peerRate) {
		t.Fatalf("received %d, throttled %v", st.Received, st.Throttled)
	}
	c.Add(100 * time.Millisecond) // a tenth of a second later: 5,000 more
	k.receive("evil", data)
	if st := k.Status(); st.Received != int64(peerRate)+maxBatch {
		t.Fatalf("after 100 ms: received %d", st.Received)
	}
	k.receive("honest", data) // another peer has its own budget
	if st := k.Status(); st.Received != int64(peerRate)+2*maxBatch || st.Throttled["honest"] != 0 {
		t.Fatalf("another peer: %+v", st)
	}
}

// TestCounterBounded: the addresses tracked stay within MaxTracked.
func TestCounterBounded(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := counter(c)
	for i := range 10000 {
		k.Local(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), c.Now(), 1)
	}
	if n := k.Status().Tracked; n > 1000 {
		t.Fatalf("%d tracked, at most 1,000", n)
	}
}

// TestCounterHorizons: a slow attacker spread over hosts and days: under
// every host's own day horizon and the fleet's short window, 5 a day on
// each of 3 hosts reaches the fleet's day horizon (12, each host counting
// for at most 6); one host's many alone never does.
func TestCounterHorizons(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC))
	k := NewCounter(CountConfig{Name: "me", Threshold: 20, Window: time.Hour, Quorum: 2, HostCap: 5,
		Horizons: []FleetHorizon{{Window: 24 * time.Hour, Threshold: 12, HostCap: 6}}, MaxTracked: 1000})
	k.now = c.Now
	p := netip.MustParsePrefix("198.51.100.9/32")
	var got []FleetBan
	for i := range 5 { // one every 3 hours on each host
		at := c.Now().Add(time.Duration(i) * 3 * time.Hour)
		k.Local(p, at, 1)
		c.Set(at)
		k.receive("b", batch(t, at, attempt{P: p, W: 1}))
		k.receive("c", batch(t, at, attempt{P: p, W: 1}))
		got = append(got, bansOf(k)...)
	}
	if len(got) != 1 || got[0].Window != 24*time.Hour || got[0].Hosts != 3 || got[0].Attempts < 12 {
		t.Fatalf("bans %+v", got)
	}
	q := netip.MustParsePrefix("198.51.100.10/32")
	for i := range 40 {
		at := c.Now().Add(time.Duration(i) * 10 * time.Minute)
		c.Set(at)
		k.receive("b", batch(t, at, attempt{P: q, W: 1}))
	}
	k.Local(q, c.Now(), 1) // the fleet's day: 6 (b, capped) + 1
	if b := bansOf(k); len(b) != 0 {
		t.Fatalf("one host's many banned: %+v", b)
	}
}

// TestCounterFloodKeepsOthersCounts: one peer flooding new addresses,
// within its rate, cannot turn the tracked addresses over and drop what
// the others counted: past its share (a quarter of a generation) its
// attempts on new addresses are not taken, counted per peer and shown;
// the honest hosts' 3 + 3 attempts still reach the threshold of 6.
func TestCounterFloodKeepsOthersCounts(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	const tracked = 100_000
	k := NewCounter(CountConfig{Name: "me", Threshold: 6, Window: time.Hour, Quorum: 2, HostCap: 3, MaxTracked: tracked})
	k.now = c.Now
	x := netip.MustParsePrefix("198.51.100.7/32")
	if err := k.receive("h1", batch(t, c.Now(), attempt{P: x, W: 3})); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range 40 { // 200,000 new addresses in 4 s: within evil's rate
		var as []attempt
		for range 5000 {
			as = append(as, attempt{P: netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(n >> 16), byte(n >> 8), byte(n)}), 32), W: 1})
			n++
		}
		c.Add(100 * time.Millisecond)
		if err := k.receive("evil", batch(t, c.Now(), as...)); err != nil {
			t.Fatal(err)
		}
	}
	st := k.Status()
	if share := tracked / 2 / peerShare; st.Crowded["evil"] != int64(n-share)-st.Throttled["evil"] || st.Tracked > share+1 {
		t.Errorf("evil's flood: crowded %d, throttled %d, tracked %d (its share %d of %d sent)", st.Crowded["evil"], st.Throttled["evil"], st.Tracked, share, n)
	}
	c.Add(time.Second)
	if err := k.receive("h2", batch(t, c.Now(), attempt{P: x, W: 3})); err != nil {
		t.Fatal(err)
	}
	if got := bansOf(k); len(got) != 1 || got[0].Prefix != x {
		t.Errorf("fleet-wide bans after evil's flood: %v, want %s", got, x)
	}
	var b strings.Builder
	WriteStatus(&b, &Status{Fleetwide: &st})
	if !strings.Contains(b.String(), "attempts from evil on new addresses past its share of those tracked: ") {
		t.Errorf("fleet status:\n%s", b.String())
	}
}
