package ban

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestWindowSnapshot: a Window saved and loaded into a new one of the
// same shape counts on exactly where the first left off, in the short
// window and at the horizons (a slow attacker's guesses before a restart
// still count after it), and evicts in the same order; a snapshot of
// another shape, or damaged, is refused and leaves the Window as it was.
func TestWindowSnapshot(t *testing.T) {
	cfg := WindowConfig{Window: 10 * time.Minute, Threshold: 5, MaxTracked: 10_000,
		Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 12}}}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	a := NewWindow(cfg)
	key := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
	}
	// 9,000 keys (three blocks), each with attempts; and a slow attacker:
	// 10 guesses an hour apart, under the short window, 2 short of the day.
	for i := range 9000 {
		a.Add(key(i), t0.Add(time.Duration(i)*time.Second), 1)
	}
	slow := key(50_000)
	for h := range 10 {
		if v := a.Count(slow, t0.Add(time.Duration(h+1)*time.Hour), 1, Attempt{}); v.Horizon >= 0 {
			t.Fatalf("the day reached at guess %d", h+1)
		}
	}
	a.Reset(key(100)) // a free entry
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	saved := buf.Bytes()

	b := NewWindow(cfg)
	if err := b.Load(bytes.NewReader(saved)); err != nil {
		t.Fatal(err)
	}
	if b.Len() != a.Len() {
		t.Fatalf("%d keys loaded, %d saved", b.Len(), a.Len())
	}
	at := t0.Add(11 * time.Hour)
	for _, w := range []*Window{a, b} {
		if v := w.Count(slow, at, 1, Attempt{}); v.Horizon >= 0 {
			t.Fatalf("11th guess reached the day")
		}
		if v := w.Count(slow, at.Add(time.Hour), 1, Attempt{}); v.Horizon != 0 || v.HorizonSum != 12 {
			t.Fatalf("12th guess: %+v", v)
		}
	}
	last := t0.Add(8999 * time.Second)
	if sa, sb := a.Sum(key(8999), last), b.Sum(key(8999), last); sa != 1 || sb != 1 {
		t.Fatalf("a key's sum %g and %g after loading", sa, sb)
	}
	if b.Sum(key(100), last) != 0 {
		t.Fatal("a key reset before the save came back")
	}
	// New keys after loading take the free entry, then evict as the first
	// would: the same keys tracked in both.
	for i := 9000; i < 12000; i++ {
		a.Add(key(i), last.Add(time.Second), 1)
		b.Add(key(i), last.Add(time.Second), 1)
	}
	if a.Len() != b.Len() || a.Len() != 10_000 {
		t.Fatalf("after more keys: %d and %d", a.Len(), b.Len())
	}
	for k := range a.index {
		if _, ok := b.index[k]; !ok {
			t.Fatal("the loaded window evicted another key")
		}
	}

	// Another shape: refused, the window as it was.
	other := cfg
	other.Threshold = 10
	c := NewWindow(other)
	c.Add(key(1), t0, 1)
	if err := c.Load(bytes.NewReader(saved)); !errors.Is(err, ErrSnapshotShape) || c.Len() != 1 {
		t.Fatalf("another shape: %v, %d keys", err, c.Len())
	}
	// Damaged: cut short, or its order broken: refused, never a panic.
	for _, bad := range [][]byte{saved[:len(saved)/2], saved[:10], append(append([]byte{}, saved[:80]...), bytes.Repeat([]byte{0xff}, len(saved)-80)...)} {
		d := NewWindow(cfg)
		if err := d.Load(bytes.NewReader(bad)); err == nil || d.Len() != 0 {
			t.Errorf("a damaged snapshot of %d bytes: %v, %d keys", len(bad), err, d.Len())
		}
	}
}

// BenchmarkWindowSnapshot saves and loads a window of a million keys.
func BenchmarkWindowSnapshot(b *testing.B) {
	cfg := WindowConfig{Window: 10 * time.Minute, Threshold: 5, Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 12}}}
	w := NewWindow(cfg)
	t0 := time.Now()
	for i := range 1_000_000 {
		w.Add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32), t0, 1)
	}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := w.Save(&buf); err != nil {
			b.Fatal(err)
		}
		if err := NewWindow(cfg).Load(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/(1<<20), "MB")
}
