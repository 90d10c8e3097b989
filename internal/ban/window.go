package ban

import (
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
}

// Window counts weighted attempts per key in a true sliding window: a key
// crosses the threshold when the weights of its attempts in the last
// Window seconds add up to Threshold, wherever the window starts (unlike a
// window fixed at a key's first attempt).
//
// Memory is bounded: at most MaxTracked keys, the least recently seen
// evicted first. Each key costs one map entry and a fixed slot of
// threshold/MinWeight events of 5 bytes (time in seconds, weight in
// twentieths, at most 12.75); see BenchmarkWindowMemory.
//
// A Window is not safe for concurrent use.
type Window struct {
	window    int64 // seconds
	threshold uint32
	slots     int     // events remembered per key
	minWeight float64 // the smallest weight slots was sized for
	max       int

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
}

func (w *Window) ent(i uint32) *entry { return &w.chunks[i/blockSize].ents[i%blockSize] }

// events returns the event slots of entry i.
func (w *Window) events(i uint32) ([]uint32, []uint8) {
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
	slots := int(math.Ceil(cfg.Threshold / cfg.MinWeight))
	slots = max(1, min(slots, 255))
	w := &Window{
		window:    int64(cfg.Window / time.Second),
		threshold: uint32(math.Round(cfg.Threshold * weightUnit)),
		slots:     slots,
		minWeight: cfg.MinWeight,
		max:       cfg.MaxTracked,
		index:     make(map[key]uint32),
		n:         1, // the sentinel
	}
	w.grow()
	return w
}

// SetLimits changes the window and threshold in place, keeping every
// key's events. It reports false when the threshold needs more remembered
// events per key than this Window was made with (threshold/MinWeight):
// the count is then capped at that many until the next start.
func (w *Window) SetLimits(window time.Duration, threshold float64) bool {
	if window > 0 {
		w.window = int64(window / time.Second)
	}
	if threshold > 0 {
		w.threshold = uint32(math.Round(threshold * weightUnit))
	}
	return float64(w.slots)*w.minWeight >= threshold || w.slots == 255
}

// Len returns the number of keys tracked.
func (w *Window) Len() int { return len(w.index) }

func keyOf(p netip.Prefix) key { return key(p.Masked().Addr().As16()) }

// Add records an attempt of weight by p at t and returns the weighted sum
// in the window ending at t, and whether it reached the threshold.
func (w *Window) Add(p netip.Prefix, t time.Time, weight float64) (sum float64, reached bool) {
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
	wts[pos] = uint8(min(255, math.Round(weight*weightUnit)))
	total := w.total(i, sec)
	return float64(total) / weightUnit, total >= w.threshold
}

// rebase makes second now-1 the base and forgets every key's events.
func (w *Window) rebase(now int64) {
	w.base = now - 1
	for _, i := range w.index {
		e := w.ent(i)
		e.head, e.n = 0, 0
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
	w.index[k] = i
	return i
}

// grow adds a chunk of entries.
func (w *Window) grow() {
	w.chunks = append(w.chunks, &block{
		times: make([]uint32, blockSize*w.slots),
		wts:   make([]uint8, blockSize*w.slots),
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
