package report

import (
	"hash/maphash"
	"maps"
	"runtime"
	"slices"
	"sync"

	"sshguard-go/internal/detect"
)

// Collector summarises what Inputs.Scan reads. Inputs read one after the
// other are counted into one Summary by a goroutine of its own, which the
// scanner hands its events in batches (the scanner goes on correlating:
// a third stage beside Scan's two). Inputs read at once (-j) are counted
// by each input's scanner into summaries of its own, one per core, split
// by client; at the end each shard is merged across the inputs in input
// order, the shards at once (so that the users of a client stay in a
// fixed order: first seen in the inputs as given), and the shards, which
// share no client, are put one after the other.
type Collector struct {
	window  Window
	one     *Summary // inputs read one after the other
	batch   []event
	full    chan []event
	free    chan []event
	counted chan struct{}

	mu       sync.Mutex
	perInput map[int][]Summary // inputs read at once: each one's shards
}

// batchSize is how many events the scanner gathers before handing them
// over.
const batchSize = 512

// NewCollector returns a Collector of the events in w for Inputs that
// read jobs inputs at once.
func NewCollector(w Window, jobs int) *Collector {
	if jobs > 1 {
		return &Collector{window: w, perInput: map[int][]Summary{}}
	}
	c := &Collector{window: w, one: &Summary{Window: w}, full: make(chan []event, 8), free: make(chan []event, 10), counted: make(chan struct{})}
	for range cap(c.free) {
		c.free <- make([]event, 0, batchSize)
	}
	c.batch = <-c.free
	go func() {
		defer close(c.counted)
		for b := range c.full {
			for k := range b {
				c.one.add(&b[k])
			}
			c.free <- b[:0]
		}
	}()
	return c
}

// EmitFor returns the function that counts the records of input i
// (Inputs.Scan's emitFor).
func (c *Collector) EmitFor(i int) func(*detect.Record) {
	if c.one != nil {
		return c.emit
	}
	shards := make([]Summary, runtime.GOMAXPROCS(0))
	for k := range shards {
		shards[k].Window = c.window
	}
	c.mu.Lock()
	c.perInput[i] = shards
	c.mu.Unlock()
	return func(r *detect.Record) {
		if k, ok := shardOf(r, len(shards)); ok {
			shards[k].Add(r)
		}
	}
}

var shardSeed = maphash.MakeSeed()

// shardOf is the shard of n that counts r's client (false: r has none).
func shardOf(r *detect.Record, n int) (int, bool) {
	switch {
	case r.Addr.IsValid():
		return int(maphash.Comparable(shardSeed, r.Addr) % uint64(n)), true
	case r.ClientHost != "":
		return int(maphash.String(shardSeed, r.ClientHost) % uint64(n)), true
	}
	return 0, false
}

func (c *Collector) emit(r *detect.Record) {
	if !c.window.Holds(r.Time) {
		return
	}
	c.batch = append(c.batch, eventOf(r))
	if len(c.batch) == batchSize {
		c.full <- c.batch
		c.batch = <-c.free
	}
}

// Sorted returns the clients in report order. Call it once, after the
// scanners are done.
func (c *Collector) Sorted() *List {
	if c.one != nil {
		c.full <- c.batch
		close(c.full)
		<-c.counted
		return c.one.List()
	}
	inputs := slices.Sorted(maps.Keys(c.perInput))
	merged := make([]*Summary, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for k := range merged {
		wg.Go(func() {
			s := &Summary{Window: c.window}
			for _, i := range inputs {
				if s.Len() == 0 {
					s = &c.perInput[i][k] // the first as it is: no copy
					continue
				}
				s.Merge(&c.perInput[i][k])
			}
			merged[k] = s
		})
	}
	wg.Wait()
	all := merged[0]
	for _, s := range merged[1:] {
		all.concat(s)
	}
	return all.List()
}
