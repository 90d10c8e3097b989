package share

import (
	"math"
	"net/netip"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestCounterEdges: each limit of the fleet window at its edge.
func TestCounterEdges(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))

	// Exactly the threshold from exactly the quorum: banned.
	k := counter(c) // threshold 6, quorum 2, host cap 3
	p := netip.MustParsePrefix("198.51.100.9/32")
	for range 3 {
		k.Local(p, c.Now(), 1)
	}
	if err := k.receive("other", batch(t, c.Now(), attempt{P: p, W: 2.5})); err != nil {
		t.Fatal(err)
	}
	if b := bansOf(k); len(b) != 0 {
		t.Fatalf("banned at 5.5 of 6: %v", b)
	}
	if err := k.receive("other", batch(t, c.Now(), attempt{P: p, W: 0.5})); err != nil {
		t.Fatal(err)
	}
	if b := bansOf(k); len(b) != 1 || b[0].Attempts != 6 || b[0].Hosts != 2 {
		t.Fatalf("6 of 6 from 2 hosts: %+v", b)
	}
	st := k.Status()
	if st.Refused != nil || st.Throttled != nil || st.Received != 2 || st.Quorum != 2 {
		t.Fatalf("status %+v: nothing refused or throttled, 2 received", st)
	}

	// Defaults: quorum 2, a host counts for at most 5; a quorum over the
	// most kept is the most.
	d := NewCounter(CountConfig{Threshold: 6, Window: time.Hour})
	if d.cfg.Quorum != 2 || d.cfg.HostCap != 5 || d.cfg.MaxTracked != 1000000 {
		t.Fatalf("defaults %+v", d.cfg)
	}
	if q := NewCounter(CountConfig{Quorum: MaxQuorum + 3}).cfg.Quorum; q != MaxQuorum {
		t.Fatalf("quorum %d, want at most %d", q, MaxQuorum)
	}

	// What this host publishes is bounded per batch; the rest is dropped
	// and counted.
	b := counter(c)
	for i := range maxBatch + 7 {
		b.Local(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), c.Now(), 1)
	}
	if len(b.buf) != maxBatch || b.Status().Dropped != 7 {
		t.Fatalf("buffered %d, dropped %d; want %d and 7", len(b.buf), b.Status().Dropped, maxBatch)
	}
}

// TestSlidingEstimate: the previous bucket weighs what is left of it in
// the window.
func TestSlidingEstimate(t *testing.T) {
	sw := sliding{bucket: 10, cur: 4, prev: 2}
	for _, tt := range []struct {
		sec  int64
		want float64
	}{
		{600, 6},   // the bucket's start: all of the previous one
		{615, 5.5}, // a quarter in: three quarters of it
		{659, 4 + 2.0/60},
		{660, 4}, // the next bucket's start: this one whole
		{690, 2}, // half way: half of this one
		{720, 0}, // two buckets on: nothing
		{599, 0}, // before the bucket: nothing
	} {
		if got := sw.estimate(tt.sec, 60); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("estimate at %d = %v, want %v", tt.sec, got, tt.want)
		}
	}
}
