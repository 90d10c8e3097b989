package report

import (
	"sync"

	"sshguard-go/internal/detect"
)

// Collector summarises what Inputs.Scan reads into one Summary, counted by
// a goroutine of its own that the scanners hand their events in batches
// (a stage beside each scanner's two). It counts the inputs in input
// order, whatever order they are read in, so that the users of a client
// stay in a fixed order (first seen in the inputs as given): inputs read
// at once (-j N) each have a queue, and an input starts only once the
// counting has reached the input N before it, so that at most N inputs'
// batches wait in memory.
type Collector struct {
	s       *Summary
	queues  []chan []event // one per input read at once; one for inputs read one after the other
	batches [][]event      // the batch each queue's input is filling
	free    chan []event   // batches counted, for reuse
	counted chan struct{}  // closed when every queue is counted

	mu      sync.Mutex
	reached int        // the queue being counted
	moved   *sync.Cond // signalled when reached moves
	ahead   int        // how many inputs may be read beyond the one being counted
}

// batchSize is how many events a scanner gathers before handing them
// over; queueBatches how many an input's queue holds (32,768 events:
// about 7 MB with the lines they point into).
const (
	batchSize    = 512
	queueBatches = 64
)

// NewCollector returns a Collector of the events in w for Inputs that
// read jobs of their inputs inputs at once.
func NewCollector(w Window, jobs, inputs int) *Collector {
	n, depth := 1, 8
	if jobs > 1 {
		n, depth = max(inputs, 1), queueBatches
	}
	c := &Collector{s: &Summary{Window: w}, queues: make([]chan []event, n), batches: make([][]event, n),
		free: make(chan []event, 2*depth), counted: make(chan struct{}), ahead: jobs - 1}
	c.moved = sync.NewCond(&c.mu)
	for i := range c.queues {
		c.queues[i] = make(chan []event, depth)
	}
	go func() {
		defer close(c.counted)
		for i, q := range c.queues {
			c.mu.Lock()
			c.reached = i
			c.moved.Broadcast()
			c.mu.Unlock()
			for b := range q {
				for k := range b {
					c.s.add(&b[k])
				}
				select {
				case c.free <- b[:0]:
				default:
				}
			}
		}
	}()
	return c
}

// EmitFor returns the function that counts the records of input i
// (Inputs.Scan's emitFor); with inputs read at once it first waits until
// the counting is at most c.ahead inputs behind.
func (c *Collector) EmitFor(i int) func(*detect.Record) {
	if len(c.queues) == 1 {
		i = 0
	} else {
		c.mu.Lock()
		for c.reached < i-c.ahead {
			c.moved.Wait()
		}
		c.mu.Unlock()
	}
	return func(r *detect.Record) {
		if !c.s.Holds(r.Time) {
			return
		}
		b := c.batches[i]
		if b == nil {
			select {
			case b = <-c.free:
			default:
				b = make([]event, 0, batchSize)
			}
		}
		b = append(b, eventOf(r))
		if len(b) == batchSize {
			c.queues[i] <- b
			b = nil
		}
		c.batches[i] = b
	}
}

// Done tells c that input i is read (Inputs.Scan's done).
func (c *Collector) Done(i int) {
	if len(c.queues) > 1 {
		c.close(i)
	}
}

// close hands over queue i's last batch and closes it.
func (c *Collector) close(i int) {
	if len(c.batches[i]) > 0 {
		c.queues[i] <- c.batches[i]
	}
	c.batches[i] = nil
	close(c.queues[i])
}

// Sorted returns the clients in report order. Call it once, after the
// scanners are done.
func (c *Collector) Sorted() *List {
	if len(c.queues) == 1 {
		c.close(0)
	}
	<-c.counted
	return c.s.List()
}
