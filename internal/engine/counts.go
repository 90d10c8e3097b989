package engine

import (
	"errors"
	"hash/maphash"
	"maps"
	"slices"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// count adds r to the counts of its hour. g.mu is held.
func (g *Guard) count(r *detect.Record) {
	at := r.Time
	if at.IsZero() {
		at = g.now()
	}
	c := g.hour(at)
	addr := ""
	if r.Addr.IsValid() {
		addr = r.Addr.String()
	}
	counted := r.Counted > 0
	c.Add(r.Kind.String(), addr, r.User, counted && r.Kind == detect.KindFailure, counted && r.Kind == detect.KindProbe)
	loc := g.cfg.Load().Loc
	if r.PID != 0 {
		h := maphash.String(g.seed, r.Host) ^ uint64(r.PID)*0x9e3779b97f4a7c15
		hour, day := g.seen.add(kindConn, h, at, loc)
		c.Conns += hour
		c.DayConns += day
	}
	if r.Addr.IsValid() {
		hour, day := g.seen.add(kindAddr, maphash.Comparable(g.seed, r.Addr), at, loc)
		c.Addresses += hour
		c.DayAddresses += day
	}
}

// countBans adds bans to the counts of the hours they start in.
func (g *Guard) countBans(bans []*store.Ban) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range bans {
		g.hour(b.Start).Bans++
	}
}

// hour returns the counts of at's hour. g.mu is held.
func (g *Guard) hour(at time.Time) *store.Counts {
	h := at.Truncate(time.Hour)
	c := g.counts[h]
	if c == nil {
		c = &store.Counts{}
		g.counts[h] = c
	}
	return c
}

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
	g.mu.Lock()
	for h, c := range g.counts {
		var cp store.Counts
		cp.Merge(*c)
		add(h, cp)
	}
	g.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(byHour)) {
		fn(time.Unix(k, 0).UTC(), *byHour[k])
	}
	return nil
}

// FlushCounts adds the counts gathered since the last flush to the store.
func (g *Guard) FlushCounts() error {
	g.flushMu.Lock()
	defer g.flushMu.Unlock()
	g.mu.Lock()
	counts := g.counts
	g.counts = map[time.Time]*store.Counts{}
	g.mu.Unlock()
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
