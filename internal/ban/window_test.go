package ban

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

func TestWindowSlides(t *testing.T) {
	w := NewWindow(WindowConfig{})
	p := netip.MustParsePrefix("192.0.2.1/32")
	// Failures at 0, 3, 6, 9 min: four in any 10 minutes.
	for _, m := range []float64{0, 3, 6, 9} {
		if _, hit := w.Add(p, at(m), 1); hit {
			t.Fatalf("threshold reached at %v min", m)
		}
	}
	// At 11 min the one at 0 has left the window: still four.
	if sum, hit := w.Add(p, at(11), 1); hit || sum != 4 {
		t.Fatalf("at 11 min: sum %v hit %v, want 4 false", sum, hit)
	}
	// At 12 min: 3, 6, 9, 11, 12 are five in the last ten minutes. A
	// window fixed at the first attempt (SSHGuard) would have restarted.
	if sum, hit := w.Add(p, at(12), 1); !hit || sum != 5 {
		t.Fatalf("at 12 min: sum %v hit %v, want 5 true", sum, hit)
	}
}

func TestWindowWeights(t *testing.T) {
	w := NewWindow(WindowConfig{Threshold: 5, MinWeight: 0.5})
	p := netip.MustParsePrefix("192.0.2.2/32")
	for i := 0; i < 9; i++ {
		if _, hit := w.Add(p, at(float64(i)/10), 0.5); hit {
			t.Fatalf("9 probes (4.5) reached the threshold at %d", i)
		}
	}
	if sum, hit := w.Add(p, at(1), 0.5); !hit || sum != 5 {
		t.Fatalf("10 probes: sum %v hit %v", sum, hit)
	}
}

func TestWindowResetAndIndependentKeys(t *testing.T) {
	w := NewWindow(WindowConfig{Threshold: 2})
	a, b := netip.MustParsePrefix("192.0.2.3/32"), netip.MustParsePrefix("192.0.2.4/32")
	w.Add(a, at(0), 1)
	w.Add(b, at(0), 1)
	w.Reset(a)
	if _, hit := w.Add(a, at(1), 1); hit {
		t.Fatal("reset key reached the threshold with one attempt")
	}
	if _, hit := w.Add(b, at(1), 1); !hit {
		t.Fatal("other key lost its count")
	}
}

func TestWindowEvictsLeastRecentlySeen(t *testing.T) {
	w := NewWindow(WindowConfig{Threshold: 2, MaxTracked: 3})
	keys := []netip.Prefix{}
	for i := 1; i <= 3; i++ {
		k := netip.MustParsePrefix(fmt.Sprintf("192.0.2.%d/32", i))
		keys = append(keys, k)
		w.Add(k, at(0), 1)
	}
	w.Add(keys[0], at(0.1), 0) // touch the first: the second is now oldest
	w.Add(netip.MustParsePrefix("192.0.2.99/32"), at(0.2), 1)
	if w.Len() != 3 {
		t.Fatalf("Len = %d, want 3", w.Len())
	}
	if _, hit := w.Add(keys[2], at(0.3), 1); !hit {
		t.Fatal("recent key lost its count")
	}
	if _, hit := w.Add(keys[1], at(0.3), 1); hit {
		t.Fatal("evicted key kept its count")
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7/32"},
		{"::ffff:203.0.113.7", "203.0.113.7/32"},
		{"2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
	} {
		if got := ClientKey(netip.MustParseAddr(tt.addr), 0, 0); got.String() != tt.want {
			t.Errorf("ClientKey(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
	if got := ClientKey(netip.MustParseAddr("203.0.113.7"), 24, 48); got.String() != "203.0.113.0/24" {
		t.Errorf("/24: %s", got)
	}
	// Two addresses of one /64 share a count.
	w := NewWindow(WindowConfig{Threshold: 2})
	w.Add(ClientKey(netip.MustParseAddr("2001:db8::1"), 0, 0), at(0), 1)
	if _, hit := w.Add(ClientKey(netip.MustParseAddr("2001:db8::ffff"), 0, 0), at(0), 1); !hit {
		t.Fatal("addresses of one /64 counted apart")
	}
}

// BenchmarkWindowMemory tracks 1,000,000 distinct attackers (the default
// MaxTracked) and reports the heap bytes per key and the process's peak RSS.
//
//	go test ./internal/ban -run XXX -bench WindowMemory -benchtime 1x
func BenchmarkWindowMemory(b *testing.B) {
	const n = 1000000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w := NewWindow(WindowConfig{})
		for j := 0; j < n; j++ {
			a := netip.AddrFrom4([4]byte{byte(j >> 24), byte(j >> 16), byte(j >> 8), byte(j)})
			w.Add(netip.PrefixFrom(a, 32), t0.Add(time.Duration(j)*time.Millisecond), 1)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/key")
		b.ReportMetric(float64(peakRSS())/(1<<20), "peakRSS-MB")
		runtime.KeepAlive(w)
	}
}

// BenchmarkWindowAdd measures one Add on a full Window.
func BenchmarkWindowAdd(b *testing.B) {
	w := NewWindow(WindowConfig{MaxTracked: 100000})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		j := i % 200000
		a := netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)})
		w.Add(netip.PrefixFrom(a, 32), t0.Add(time.Duration(i)*time.Millisecond), 1)
	}
}

