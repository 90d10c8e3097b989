package alert

import (
	"container/heap"
	"slices"
	"sync"
	"time"
)

// item is one pending delivery of a channel, as its queue knows it: the
// outbox id and when it may be tried (zero: at once).
type item struct {
	id   uint64
	next time.Time
}

// queue is one channel's pending deliveries of one kind (bans, or the
// rest): ready ones by id, and those waiting for a retry by time. A pass
// finds its work here, without reading the outbox; the records are read
// only to be sent. It is safe for concurrent use.
type queue struct {
	mu      sync.Mutex
	ready   []uint64 // due, ascending
	waiting waitHeap // backing off, earliest first
	ids     map[uint64]bool
}

func newQueue() *queue { return &queue{ids: map[uint64]bool{}} }

// add puts it in the queue, unless its id is already there.
func (q *queue) add(it item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ids[it.id] {
		return
	}
	q.ids[it.id] = true
	if it.next.IsZero() {
		q.insertReady(it.id)
		return
	}
	heap.Push(&q.waiting, it)
}

func (q *queue) insertReady(id uint64) {
	if n := len(q.ready); n == 0 || q.ready[n-1] < id {
		q.ready = append(q.ready, id) // the common case: a new record
		return
	}
	i, _ := slices.BinarySearch(q.ready, id)
	q.ready = slices.Insert(q.ready, i, id)
}

// take removes and returns the ids due at now (every one if all), oldest
// first; the caller settles or puts back each.
func (q *queue) take(now time.Time, all bool) []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.waiting.Len() > 0 && (all || !q.waiting[0].next.After(now)) {
		q.insertReady(heap.Pop(&q.waiting).(item).id)
	}
	out := q.ready
	q.ready = nil
	for _, id := range out {
		delete(q.ids, id)
	}
	return out
}

// putBack returns taken ids that were not tried.
func (q *queue) putBack(ids []uint64) {
	for _, id := range ids {
		q.add(item{id: id})
	}
}

// clear empties the queue and returns what it held.
func (q *queue) clear() []uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]uint64, 0, len(q.ids))
	for id := range q.ids {
		out = append(out, id)
	}
	q.ready, q.waiting, q.ids = nil, nil, map[uint64]bool{}
	slices.Sort(out)
	return out
}

// waitHeap orders items by next, then id.
type waitHeap []item

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if !h[i].next.Equal(h[j].next) {
		return h[i].next.Before(h[j].next)
	}
	return h[i].id < h[j].id
}
func (h waitHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *waitHeap) Push(x any)   { *h = append(*h, x.(item)) }
func (h *waitHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
