package engine

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// The hourly counts are kept by a tally of their own, off the engine's
// lock: an event is handed over through a bounded queue (dropped and
// counted when full, never waited for), taken in by Tally's goroutine or
// by the next reader (Hours, FlushCounts), so that neither a flush nor the
// API's readers ever hold up a ban.

// countEvent is what the counts need of an event.
type countEvent struct {
	at        time.Time
	kind      string
	addr      netip.Addr
	user      string
	conn      uint64 // host and sshd pid, hashed; 0: none
	failed    bool   // a counted failed attempt
	probe     bool   // a counted probe
	takesBack bool   // a failure that takes back its connection's probe (detect.Event.TakesBackProbe)
	ban       bool   // a ban started at at (no other field)
	counted   bool
	n         int64 // attempts the line counted (a repeated message: more than one)
}

// countQueue bounds the events waiting to be counted.
const countQueue = 1 << 16

// tally holds the hourly counts not yet in the store.
type tally struct {
	queue   chan *countEvent // pointers: the full queue's buffer is 512 KB, not 6.5 MB
	free    sync.Pool        // *countEvent counted, for the next
	ready   chan struct{}    // a signal that events wait (Tally takes them)
	dropped atomic.Int64     // events not counted: the queue was full

	mu     sync.Mutex // guards everything below
	counts map[time.Time]*store.Counts
	seen   seen   // connections and addresses counted this hour and day
	probed probed // the hours of the connections' probes, for their take-back
}

func newTally() *tally {
	return &tally{queue: make(chan *countEvent, countQueue), ready: make(chan struct{}, 1), counts: map[time.Time]*store.Counts{}}
}

// count hands r's counts to the tally; it never waits.
func (g *Guard) count(r *detect.Record, at time.Time) {
	e := countEvent{at: at, kind: r.Kind.String(), addr: r.Addr, counted: r.Counted > 0, n: int64(min(r.Counted, detect.MaxRepeat+1))}
	if r.User != "" {
		e.user = strings.Clone(r.User)
	}
	e.failed = e.counted && r.Kind == detect.KindFailure
	e.probe = e.counted && r.Kind == detect.KindProbe
	e.takesBack = e.failed && r.TakesBackProbe
	if r.PID != 0 {
		e.conn = maphash.String(g.seed, r.Host) ^ uint64(r.PID)*0x9e3779b97f4a7c15 | 1
	}
	g.tally.put(e)
}

func (t *tally) put(e countEvent) {
	p, _ := t.free.Get().(*countEvent)
	if p == nil {
		p = new(countEvent)
	}
	*p = e
	select {
	case t.queue <- p:
	default:
		t.dropped.Add(1)
		t.free.Put(p)
		return
	}
	select {
	case t.ready <- struct{}{}:
	default: // a signal waits already
	}
}

// addFree counts p, then keeps it for the next event. t.mu is held.
func (t *tally) addFree(p *countEvent, seed maphash.Seed, loc *time.Location) {
	t.add(*p, seed, loc)
	*p = countEvent{}
	t.free.Put(p)
}

// take counts what waits in the queue. t.mu is held.
func (t *tally) take(seed maphash.Seed, loc *time.Location) {
	for {
		select {
		case p := <-t.queue:
			t.addFree(p, seed, loc)
		default:
			return
		}
	}
}

// add counts e in its hour. t.mu is held.
func (t *tally) add(e countEvent, seed maphash.Seed, loc *time.Location) {
	c := t.hour(e.at)
	if e.ban {
		c.Bans++
		return
	}
	addr := ""
	if e.addr.IsValid() {
		addr = e.addr.String()
	}
	c.AddN(e.kind, addr, e.user, e.failed, e.probe, e.n)
	switch {
	case e.probe:
		t.probed.put(e.conn, e.at)
	case e.takesBack:
		// From the hour the probe was counted in (it may be stored
		// already: the negative count is added to it at the flush).
		t.hour(t.probed.take(e.conn, e.at)).TakeBackProbe(addr)
	}
	if e.conn != 0 {
		hour, day := t.seen.add(kindConn, e.conn, e.at, loc)
		c.Conns += hour
		c.DayConns += day
	}
	if e.addr.IsValid() {
		hour, day := t.seen.add(kindAddr, maphash.Comparable(seed, e.addr), e.at, loc)
		c.Addresses += hour
		c.DayAddresses += day
	}
}

// hour returns the counts of at's hour. t.mu is held.
func (t *tally) hour(at time.Time) *store.Counts {
	h := at.Truncate(time.Hour)
	c := t.counts[h]
	if c == nil {
		c = &store.Counts{}
		t.counts[h] = c
	}
	return c
}

// countBans adds bans to the counts of the hours they start in.
func (g *Guard) countBans(bans []*store.Ban) {
	for _, b := range bans {
		g.tally.put(countEvent{at: b.Start, ban: true})
	}
}

// Tally counts the events handed over until ctx ends (the daemon runs
// it; without it, readers count what waits when they read). Events leave
// the queue only under t.mu (take): a reader, which takes what waits
// before it reads, never misses one on its way (when Tally received them
// itself, a reader between that and Tally's lock missed one).
func (g *Guard) Tally(ctx context.Context) error {
	t := g.tally
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.ready:
			runtime.Gosched() // the log's reader first: see Guard.loop
			t.mu.Lock()
			t.take(g.seed, g.cfg.Load().Loc)
			t.mu.Unlock()
		}
	}
}

// CountsDropped is how many events were not counted (the tally's queue
// was full).
func (g *Guard) CountsDropped() int64 { return g.tally.dropped.Load() }

