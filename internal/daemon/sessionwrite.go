package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"sshguard-go/internal/store"
)

// sessionWriter writes the audit trail's session records in groups: the
// newest record of each session that changed, every 100 ms (or at once
// when 512 wait), in one transaction. A login and its session's end used
// to cost a disk sync each: a backlog of a month's logins took minutes.
type sessionWriter struct {
	db  *store.DB
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]store.SessionPut // by key: the newest
	kick    chan struct{}
}

const (
	sessionFlushEvery = 100 * time.Millisecond
	sessionBatch      = 512   // a group this large goes at once
	sessionMaxPending = 10000 // past this, the writer writes before it takes more
)

func newSessionWriter(db *store.DB, log *slog.Logger) *sessionWriter {
	return &sessionWriter{db: db, log: log, pending: map[string]store.SessionPut{}, kick: make(chan struct{}, 1)}
}

// put takes a session's record (its newest replaces one still waiting).
func (w *sessionWriter) put(key, value []byte, active bool) {
	w.mu.Lock()
	w.pending[string(key)] = store.SessionPut{Key: key, Value: value, Active: active}
	n := len(w.pending)
	w.mu.Unlock()
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
	w.mu.Lock()
	if len(w.pending) == 0 {
		w.mu.Unlock()
		return
	}
	ps := make([]store.SessionPut, 0, len(w.pending))
	for _, p := range w.pending {
		ps = append(ps, p)
	}
	clear(w.pending)
	w.mu.Unlock()
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
