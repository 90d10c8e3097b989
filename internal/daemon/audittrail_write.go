package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
)

// sessionWriter writes the audit trail's session records in groups: the
// newest record of each session that changed and the commands that came
// for it (appended as a chunk, never rewriting the record), every 100 ms
// (or at once when 512 sessions wait), in one transaction. A login and
// its session's end used to cost a disk sync each: a backlog of a month's
// logins took minutes.
type sessionWriter struct {
	db  *store.DB
	log *slog.Logger

	wmu     sync.Mutex // one flush at a time: the chunks of a session go in order
	mu      sync.Mutex
	pending map[string]*sessionPending // by key
	kick    chan struct{}
}

// sessionPending is what waits for one session: its newest record (nil:
// none), and the commands to append.
type sessionPending struct {
	put   store.SessionPut
	chunk *session.Chunk
}

const (
	sessionFlushEvery = 100 * time.Millisecond
	sessionBatch      = 512   // a group this large goes at once
	sessionMaxPending = 10000 // past this, the writer writes before it takes more
)

func newSessionWriter(db *store.DB, log *slog.Logger) *sessionWriter {
	return &sessionWriter{db: db, log: log, pending: map[string]*sessionPending{}, kick: make(chan struct{}, 1)}
}

// entry is what waits for key, made if need be. w.mu is held.
func (w *sessionWriter) entry(key []byte) *sessionPending {
	p := w.pending[string(key)]
	if p == nil {
		p = &sessionPending{put: store.SessionPut{Key: key}}
		w.pending[string(key)] = p
	}
	return p
}

// put takes a session's record (its newest replaces one still waiting).
func (w *sessionWriter) put(key, value []byte, active bool) {
	w.mu.Lock()
	p := w.entry(key)
	p.put.Value, p.put.Active = value, active
	n := len(w.pending)
	w.mu.Unlock()
	w.grew(n)
}

// command takes a command of the session of key, to append to its stored
// record (kept), or to count there as dropped (not kept).
func (w *sessionWriter) command(key []byte, c session.Command, kept bool) {
	w.mu.Lock()
	p := w.entry(key)
	if p.chunk == nil {
		p.chunk = &session.Chunk{}
	}
	if kept {
		p.chunk.Commands = append(p.chunk.Commands, c)
	} else {
		p.chunk.More++
		p.chunk.MoreBytes += c.Size()
	}
	n := len(w.pending)
	w.mu.Unlock()
	w.grew(n)
}

func (w *sessionWriter) grew(n int) {
	switch {
	case n >= sessionMaxPending:
		w.flush()
	case n >= sessionBatch:
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// flush writes what waits.
func (w *sessionWriter) flush() {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	waiting := w.pending
	w.pending = map[string]*sessionPending{}
	w.mu.Unlock()
	ps := make([]store.SessionPut, 0, len(waiting))
	for _, p := range waiting {
		if p.chunk != nil {
			p.put.Append = p.chunk.Marshal()
		}
		ps = append(ps, p.put)
	}
	if err := w.db.PutSessions(ps); err != nil {
		w.log.Error("store sessions", "sessions", len(ps), "err", err)
	}
}

// run writes every sessionFlushEvery until ctx ends, and what waits then.
func (w *sessionWriter) run(ctx context.Context) {
	tick := time.NewTicker(sessionFlushEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			w.flush()
			return
		case <-tick.C:
		case <-w.kick:
		}
		w.flush()
	}
}