// peakRSS returns VmHWM from /proc/self/status in bytes, or 0.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestWindowSum(t *testing.T) {
	w := NewWindow(WindowConfig{Window: time.Minute, Threshold: 5})
	p := netip.MustParsePrefix("192.0.2.1/32")
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if s := w.Sum(p, at); s != 0 {
		t.Fatalf("untracked sum %g", s)
	}
	w.Add(p, at, 1)
	w.Add(p, at.Add(30*time.Second), 1)
	if s := w.Sum(p, at.Add(40*time.Second)); s != 2 {
		t.Fatalf("sum %g, want 2", s)
	}
	if s := w.Sum(p, at.Add(80*time.Second)); s != 1 {
		t.Fatalf("sum after the first left the window %g, want 1", s)
	}
}

// TestWindowAncientFirstEvent: a first event stamped 0001-01-01 does not
// make every later event fall outside the counter's range.
func TestWindowAncientFirstEvent(t *testing.T) {
	w := NewWindow(WindowConfig{Window: 10 * time.Minute, Threshold: 5})
	p := netip.MustParsePrefix("203.0.113.1/32")
	w.Add(p, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	reached := false
	for i := range 5 {
		_, reached = w.Add(p, now.Add(time.Duration(i)*time.Second), 1)
	}
	if !reached {
		t.Fatal("5 attempts in 5 s after an ancient first stamp did not reach the threshold")
	}
}

// TestHorizons: a slow attacker under the short window reaches a horizon:
// one guess an hour, 6 within a day; attempts older than the horizon
// leave it (to a twelfth of it); the first horizon reached is the one
// named.
func TestHorizons(t *testing.T) {
	w := NewWindow(WindowConfig{Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 6}, {Window: 7 * 24 * time.Hour, Threshold: 8}}})
	p := netip.MustParsePrefix("198.51.100.1/32")
	for i := range 5 {
		if v := w.Count(p, t0.Add(time.Duration(i)*time.Hour), 1, Attempt{}); v.Reached || v.Horizon >= 0 {
			t.Fatalf("guess %d: %+v", i+1, v)
		}
	}
	if v := w.Count(p, t0.Add(5*time.Hour), 1, Attempt{}); v.Horizon != 0 || v.HorizonSum != 6 || v.Sum != 1 {
		t.Fatalf("the sixth guess in a day: %+v", v)
	}
	// One every 8 hours: 3 a day, never the day's 6; the week's 8th.
	q := netip.MustParsePrefix("198.51.100.2/32")
	for i := range 7 {
		if v := w.Count(q, t0.Add(time.Duration(8*i)*time.Hour), 1, Attempt{}); v.Horizon >= 0 {
			t.Fatalf("guess %d of one every 8 hours: %+v", i+1, v)
		}
	}
	if v := w.Count(q, t0.Add(56*time.Hour), 1, Attempt{}); v.Horizon != 1 || v.HorizonSum != 8 {
		t.Fatalf("the 8th in a week: %+v", v)
	}
	// Four a day, each day a day later: the day's count starts afresh.
	r := netip.MustParsePrefix("198.51.100.3/32")
	for d := range 2 {
		for i := range 4 {
			v := w.Count(r, t0.Add(time.Duration(d)*26*time.Hour+time.Duration(i)*time.Minute*20), 1, Attempt{})
			if v.Horizon == 0 {
				t.Fatalf("day %d, guess %d: the day's horizon counts yesterday's: %+v", d, i, v)
			}
		}
	}
}

