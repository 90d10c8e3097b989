package engine

import (
	"sync"
	"sync/atomic"
)

// prioLock is a mutex with two kinds of taker besides the plain one: an
// urgent taker (the log's detection, whose ban an attacker is waiting
// on) and a taker that steps aside (a peer's batch, an archive's, taken a
// piece at a time). One that steps aside takes the lock only once no
// urgent taker waits for it or holds it, or one has let go since it came
// (under a flood of urgent takers, one piece goes in after each); between
// two pieces it checks Urgent and lets go when it is true.
//
// A plain sync.Mutex gives no such order: the holder that lets go and
// takes the lock again at once gets it before the waiter it woke, which
// waits for the whole batch (or for the mutex's starvation mode, after
// a millisecond).
type prioLock struct {
	sync.Mutex // Lock and Unlock: a plain taker, and the unlock of one that stepped aside

	urgent atomic.Int32 // urgent takers waiting for the lock or holding it
	mu     sync.Mutex   // guards gen and done's waits
	done   sync.Cond    // an urgent taker let go (on mu)
	gen    uint64       // how many have
}

// LockUrgent takes the lock before any taker that steps aside.
func (l *prioLock) LockUrgent() {
	l.urgent.Add(1)
	l.Lock()
}

// UnlockUrgent lets go of a lock taken with LockUrgent.
func (l *prioLock) UnlockUrgent() {
	l.Unlock()
	l.mu.Lock()
	l.urgent.Add(-1)
	l.gen++
	l.done.Broadcast()
	l.mu.Unlock()
}

// LockAside takes the lock once no urgent taker waits, or one has let go
// since the call. The caller lets go with Unlock.
func (l *prioLock) LockAside() {
	if l.urgent.Load() > 0 {
		l.mu.Lock()
		if l.done.L == nil {
			l.done.L = &l.mu
		}
		for gen := l.gen; l.urgent.Load() > 0 && l.gen == gen; {
			l.done.Wait()
		}
		l.mu.Unlock()
	}
	l.Lock()
}

// Urgent reports whether an urgent taker waits for the lock (or holds
// it): one that stepped aside lets go between two pieces then.
func (l *prioLock) Urgent() bool { return l.urgent.Load() > 0 }
