package ban

import (
	"hash/maphash"
	"math"
	"net/netip"
	"time"
)

// WindowConfig configures a Window. Zero values mean the defaults.
type WindowConfig struct {
	Window     time.Duration // default 10 minutes
	Threshold  float64       // default 5
	MaxTracked int           // default 1,000,000 keys
	// MinWeight is the smallest weight Add will be given (default 0.5,
	// the probe weight): it bounds how many events can matter at once,
	// threshold/MinWeight, which is how many each key remembers.
	MinWeight float64
	// Horizons are longer windows, each with its own threshold, counted
	// beside the short one in coarse buckets (at most MaxHorizons).
	Horizons []Horizon
	// NoShort counts the horizons only (a network's attempts).
	NoShort bool
}

// Horizon is a long window and its threshold: a slow attacker spreading
// guesses over hours and days stays under the short window, not under
// these. Each key keeps a horizon in horizonBuckets buckets of a twelfth
// of its length, so the window is true to a twelfth; attempts are kept in
// halves, at most 127 per bucket (a weight counts there to the nearest
// half: the configuration allows no other weight beside horizons).
type Horizon struct {
	Window    time.Duration
	Threshold float64
}

// MaxHorizons bounds the horizons of a Window.
const MaxHorizons = 4

// horizonBuckets is how many buckets a key keeps per horizon.
const horizonBuckets = 12

// Verdict is what an attempt leads to.
type Verdict struct {
	Sum     float64 // the short window's weighted attempts
	Reached bool    // the short window's threshold
	// Horizon is the first horizon whose threshold the key's attempts
	// reached (-1: none), and HorizonSum its attempts.
	Horizon    int
	HorizonSum float64
}

// Window counts weighted attempts per key in a true sliding window: a key
// crosses the threshold when the weights of its attempts in the last
// Window seconds add up to Threshold, wherever the window starts (unlike a
// window fixed at a key's first attempt).
//
// Memory is bounded: at most MaxTracked keys, the least recently seen
// evicted first. Each key costs one map entry and a fixed slot of
// threshold/MinWeight events of 5 bytes (time in seconds, weight in
// twentieths, at most 12.75: a weight counts to the nearest twentieth, and
// the configuration allows no other); see BenchmarkWindowMemory.
//
// A Window is not safe for concurrent use.
type Window struct {
	window    int64 // seconds
	threshold uint32
	slots     int // events remembered per key
	max       int
	horizons  []horizon

	base   int64          // unix second that event times are relative to
	index  map[key]uint32 // key -> entry
	chunks []*block       // entries in fixed blocks, never copied on growth
	n      uint32         // entries allocated; entry 0 is the LRU sentinel
	free   []uint32       // entries evicted or reset, reused
}

// blockSize entries are allocated at a time: growing by blocks instead of
// doubling one slice keeps the peak close to what is in use.
const blockSize = 4096

type block struct {
	ents  [blockSize]entry
	times []uint32 // slots per entry: event times, base-relative seconds
	wts   []uint8  // slots per entry: event weights in units of 1/20
	// Per entry and horizon: the newest bucket's number (base-relative
	// seconds / the bucket's length), and the buckets, forgivable then
	// not (halves of attempts).
	hnew []uint32
	hb   []uint8
}

// horizon is a Horizon as the Window keeps it.
type horizon struct {
	bucket    int64  // seconds per bucket
	threshold uint32 // halves of attempts
	window    time.Duration
}

func (w *Window) ent(i uint32) *entry { return &w.chunks[i/blockSize].ents[i%blockSize] }

// events returns the event slots of entry i.
func (w *Window) events(i uint32) ([]uint32, []uint8) {
	if w.slots == 0 {
		return nil, nil
	}
	c := w.chunks[i/blockSize]
	off := int(i%blockSize) * w.slots
	return c.times[off : off+w.slots], c.wts[off : off+w.slots]
}

// weightUnit: weights are kept in twentieths, one byte per event, so a
// weight is between 0 and 12.75 in steps of 0.05.
const weightUnit = 20

// key is an address in 16 bytes (IPv4 mapped), masked to its prefix.
type key [16]byte

type entry struct {
	k          key
	prev, next uint32 // LRU list, most recent after the sentinel
	head, n    uint8  // ring of events in times/wts
	name       uint16 // a hash of the last user name Distinct saw
	login      uint32 // base-relative second of the last MarkLogin; 0: none
}