// TestForgiveAndLogin: a login forgives the failures at accounts that
// exist, never those at accounts that do not, nor the short window; the
// failures after it count again; a network with a login is known.
func TestForgiveAndLogin(t *testing.T) {
	w := NewWindow(WindowConfig{Threshold: 5, Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 6}}})
	p := netip.MustParsePrefix("203.0.113.9/32")
	for i := range 3 {
		w.Count(p, t0.Add(time.Duration(i)*time.Hour), 1, Attempt{})
	}
	w.Count(p, t0.Add(3*time.Hour), 1, Attempt{Unforgivable: true})
	w.Count(p, t0.Add(3*time.Hour+time.Minute), 1, Attempt{Unforgivable: true})
	w.Forgive(p, t0.Add(4*time.Hour))
	// The two at accounts that do not exist stay: 2 + 3 more = 5 < 6.
	for i := range 3 {
		if v := w.Count(p, t0.Add(5*time.Hour+time.Duration(i)*time.Hour), 1, Attempt{}); v.Horizon >= 0 {
			t.Fatalf("after the login, guess %d: %+v", i, v)
		}
	}
	if v := w.Count(p, t0.Add(9*time.Hour), 1, Attempt{}); v.Horizon != 0 || v.HorizonSum != 6 {
		t.Fatalf("failures going on after a login: %+v", v)
	}
	// The short window is not forgiven.
	s := netip.MustParsePrefix("203.0.113.10/32")
	for i := range 4 {
		w.Count(s, t0.Add(time.Duration(i)*time.Second), 1, Attempt{})
	}
	w.Forgive(s, t0.Add(5*time.Second))
	if v := w.Count(s, t0.Add(6*time.Second), 1, Attempt{}); !v.Reached {
		t.Fatalf("the short window forgiven: %+v", v)
	}
	// Networks: a login is remembered for a while.
	n := NewWindow(WindowConfig{NoShort: true, Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 20}}})
	net := netip.MustParsePrefix("192.0.2.0/24")
	n.Count(net, t0, 1, Attempt{})
	n.MarkLogin(net, t0.Add(time.Hour))
	if !n.LoginWithin(net, t0.Add(20*time.Hour), 24*time.Hour) || n.LoginWithin(net, t0.Add(30*time.Hour), 24*time.Hour) {
		t.Fatal("LoginWithin")
	}
}

// TestDistinctNames: at the horizons, attempts at accounts that do not
// exist count once per name in a row: a new name each time is an
// enumeration, the same missing account again is not.
func TestDistinctNames(t *testing.T) {
	w := NewWindow(WindowConfig{Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 4}}})
	p, q := netip.MustParsePrefix("203.0.113.11/32"), netip.MustParsePrefix("203.0.113.12/32")
	for i := range 10 {
		at := t0.Add(time.Duration(i) * 30 * time.Minute)
		if v := w.Count(p, at, 1, Attempt{Unforgivable: true, Name: "backup"}); v.Horizon >= 0 {
			t.Fatalf("one missing account %d times: %+v", i+1, v)
		}
		v := w.Count(q, at, 1, Attempt{Unforgivable: true, Name: fmt.Sprint("user", i)})
		if (v.Horizon == 0) != (i == 3) && i <= 3 {
			t.Fatalf("the %dth name: %+v", i+1, v)
		}
	}
}

// BenchmarkWindowMemoryHorizons is BenchmarkWindowMemory with the
// default horizons (a day and a week) on: the goal is at most 200 bytes
// a key.
func BenchmarkWindowMemoryHorizons(b *testing.B) {
	const n = 1000000
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		w := NewWindow(WindowConfig{Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: 6}, {Window: 7 * 24 * time.Hour, Threshold: 8}}})
		for j := 0; j < n; j++ {
			a := netip.AddrFrom4([4]byte{byte(j >> 24), byte(j >> 16), byte(j >> 8), byte(j)})
			w.Count(netip.PrefixFrom(a, 32), t0.Add(time.Duration(j)*time.Millisecond), 1, Attempt{Unforgivable: j%3 == 0, Name: "x"})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perKey := float64(after.HeapAlloc-before.HeapAlloc) / n
		b.ReportMetric(perKey, "bytes/key")
		if perKey > 200 {
			b.Errorf("%.0f bytes a key with every horizon on: more than 200", perKey)
		}
		runtime.KeepAlive(w)
	}
}

