package httpserve

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// gate is a listener that keeps at most max connections open. At the cap
// a new connection displaces the open one that has waited longest on its
// client; when a handler is at work on every one, the new one is closed.
//
// A cap that made new connections wait in the kernel's queue instead
// would let a client holding the cap with connections that send nothing
// keep everyone else waiting for its timeouts, and the next batch of its
// connections queued behind them would hold them again; one that refused
// new connections would do the same faster. Here a new client gets in at
// once unless every connection is being worked on (at most MaxRequests of
// them, and those waiting up to Queue for their turn).
type gate struct {
	net.Listener
	max    int
	sndbuf int

	mu   sync.Mutex
	open map[*conn]struct{}
}

// conn is a connection the gate let in.
type conn struct {
	net.Conn
	g    *gate
	once sync.Once

	// Guarded by g.mu.
	busy  bool      // a handler is at work on it
	since time.Time // when it began to wait on its client
}

func newGate(l net.Listener, lim Limits) *gate {
	return &gate{Listener: l, max: lim.MaxConns, sndbuf: lim.SendBuffer, open: map[*conn]struct{}{}}
}

// Accept returns the next connection let in. One refused is closed here:
// it is no error of the listener's.
func (g *gate) Accept() (net.Conn, error) {
	for {
		nc, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if t, ok := nc.(*net.TCPConn); ok && g.sndbuf > 0 {
			t.SetWriteBuffer(g.sndbuf)
		}
		c := &conn{Conn: nc, g: g, since: time.Now()}
		if g.admit(c) {
			return c, nil
		}
		nc.Close()
	}
}

// admit counts c in, closing the connection it displaces at the cap; it
// reports false when there is none to displace.
func (g *gate) admit(c *conn) bool {
	g.mu.Lock()
	var victim *conn
	if len(g.open) >= g.max {
		for o := range g.open {
			if !o.busy && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim == nil {
			g.mu.Unlock()
			return false
		}
		delete(g.open, victim)
	}
	g.open[c] = struct{}{}
	g.mu.Unlock()
	if victim != nil {
		victim.Close()
	}
	return true
}

// Close closes the connection and counts it out.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.g.mu.Lock()
		delete(c.g.open, c)
		c.g.mu.Unlock()
	})
	return err
}

// setBusy says whether a handler is at work on c; when none is, c waits
// on its client from now.
func (c *conn) setBusy(busy bool) {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	if _, ok := c.g.open[c]; ok && c.busy != busy {
		c.busy = busy
		if !busy {
			c.since = time.Now()
		}
	}
}

// state follows net/http's view of a connection: a request read is work
// (until its handler answers, see answer), a connection between requests
// waits on its client, a hijacked one is no longer ours to displace.
func (g *gate) state(nc net.Conn, st http.ConnState) {
	c := unwrap(nc)
	if c == nil {
		return
	}
	switch st {
	case http.StateActive, http.StateHijacked:
		c.setBusy(true)
	case http.StateIdle:
		c.setBusy(false)
	}
}

type connKey struct{}

// context puts the connection in its requests' context, for answer.
func (g *gate) context(ctx context.Context, nc net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, unwrap(nc))
}

// unwrap is the gate's connection under nc (net/http sees the *tls.Conn
// over it), or nil.
func unwrap(nc net.Conn) *conn {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}