// NewWindow returns a Window.
func NewWindow(cfg WindowConfig) *Window {
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Minute
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 5
	}
	if cfg.MaxTracked <= 0 {
		cfg.MaxTracked = 1000000
	}
	if cfg.MinWeight <= 0 || cfg.MinWeight > cfg.Threshold {
		cfg.MinWeight = min(0.5, cfg.Threshold)
	}
	slots := max(1, min(Need(cfg.Threshold, cfg.MinWeight), 255))
	if cfg.NoShort {
		slots = 0
	}
	w := &Window{
		window:    int64(cfg.Window / time.Second),
		threshold: units(cfg.Threshold, weightUnit),
		slots:     slots,
		max:       cfg.MaxTracked,
		index:     make(map[key]uint32),
		n:         1, // the sentinel
	}
	for _, h := range cfg.Horizons[:min(len(cfg.Horizons), MaxHorizons)] {
		w.horizons = append(w.horizons, horizon{bucket: max(int64(h.Window/time.Second)/horizonBuckets, 1),
			threshold: units(h.Threshold, 2), window: h.Window})
	}
	w.grow()
	return w
}

// units is x in units of 1/per, rounded up: the stored weights are whole
// units, so a sum reaches x exactly when it reaches units(x, per) (a
// threshold of 5.02 in twentieths is 101: 6 attempts of weight 1, not 5).
// A float a hair above a whole unit (0.15*20) is that unit.
func units(x, per float64) uint32 {
	return uint32(max(0, math.Ceil(x*per-1e-9)))
}

// stored is weight as Count keeps it in the short window: in twentieths,
// rounded to the nearest (the configuration allows only whole twentieths).
func stored(weight float64) uint32 { return uint32(max(0, min(255, math.Round(weight*weightUnit)))) }

// Need is how many attempts of weight, as the short window stores it,
// reach threshold: the events a key must remember for it (at least one).
func Need(threshold, weight float64) int {
	t, w := units(threshold, weightUnit), max(stored(weight), 1)
	return int(max(1, (t+w-1)/w))
}

// Room is how many events each key remembers in the short window, sized
// at NewWindow as Need(Threshold, MinWeight), at most 255 (0: NoShort).
func (w *Window) Room() int { return w.slots }

// SetLimits changes the window and threshold in place (zero: unchanged),
// keeping every key's events. A threshold whose Need of the lightest
// weight counted is beyond Room stops that weight short of it: a caller
// checks first.
func (w *Window) SetLimits(window time.Duration, threshold float64) {
	if window > 0 {
		w.window = int64(window / time.Second)
	}
	if threshold > 0 {
		w.threshold = units(threshold, weightUnit)
	}
}

// Len returns the number of keys tracked.
func (w *Window) Len() int { return len(w.index) }

func keyOf(p netip.Prefix) key { return key(p.Masked().Addr().As16()) }

// Add records an attempt of weight by p at t and returns the weighted sum
// in the window ending at t, and whether it reached the threshold.
func (w *Window) Add(p netip.Prefix, t time.Time, weight float64) (sum float64, reached bool) {
	v := w.Count(p, t, weight, Attempt{})
	return v.Sum, v.Reached
}

// Attempt is how an attempt counts at the horizons.
type Attempt struct {
	// Unforgivable marks an attempt at an account that does not exist:
	// Forgive does not take it back, and it counts at the horizons only
	// when its Name differs from the last such name of the key (a script
	// retrying one missing account is no enumeration).
	Unforgivable bool
	Name         string
}