// TestWindowEdges: each limit of the window at its edge.
func TestWindowEdges(t *testing.T) {
	// An attempt exactly a window old has left it.
	w := NewWindow(WindowConfig{Threshold: 2})
	p := netip.MustParsePrefix("192.0.2.10/32")
	w.Add(p, at(0), 1)
	if sum, hit := w.Add(p, at(10), 1); hit || sum != 1 {
		t.Fatalf("an attempt exactly 10 minutes old still counts: sum %v hit %v", sum, hit)
	}
	if sum, hit := w.Add(p, at(19.99), 1); !hit || sum != 2 {
		t.Fatalf("two within 10 minutes: sum %v hit %v", sum, hit)
	}

	// A login exactly d ago is not within d.
	w.MarkLogin(p, at(30))
	if !w.LoginWithin(p, at(34.99), 5*time.Minute) || w.LoginWithin(p, at(35), 5*time.Minute) {
		t.Fatal("LoginWithin: 5 minutes after a login is no longer within 5 minutes, a moment before is")
	}
	if w.LoginWithin(netip.MustParsePrefix("192.0.2.11/32"), at(31), time.Hour) {
		t.Fatal("a key never seen logged in")
	}

	// A late line exactly a horizon's 12 buckets behind the newest is
	// older than the horizon; one bucket later it counts.
	h := NewWindow(WindowConfig{Threshold: 100, Horizons: []Horizon{{Window: 12 * time.Hour, Threshold: 2}}})
	q := netip.MustParsePrefix("192.0.2.12/32")
	h.Count(q, t0, 1, Attempt{})                   // bucket 0
	h.Count(q, t0.Add(24*time.Hour), 1, Attempt{}) // bucket 24: 0 is out of the horizon
	if v := h.Count(q, t0.Add(12*time.Hour), 1, Attempt{}); v.Horizon >= 0 {
		t.Fatalf("a line 12 buckets late counted at the horizon: %+v", v)
	}
	if v := h.Count(q, t0.Add(13*time.Hour), 1, Attempt{}); v.Horizon != 0 || v.HorizonSum != 2 {
		t.Fatalf("a line 11 buckets late: %+v", v)
	}

	// Room and Need: 5 events of 1 reach 5, not 5.5; of 0.95 not 5; of
	// 2 reach 10.
	s := NewWindow(WindowConfig{Threshold: 5, MinWeight: 1})
	if s.Room() != 5 || Need(5, 1) != 5 || Need(5.5, 1) != 6 || Need(5, 0.95) != 6 || Need(10, 2) != 5 {
		t.Fatalf("Room %d; Need(5, 1) %d, (5.5, 1) %d, (5, 0.95) %d, (10, 2) %d", s.Room(), Need(5, 1), Need(5.5, 1), Need(5, 0.95), Need(10, 2))
	}
}

// TestThresholdReachedAtItsCount: with every weight the configuration
// allows (whole twentieths in the window, whole halves at a horizon), a
// key reaches a threshold at the attempt an administrator computes,
// threshold / weight rounded up, also when the threshold is no multiple
// of the weight (5.02 at weight 1: the 6th, not the 5th).
func TestThresholdReachedAtItsCount(t *testing.T) {
	p := netip.MustParsePrefix("192.0.2.30/32")
	for _, th := range []int{100, 500, 502, 620, 2000} { // hundredths
		for tw := 1; tw <= 255; tw++ { // the weight in twentieths
			want := (th + 5*tw - 1) / (5 * tw)
			if want > 255 {
				continue // refused by the configuration
			}
			threshold, weight := float64(th)/100, float64(tw)/20
			w := NewWindow(WindowConfig{Threshold: threshold, MinWeight: weight, Window: time.Hour})
			got := 0
			for i := 1; i <= 300 && got == 0; i++ {
				if _, hit := w.Add(p, t0.Add(time.Duration(i)*time.Second), weight); hit {
					got = i
				}
			}
			if got != want {
				t.Errorf("threshold %g, weight %g: reached at attempt %d, want %d", threshold, weight, got, want)
			}
		}
	}
	// A weight between twentieths (which the configuration refuses)
	// counts as stored, 0.12 as 0.1, and the events kept are sized for
	// it: 50 reach 5 (42 were kept, 4.2, never 5).
	w := NewWindow(WindowConfig{Threshold: 5, MinWeight: 0.12, Window: time.Hour})
	for i := 1; i <= 50; i++ {
		if _, hit := w.Add(p, t0.Add(time.Duration(i)*time.Second), 0.12); hit != (i == 50) {
			t.Fatalf("weight 0.12 (stored 0.1), threshold 5: attempt %d reached it: %v", i, hit)
		}
	}
	for _, th := range []int{100, 600, 620, 800, 10000} {
		for hw := 1; hw <= 25; hw++ { // the weight in halves
			want := (th + 50*hw - 1) / (50 * hw)
			threshold, weight := float64(th)/100, float64(hw)/2
			w := NewWindow(WindowConfig{NoShort: true, Horizons: []Horizon{{Window: 24 * time.Hour, Threshold: threshold}}})
			got := 0
			for i := 1; i <= 250 && got == 0; i++ { // one every 5 minutes: all within the day
				if v := w.Count(p, t0.Add(time.Duration(i)*5*time.Minute), weight, Attempt{}); v.Horizon == 0 {
					got = i
				}
			}
			if got != want {
				t.Errorf("horizon threshold %g, weight %g: reached at attempt %d, want %d", threshold, weight, got, want)
			}
		}
	}
}
