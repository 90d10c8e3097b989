package share

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestPartitionOf: every host computes the same partition for a prefix
// (an IPv4-mapped address and its host bits do not change it), and
// 100,000 addresses, IPv4 and IPv6, spread evenly over 16 partitions
// (each within 5% of its share), as do the 65,536 addresses of one /16.
func TestPartitionOf(t *testing.T) {
	const k = 16
	p := netip.MustParsePrefix("198.51.100.7/32")
	if PartitionOf(p, k) != PartitionOf(netip.MustParsePrefix("::ffff:198.51.100.7/128"), k) {
		t.Error("an IPv4-mapped address in another partition")
	}
	if PartitionOf(netip.MustParsePrefix("2001:db8:1:2::/64"), k) != PartitionOf(netip.MustParsePrefix("2001:db8:1:2:dead:beef::/64"), k) {
		t.Error("host bits change the partition")
	}
	if PartitionOf(p, 1) != 0 || PartitionOf(p, 0) != 0 {
		t.Error("one partition: not 0")
	}
	r := rand.New(rand.NewPCG(1, 2))
	check := func(name string, n int, gen func(i int) netip.Prefix) {
		var counts [k]int
		for i := range n {
			q := gen(i)
			got := PartitionOf(q, k)
			if got != PartitionOf(q, k) {
				t.Fatalf("%s: %v not deterministic", name, q)
			}
			counts[got]++
		}
		for i, c := range counts {
			if d := float64(c)/float64(n/k) - 1; d > 0.05 || d < -0.05 {
				t.Errorf("%s: partition %d has %d of %d (%+.1f%%): %v", name, i, c, n, 100*d, counts)
			}
		}
	}
	check("random IPv4", 100000, func(int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}), 32)
	})
	check("random IPv6 /64", 100000, func(int) netip.Prefix {
		var a [16]byte
		for i := range 8 {
			a[i] = byte(r.Uint32())
		}
		return netip.PrefixFrom(netip.AddrFrom16(a), 64)
	})
	check("one IPv4 /16", 65536, func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(i >> 8), byte(i)}), 32)
	})
}

// TestPartitionsSupported: priority groups from NATS 2.11.
func TestPartitionsSupported(t *testing.T) {
	for v, want := range map[string]bool{"2.9.25": false, "2.10.22": false, "2.11.0": true, "v2.11.3": true, "2.12.0-RC.1": true,
		"2.15.2": true, "3.0.0": true, "": false, "garbage": false, "2": false} {
		if got := PartitionsSupported(v); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}

// TestCounterRefusesOtherPartition: a counting host takes only the
// attempts of its partition; one hashed elsewhere is refused and counted.
func TestCounterRefusesOtherPartition(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := counter(c)
	var mine, other netip.Prefix
	for i := range 256 {
		p := netip.MustParsePrefix(fmt.Sprintf("198.51.100.%d/32", i))
		switch PartitionOf(p, k.cfg.Partitions) {
		case 3:
			mine = p
		default:
			other = p
		}
	}
	if err := k.receiveIn("b", batch(t, c.Now(), attempt{P: mine, W: 1}, attempt{P: other, W: 1}), 3); err != nil {
		t.Fatal(err)
	}
	if st := k.Status(); st.Received != 1 || st.Refused["b"] != 1 {
		t.Fatalf("%+v", st)
	}
}

// TestCounterKeepsDecisionsWhenBehind: a wave crossing the threshold at
// once, 3,000 addresses, more than the banner's channel holds: none is
// lost, the rest handed over at the following flushes.
func TestCounterKeepsDecisionsWhenBehind(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	k := NewCounter(CountConfig{Name: "me", Threshold: 6, Window: time.Hour, Quorum: 2, HostCap: 3, MaxTracked: 100_000})
	k.now = c.Now
	var as []attempt
	for i := range 3000 {
		as = append(as, attempt{P: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32), W: 3})
	}
	for _, h := range []string{"b", "c"} {
		if err := k.receive(h, batch(t, c.Now(), as...)); err != nil {
			t.Fatal(err)
		}
	}
	got := map[netip.Prefix]bool{}
	for range 10 {
		for _, b := range bansOf(k) {
			got[b.Prefix] = true
		}
		k.flush(nil) // nothing to publish: hands over what waits
	}
	if st := k.Status(); len(got) != 3000 || st.Waiting != 0 || st.Lost != 0 {
		t.Fatalf("%d decisions of 3000, %+v", len(got), st)
	}
}