// Count records an attempt of weight by p at t in the short window and
// the horizons, and says which thresholds the key reached.
func (w *Window) Count(p netip.Prefix, t time.Time, weight float64, a Attempt) Verdict {
	i, sec := w.touch(p, t)
	v := Verdict{Horizon: -1}
	if w.slots > 0 {
		e := w.ent(i)
		times, wts := w.events(i)
		// Write the event over the oldest slot.
		pos := (int(e.head) + int(e.n)) % w.slots
		if int(e.n) == w.slots {
			e.head = uint8((int(e.head) + 1) % w.slots)
		} else {
			e.n++
		}
		times[pos] = uint32(sec)
		wts[pos] = uint8(stored(weight))
		total := w.total(i, sec)
		v.Sum, v.Reached = float64(total)/weightUnit, total >= w.threshold
	}
	halves := uint8(min(127, math.Round(weight*2)))
	if a.Unforgivable && a.Name != "" && len(w.horizons) > 0 {
		h := uint16(maphash.String(nameSeed, a.Name)) | 1
		if e := w.ent(i); e.name == h {
			halves = 0 // the same missing account again
		} else {
			e.name = h
		}
	}
	for h := range w.horizons {
		b := w.buckets(i, h, sec)
		n := uint32(sec / w.horizons[h].bucket) // the attempt's own bucket
		if n+horizonBuckets <= w.newest(i, h) {
			continue // older than the horizon (a line late, from another file)
		}
		cls := 0
		if a.Unforgivable {
			cls = horizonBuckets
		}
		slot := &b[cls+int(n%horizonBuckets)]
		*slot = uint8(min(255, int(*slot)+int(halves)))
		if sum := w.horizonSum(b); v.Horizon < 0 && sum >= w.horizons[h].threshold {
			v.Horizon, v.HorizonSum = h, float64(sum)/2
		}
	}
	return v
}

// touch finds or makes p's entry, moves it to the front of the LRU list,
// and returns it with t as a base-relative second.
func (w *Window) touch(p netip.Prefix, t time.Time) (uint32, int64) {
	if w.base == 0 {
		w.base = t.Unix() - 1
	}
	sec := t.Unix() - w.base
	if sec < 0 {
		sec = 0 // before the first event we saw: counts as the first second
	}
	if sec >= math.MaxUint32 {
		// 136 years after the first event: that one was stamped in another
		// era (a line dated 0001-01-01). What is kept is meaningless now.
		w.rebase(t.Unix())
		sec = 1
	}
	k := keyOf(p)
	i, ok := w.index[k]
	if !ok {
		i = w.alloc(k)
	} else {
		w.unlink(i)
	}
	w.pushFront(i)
	return i, sec
}

// buckets returns entry i's buckets of horizon h (forgivable, then not),
// moved on to second sec: buckets older than the horizon are emptied.
func (w *Window) buckets(i uint32, h int, sec int64) []uint8 {
	c := w.chunks[i/blockSize]
	j := int(i%blockSize)*len(w.horizons) + h
	b := c.hb[j*2*horizonBuckets : (j+1)*2*horizonBuckets]
	now := uint32(sec / w.horizons[h].bucket)
	if newest := c.hnew[j]; now > newest {
		for n := newest + 1; n <= now && n <= newest+horizonBuckets; n++ {
			b[n%horizonBuckets], b[horizonBuckets+n%horizonBuckets] = 0, 0
		}
		c.hnew[j] = now
	}
	return b
}

func (w *Window) newest(i uint32, h int) uint32 {
	return w.chunks[i/blockSize].hnew[int(i%blockSize)*len(w.horizons)+h]
}

func (w *Window) horizonSum(b []uint8) uint32 {
	var sum uint32
	for _, x := range b {
		sum += uint32(x)
	}
	return sum
}

// Forgive takes back p's forgivable attempts at the horizons (a login
// to an account that exists: its earlier failures were typos); the short
// window and the attempts at accounts that do not exist stay.
func (w *Window) Forgive(p netip.Prefix, t time.Time) {
	i, ok := w.index[keyOf(p)]
	if !ok || len(w.horizons) == 0 {
		return
	}
	sec := max(t.Unix()-w.base, 0)
	for h := range w.horizons {
		clear(w.buckets(i, h, sec)[:horizonBuckets])
	}
}

// MarkLogin records a login from p at t (a network a user logs in from),
// and forgives p's attempts.
func (w *Window) MarkLogin(p netip.Prefix, t time.Time) {
	i, sec := w.touch(p, t)
	w.ent(i).login = uint32(max(sec, 1))
	for h := range w.horizons {
		clear(w.buckets(i, h, sec))
	}
}

// LoginWithin reports whether MarkLogin saw p within d before t.
func (w *Window) LoginWithin(p netip.Prefix, t time.Time, d time.Duration) bool {
	i, ok := w.index[keyOf(p)]
	if !ok {
		return false
	}
	l := w.ent(i).login
	return l != 0 && t.Unix()-w.base-int64(l) < int64(d/time.Second)
}

