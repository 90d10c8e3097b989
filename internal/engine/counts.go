package engine

import (
	"errors"
	"time"

	"sshguard-go/internal/detect"
	"sshguard-go/internal/store"
)

// count adds r to the counts of its hour. g.mu is held.
func (g *Guard) count(r *detect.Record, weight float64) {
	at := r.Time
	if at.IsZero() {
		at = g.now()
	}
	h := at.Truncate(time.Hour)
	c := g.counts[h]
	if c == nil {
		c = &store.Counts{}
		g.counts[h] = c
	}
	addr := ""
	if r.Addr.IsValid() {
		addr = r.Addr.String()
	}
	c.Add(r.Kind.String(), addr, r.User, weight)
}

// FlushCounts adds the counts gathered since the last flush to the store.
func (g *Guard) FlushCounts() error {
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
