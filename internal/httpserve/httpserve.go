// Package httpserve serves HTTP until a context ends, within limits that
// keep a slow or hostile client from holding the server: timeouts on the
// request's headers, the whole request, the answer and an idle
// connection; a cap on the header's size, on the connections open at once
// and on the requests being worked on at once; and a bounded wait for the
// requests in progress when the context ends. Every server of sshguard-go
// (the control socket, the API, the metrics, fleet serve) is one Server
// with its own Limits.
//
// It imports nothing of ours, so that the control package (a leaf) and the
// API, the daemon and the fleet view can all use it.
package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"
)

// Limits bound what clients can hold of a server.
type Limits struct {
	// ReadHeader bounds the request line and headers, counted from the
	// connection's start (the TLS handshake included) or from the end of
	// the previous answer: a client sending them a byte at a time is cut
	// off when it passes, however often it sends.
	ReadHeader time.Duration
	// Read bounds the whole request, its body included.
	Read time.Duration
	// Write bounds the answer, from the end of the request's headers to
	// its last byte: the handler's work and the client's reading of it.
	// A client that does not read its answer is cut off when it passes.
	Write time.Duration
	// Idle bounds a kept-alive connection waiting for its next request.
	Idle time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxConns bounds the connections open at once. At the cap a new
	// connection displaces the one that has waited longest on its client
	// (still sending its headers, idle between requests, or having its
	// answer read); when a handler is at work on every one, the new
	// connection is closed at once.
	MaxConns int
	// MaxRequests bounds the requests being worked on at once: from the
	// handler's start to its first byte of answer (what happens after is
	// the client's reading, bounded by Write and MaxConns). One more waits
	// up to Queue for its turn, then is answered 503.
	MaxRequests int
	Queue       time.Duration
	// SendBuffer, when set, is the kernel's send buffer of each TCP
	// connection (the kernel doubles it): what a client that never reads
	// pins of the machine's memory, instead of the kernel's autotuned
	// megabytes. 0 leaves the kernel's.
	SendBuffer int
	// Grace is how long the requests in progress have to finish once the
	// context ends; their connections are then closed.
	Grace time.Duration
}

func (l Limits) check() error {
	for _, d := range []struct {
		name string
		v    int64
	}{
		{"ReadHeader", int64(l.ReadHeader)}, {"Read", int64(l.Read)}, {"Write", int64(l.Write)}, {"Idle", int64(l.Idle)},
		{"MaxHeaderBytes", int64(l.MaxHeaderBytes)}, {"MaxConns", int64(l.MaxConns)}, {"MaxRequests", int64(l.MaxRequests)},
		{"Grace", int64(l.Grace)},
	} {
		if d.v <= 0 {
			return fmt.Errorf("httpserve: Limits.%s is %d: every limit must be set", d.name, d.v)
		}
	}
	if l.Queue < 0 || l.SendBuffer < 0 {
		return fmt.Errorf("httpserve: Limits.Queue (%v) and SendBuffer (%d) may not be negative", l.Queue, l.SendBuffer)
	}
	return nil
}

// Server is an HTTP server and its limits.
type Server struct {
	Handler http.Handler
	Limits  Limits
	// TLS, when set, is the configuration connections are served with
	// (HTTP/1.1 only, as without it).
	TLS *tls.Config
	// ErrorLog receives net/http's complaints (a failed TLS handshake, an
	// accept error); nil: the log package's standard logger.
	ErrorLog *log.Logger
}

// Serve serves l until ctx ends, then stops taking connections, gives the
// requests in progress Limits.Grace to finish, closes every connection and
// returns nil. It returns an error when the limits are not all set or l
// fails; it closes l either way.
//
// Only HTTP/1.1 is served: one request at a time on a connection, so that
// the connection cap bounds the requests too.
func (s Server) Serve(ctx context.Context, l net.Listener) error {
	if err := s.Limits.check(); err != nil {
		l.Close()
		return err
	}
	g := newGate(l, s.Limits)
	var ln net.Listener = g
	if s.TLS != nil {
		tc := s.TLS.Clone()
		tc.NextProtos = []string{"http/1.1"}
		ln = tls.NewListener(g, tc) // over the gate: net/http sees the *tls.Conn it needs
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	srv := &http.Server{
		Handler:           limitRequests(ctx, s.Handler, s.Limits),
		ReadHeaderTimeout: s.Limits.ReadHeader,
		ReadTimeout:       s.Limits.Read,
		WriteTimeout:      s.Limits.Write,
		IdleTimeout:       s.Limits.Idle,
		MaxHeaderBytes:    s.Limits.MaxHeaderBytes,
		Protocols:         &protos,
		ConnState:         g.state,
		ConnContext:       g.context,
		ErrorLog:          s.ErrorLog,
	}
	stopped := make(chan struct{}) // Serve returned by itself
	shut := make(chan struct{})    // the shutdown is over
	go func() {
		defer close(shut)
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Limits.Grace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close() // the grace is over: the rest are cut off
		}
	}()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-shut
		return nil
	}
	close(stopped)
	srv.Close()
	return err
}

// Listen listens on the TCP address addr and serves it as s.Serve does;
// ready, when set, is told the address once it listens.
func (s Server) Listen(ctx context.Context, addr string, ready func(addr net.Addr)) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(l.Addr())
	}
	return s.Serve(ctx, l)
}
