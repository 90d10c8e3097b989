package report

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"runtime"
	"slices"
	"sync"

	"sshguard-go/internal/detect"
)

// Collector summarises what Inputs.Scan reads, split by client into
// shards, one per core, which share no client: they are sorted at once
// and merged. With one scanner, a worker per shard counts: the scanner
// hands them records in batches and goes on parsing, so one input is
// summarised on every core. With inputs read at once (-j), each input's
// scanner counts into shards of its own; at the end each shard is merged
// across the inputs in input order (the shards at once), so that the users
// of a client stay in a fixed order (first seen in the inputs as given).
type Collector struct {
	window  Window
	shards  []Summary
	in      []chan []event
	workers sync.WaitGroup
	feeder  *feeder

	mu       sync.Mutex
	perInput map[int][]Summary // with inputs read at once: each input's shards
}

// batchSize is how many events a scanner gathers for a worker before
// handing them over.
const batchSize = 512

var hostSeed = maphash.MakeSeed()

// NewCollector starts a Collector of the events in w for Inputs that read
// jobs inputs at once: with more than one, a Summary per input; else a
// worker per core (none on one core: the scanner counts itself).
func NewCollector(w Window, jobs int) *Collector {
	if jobs > 1 {
		return &Collector{window: w, perInput: map[int][]Summary{}}
	}
	n := runtime.GOMAXPROCS(0)
	if n == 1 {
		n = 0
	}
	c := &Collector{window: w, shards: make([]Summary, max(n, 1)), in: make([]chan []event, n)}
	for i := range c.in {
		c.in[i] = make(chan []event, 8)
		c.workers.Go(func() {
			for batch := range c.in[i] {
				for _, e := range batch {
					c.shards[i].add(e)
				}
			}
		})
	}
	return c
}

// EmitFor returns the function that counts the records of input i
// (Inputs.Scan's emitFor).
func (c *Collector) EmitFor(i int) func(*detect.Record) {
	if c.perInput != nil {
		shards := make([]Summary, runtime.GOMAXPROCS(0))
		c.mu.Lock()
		c.perInput[i] = shards
		c.mu.Unlock()
		return func(r *detect.Record) {
			if k, ok := shardOf(r, len(shards)); ok && c.window.Holds(r.Time) {
				shards[k].add(eventOf(r))
			}
		}
	}
	if c.feeder != nil {
		panic("report: a Collector for one scanner asked for a second")
	}
	if len(c.in) == 0 {
		s := &c.shards[0]
		return func(r *detect.Record) {
			if c.window.Holds(r.Time) {
				s.add(eventOf(r))
			}
		}
	}
	c.feeder = &feeder{c: c, batches: make([][]event, len(c.in))}
	return c.feeder.add
}

// feeder gathers one scanner's events by shard.
type feeder struct {
	c       *Collector
	batches [][]event
}

func (f *feeder) add(r *detect.Record) {
	if !f.c.window.Holds(r.Time) {
		return
	}
	i, ok := shardOf(r, len(f.batches))
	if !ok {
		return
	}
	if f.batches[i] == nil {
		f.batches[i] = make([]event, 0, batchSize) // a new one: the worker may still read the last
	}
	f.batches[i] = append(f.batches[i], eventOf(r))
	if len(f.batches[i]) == batchSize {
		f.c.in[i] <- f.batches[i]
		f.batches[i] = nil
	}
}

// shardOf is the shard of n that counts r's client (false: r has none).
func shardOf(r *detect.Record, n int) (int, bool) {
	switch {
	case r.Addr.IsValid():
		b := r.Addr.As16()
		h := binary.BigEndian.Uint64(b[:8]) ^ binary.BigEndian.Uint64(b[8:])
		return int((h * 0x9E3779B97F4A7C15 >> 32) % uint64(n)), true // Fibonacci hashing: every bit counts
	case r.ClientHost != "":
		return int(maphash.String(hostSeed, r.ClientHost) % uint64(n)), true
	}
	return 0, false
}

// Sorted waits for the counting to end and returns the clients in
// Summary.Sorted's order. Call it once, after the scanners are done.
func (c *Collector) Sorted() []*Client {
	var wg sync.WaitGroup
	if c.perInput != nil {
		inputs := slices.Sorted(maps.Keys(c.perInput))
		c.shards = make([]Summary, runtime.GOMAXPROCS(0))
		for k := range c.shards {
			wg.Go(func() {
				for n, i := range inputs {
					if n == 0 {
						c.shards[k] = c.perInput[i][k] // the first as it is: no copy
						continue
					}
					c.shards[k].Merge(&c.perInput[i][k])
				}
			})
		}
		wg.Wait()
	}
	if c.feeder != nil {
		for i, b := range c.feeder.batches {
			if len(b) > 0 {
				c.in[i] <- b
			}
		}
	}
	for _, ch := range c.in {
		close(ch)
	}
	c.workers.Wait()
	runs := make([][]key, len(c.shards))
	for i := range c.shards {
		wg.Go(func() {
			runs[i] = c.shards[i].keys()
			slices.SortFunc(runs[i], compareKeys)
		})
	}
	wg.Wait()
	for len(runs) > 1 { // merged in pairs, the pairs at once
		next := make([][]key, (len(runs)+1)/2)
		for i := range next {
			if 2*i+1 == len(runs) {
				next[i] = runs[2*i]
				continue
			}
			wg.Go(func() { next[i] = mergeKeys(runs[2*i], runs[2*i+1]) })
		}
		wg.Wait()
		runs = next
	}
	return clients(runs[0])
}

// mergeKeys merges two sorted runs.
func mergeKeys(a, b []key) []key {
	out := make([]key, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if compareKeys(b[0], a[0]) < 0 {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}