var nameSeed = maphash.MakeSeed()

// HorizonWindow is horizon h's length.
func (w *Window) HorizonWindow(h int) time.Duration { return w.horizons[h].window }

// rebase makes second now-1 the base and forgets every key's events.
func (w *Window) rebase(now int64) {
	w.base = now - 1
	for _, i := range w.index {
		e := w.ent(i)
		e.head, e.n, e.login = 0, 0, 0
		if n := len(w.horizons); n > 0 {
			c := w.chunks[i/blockSize]
			j := int(i%blockSize) * n
			clear(c.hnew[j : j+n])
			clear(c.hb[j*2*horizonBuckets : (j+n)*2*horizonBuckets])
		}
	}
}

// total is entry i's weight in the window ending at second sec.
func (w *Window) total(i uint32, sec int64) uint32 {
	e := w.ent(i)
	times, wts := w.events(i)
	var total uint32
	for j := 0; j < int(e.n); j++ {
		s := (int(e.head) + j) % w.slots
		if int64(times[s]) > sec-w.window {
			total += uint32(wts[s])
		}
	}
	return total
}

// Sum returns p's weighted attempts in the window ending at t, without
// adding one (0 when p is not tracked).
func (w *Window) Sum(p netip.Prefix, t time.Time) float64 {
	i, ok := w.index[keyOf(p)]
	if !ok {
		return 0
	}
	sec := t.Unix() - w.base
	if sec >= math.MaxUint32 {
		return 0
	}
	return float64(w.total(i, max(sec, 0))) / weightUnit
}

// Reset forgets p's attempts (after a ban, or an unban: the next typo must
// not ban again at once).
func (w *Window) Reset(p netip.Prefix) {
	k := keyOf(p)
	i, ok := w.index[k]
	if !ok {
		return
	}
	w.unlink(i)
	delete(w.index, k)
	w.free = append(w.free, i)
}

// alloc returns an entry for k, evicting the least recently seen key when
// the Window is full.
func (w *Window) alloc(k key) uint32 {
	var i uint32
	switch {
	case len(w.index) >= w.max:
		i = w.ent(0).prev // the least recently seen
		w.unlink(i)
		delete(w.index, w.ent(i).k)
	case len(w.free) > 0:
		i = w.free[len(w.free)-1]
		w.free = w.free[:len(w.free)-1]
	default:
		if w.n%blockSize == 0 {
			w.grow()
		}
		i = w.n
		w.n++
	}
	*w.ent(i) = entry{k: k}
	if n := len(w.horizons); n > 0 {
		c := w.chunks[i/blockSize]
		j := int(i%blockSize) * n
		clear(c.hnew[j : j+n])
		clear(c.hb[j*2*horizonBuckets : (j+n)*2*horizonBuckets])
	}
	w.index[k] = i
	return i
}

// grow adds a chunk of entries.
func (w *Window) grow() {
	w.chunks = append(w.chunks, &block{
		times: make([]uint32, blockSize*w.slots),
		wts:   make([]uint8, blockSize*w.slots),
		hnew:  make([]uint32, blockSize*len(w.horizons)),
		hb:    make([]uint8, blockSize*len(w.horizons)*2*horizonBuckets),
	})
}

func (w *Window) unlink(i uint32) {
	e := w.ent(i)
	w.ent(e.prev).next = e.next
	w.ent(e.next).prev = e.prev
}

func (w *Window) pushFront(i uint32) {
	s := w.ent(0)
	e := w.ent(i)
	e.prev, e.next = 0, s.next
	w.ent(s.next).prev = i
	s.next = i
}

// ClientKey is the prefix a client address is counted and banned under:
// the address masked to v4Bits or v6Bits (IPv4-mapped addresses count as
// IPv4). Defaults are 32 and 64, because one IPv6 attacker owns a /64.
func ClientKey(a netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	if a.Is4() {
		if v4Bits <= 0 || v4Bits > 32 {
			v4Bits = 32
		}
		return netip.PrefixFrom(a, v4Bits).Masked()
	}
	if v6Bits <= 0 || v6Bits > 128 {
		v6Bits = 64
	}
	return netip.PrefixFrom(a, v6Bits).Masked()
}
