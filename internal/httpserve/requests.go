package httpserve

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// limitRequests serves h at most lim.MaxRequests requests at a time (from
// the handler's start to its first byte of answer); one more waits up to
// lim.Queue for its turn, or until ctx (the server's) ends, then is
// answered 503.
func limitRequests(ctx context.Context, h http.Handler, lim Limits) http.Handler {
	sem := make(chan struct{}, lim.MaxRequests)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acquire(ctx, r, sem, lim.Queue) {
			if r.Context().Err() != nil {
				return // the client has gone
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("busy: %d requests are being answered; try again", cap(sem)), http.StatusServiceUnavailable)
			return
		}
		c, _ := r.Context().Value(connKey{}).(*conn)
		a := &answer{ResponseWriter: w, c: c, sem: sem}
		defer a.release()
		h.ServeHTTP(a, r)
	})
}

// acquire takes a place in sem, waiting up to wait for one.
func acquire(ctx context.Context, r *http.Request, sem chan struct{}, wait time.Duration) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-r.Context().Done():
	}
	return false
}

// answer is a handler's ResponseWriter: its first byte of answer (or its
// return) ends the work, frees its place among the requests and leaves its
// connection waiting on the client, which reads it within Limits.Write.
type answer struct {
	http.ResponseWriter
	c        *conn
	sem      chan struct{}
	released bool
}

func (a *answer) release() {
	if a.released {
		return
	}
	a.released = true
	<-a.sem
	if a.c != nil {
		a.c.setBusy(false)
	}
}

func (a *answer) Write(p []byte) (int, error) {
	a.release()
	return a.ResponseWriter.Write(p)
}

// Flush sends what is buffered (http.Flusher).
func (a *answer) Flush() {
	a.release()
	http.NewResponseController(a.ResponseWriter).Flush()
}

// Unwrap is the ResponseWriter under a, for http.ResponseController.
func (a *answer) Unwrap() http.ResponseWriter { return a.ResponseWriter }
