package api

import (
	"strings"
	"sync"
	"time"
)

// Event is one recent event as the API lists it.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Reason string    `json:"reason"`
	IP     string    `json:"ip,omitempty"`
	User   string    `json:"user,omitempty"`
}

// maxUser bounds a user name kept in the ring (attackers choose them).
const maxUser = 64

// Events keeps the last events in a ring: fixed memory, O(1) per event.
// The zero value keeps none; it is safe for concurrent use.
type Events struct {
	mu   sync.Mutex
	ring []Event
	next int // where the next event goes
	full bool
}

// NewEvents returns a ring of n events.
func NewEvents(n int) *Events { return &Events{ring: make([]Event, n)} }

// Add keeps e (its strings are copied: they may point into a reused
// buffer).
func (r *Events) Add(at time.Time, kind, reason, ip, user string) {
	if r == nil || len(r.ring) == 0 {
		return
	}
	if len(user) > maxUser {
		user = user[:maxUser]
	}
	e := Event{Time: at, Kind: kind, Reason: reason, IP: ip, User: strings.Clone(user)}
	r.mu.Lock()
	r.ring[r.next] = e
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Since returns the latest limit events at or after since, newest first.
func (r *Events) Since(since time.Time, limit int) []Event {
	out := []Event{}
	if r == nil {
		return out
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	for i := 0; i < n && len(out) < limit; i++ {
		e := r.ring[(r.next-1-i+len(r.ring))%len(r.ring)]
		if e.Time.Before(since) {
			continue // events of merged files may come out of order
		}
		out = append(out, e)
	}
	return out
}