// Hours calls fn with each hour in [from, to) that has counts, in time
// order: the store's plus those gathered since the last flush, so that a
// reader is never a minute behind. A flush waits for it (and it for a
// flush): nothing is counted twice or missed.
func (g *Guard) Hours(from, to time.Time, fn func(hour time.Time, c store.Counts)) error {
	g.flushMu.RLock()
	defer g.flushMu.RUnlock()
	byHour := map[int64]*store.Counts{}
	add := func(h time.Time, c store.Counts) {
		if h.Before(from) || !h.Before(to) {
			return
		}
		if cur := byHour[h.Unix()]; cur != nil {
			cur.Merge(c)
		} else {
			byHour[h.Unix()] = &c
		}
	}
	if err := g.db.Hours(from, to, add); err != nil {
		return err
	}
	t := g.tally
	t.mu.Lock()
	t.take(g.seed, g.cfg.Load().Loc)
	for h, c := range t.counts {
		if h.Before(from.Truncate(time.Hour)) || !h.Before(to) {
			continue
		}
		var cp store.Counts
		cp.Merge(*c)
		add(h, cp)
	}
	t.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(byHour)) {
		fn(time.Unix(k, 0).UTC(), *byHour[k])
	}
	return nil
}

// FlushCounts adds the counts gathered since the last flush to the store.
func (g *Guard) FlushCounts() error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	t := g.tally
	t.mu.Lock()
	t.take(g.seed, g.cfg.Load().Loc)
	counts := t.counts
	t.counts = map[time.Time]*store.Counts{}
	t.mu.Unlock()
	var errs []error
	for h, c := range counts {
		errs = append(errs, g.db.AddCounts(h, *c))
	}
	return errors.Join(errs...)
}

// What seen tells apart.
const (
	kindConn = iota
	kindAddr
)

// maxSeen bounds each set of seen: past it, a new connection or address
// of that hour or day is not counted (the figure is then a lower bound).
const maxSeen = 1 << 18

// seenKeep is how many hours and days seen keeps sets for: events come
// in time order but for the merging of files.
const seenKeep = 3

// seen remembers which connections and addresses were seen in the last
// hours and days, as 64-bit hashes, so that each is counted once per hour
// and once per day. It lives in memory: a restart counts again what it
// sees after it.
type seen struct {
	sets map[seenKey]map[uint64]struct{}
	last [2][2]time.Time // per kind, per span (hour, day): the latest bucket
}

type seenKey struct {
	kind, span int
	at         time.Time // the bucket's start
}

// add records h of kind seen at at and returns, 1 or 0, whether it is
// new in at's hour and new in at's day (days in loc).
func (s *seen) add(kind int, h uint64, at time.Time, loc *time.Location) (hour, day int64) {
	if s.sets == nil {
		s.sets = map[seenKey]map[uint64]struct{}{}
	}
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := at.In(loc).Date()
	return s.put(seenKey{kind, 0, at.Truncate(time.Hour)}, h, time.Hour),
		s.put(seenKey{kind, 1, time.Date(y, m, d, 0, 0, 0, 0, loc)}, h, 24*time.Hour)
}

func (s *seen) put(k seenKey, h uint64, span time.Duration) int64 {
	set := s.sets[k]
	if set == nil {
		last := &s.last[k.kind][k.span]
		if k.at.After(*last) {
			*last = k.at
			// Drop the buckets too old to see more events.
			for o := range s.sets {
				if o.kind == k.kind && o.span == k.span && o.at.Before(k.at.Add(-seenKeep*span)) {
					delete(s.sets, o)
				}
			}
		}
		set = map[uint64]struct{}{}
		s.sets[k] = set
	}
	if _, ok := set[h]; ok || len(set) >= maxSeen {
		return 0
	}
	set[h] = struct{}{}
	return 1
}

// probed remembers, of the connections whose probe was counted this hour
// or the hour before, the hour it was counted in: a failure that takes
// the probe back (within seconds of it, or LoginGraceTime) takes it from
// that hour, whichever hour the failure is in. Past maxSeen connections
// an hour, or for a connection without a pid, the failure's hour is
// taken: the sum of the hours is right, one of them may be off by one.
type probed struct {
	hours [2]time.Time           // this hour and the one before
	conns [2]map[uint64]struct{} // their connections with a probe counted
}

// put records that conn counted a probe at at.
func (p *probed) put(conn uint64, at time.Time) {
	if conn == 0 {
		return
	}
	h := at.Truncate(time.Hour)
	var i int
	switch {
	case h.Equal(p.hours[0]):
		i = 0
	case h.Equal(p.hours[1]):
		i = 1
	case h.After(p.hours[0]):
		// A new hour: the one before is kept if it is the last.
		if h.Sub(p.hours[0]) == time.Hour {
			p.hours[1], p.conns[1] = p.hours[0], p.conns[0]
		} else {
			p.hours[1], p.conns[1] = time.Time{}, nil
		}
		p.hours[0], p.conns[0] = h, nil
	default:
		return // older than both (files merged out of order): not remembered
	}
	if p.conns[i] == nil {
		p.conns[i] = map[uint64]struct{}{}
	}
	if len(p.conns[i]) < maxSeen {
		p.conns[i][conn] = struct{}{}
	}
}

// take returns the hour conn's probe was counted in, and forgets it; at's
// own hour when it is not known.
func (p *probed) take(conn uint64, at time.Time) time.Time {
	for i := range p.conns {
		if _, ok := p.conns[i][conn]; ok && conn != 0 {
			delete(p.conns[i], conn)
			return p.hours[i]
		}
	}
	return at.Truncate(time.Hour)
}
