package testkit

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/httpserve"
)

// SlowTarget is a server HoldsNoServer sets slow clients on.
type SlowTarget struct {
	Network, Addr string           // where it listens, plain HTTP ("tcp" or "unix")
	Limits        httpserve.Limits // what it serves with
	// Request is a request it answers, as sent (its line and headers, and
	// the blank line after them).
	Request string
	// Big is a request whose answer is larger than what the kernels keep
	// for a client that reads nothing (megabytes); "": it has none.
	Big string
	// Normal asks it as a normal client does, on a connection of its own,
	// and returns an error unless it was answered.
	Normal func() error
}

// slack is how long past a timeout a connection may take to be closed: a
// handler's work counts against its write timeout, and a test machine
// running the race detector under load may take seconds for it.
const slack = 10 * time.Second

// HoldsNoServer sets three kinds of slow client on tg in turn: many
// connections sending their headers a byte at a time, one that asks for
// tg.Big and never reads it, and twice tg.Limits.MaxConns connections
// that send nothing after half as many idle ones. During each a normal
// client must be answered within half the shorter of the ReadHeader and
// Write limits (it does not wait for the slow ones' timeouts), and every
// slow connection must be closed by the server once its timeout has
// passed (or at once, displaced at the cap).
func HoldsNoServer(t *testing.T, tg SlowTarget) {
	t.Run("slow headers", func(t *testing.T) { slowHeaders(t, tg) })
	if tg.Big != "" {
		t.Run("unread answer", func(t *testing.T) { unreadAnswer(t, tg) })
	}
	t.Run("over the cap", func(t *testing.T) { overTheCap(t, tg) })
}

// Hold opens slow connections on tg, left open until the test ends or
// the server's timeouts close them: half its cap sending a request's first
// line and no more, and, when tg.Big is set, one never reading that answer.
func Hold(t *testing.T, tg SlowTarget) {
	t.Helper()
	for range tg.Limits.MaxConns / 2 {
		fmt.Fprint(dial(t, tg, false), "GET / HTTP/1.1\r\nHost: slow\r\n")
	}
	if tg.Big != "" {
		io.WriteString(dial(t, tg, true), tg.Big)
	}
}

// slowHeaders: MaxConns/2 connections trickle a request's headers; each
// is closed unanswered once ReadHeader has passed since it was opened,
// however often it sent a byte.
func slowHeaders(t *testing.T, tg SlowTarget) {
	stop := make(chan struct{})
	defer close(stop)
	var ws []*watched
	for range tg.Limits.MaxConns / 2 {
		c := dial(t, tg, false)
		w := watch(c)
		ws = append(ws, w)
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: slow\r\n")
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte("X")); err != nil {
						return
					}
				}
			}
		}()
	}
	normalWithin(t, tg)
	waitClosed(t, ws, tg.Limits.ReadHeader+slack)
	for i, w := range ws {
		if d := w.at.Sub(w.opened); d < tg.Limits.ReadHeader*9/10 {
			t.Errorf("slow connection %d closed after %v, before the header timeout (%v)", i, d, tg.Limits.ReadHeader)
		}
		if strings.HasPrefix(w.head, "HTTP/1.1 2") {
			t.Errorf("slow connection %d was answered %q: its request was never finished", i, w.head)
		}
	}
}

// unreadAnswer: a client asks for a big answer and reads nothing, with the
// smallest buffers it can have; the server gives up on it once Write has
// passed. Seen from the client: a byte it sends then (one that no server
// would take for a request) is refused, since the server's end is closed.
func unreadAnswer(t *testing.T, tg SlowTarget) {
	c := dial(t, tg, true)
	sent := time.Now()
	if _, err := io.WriteString(c, tg.Big); err != nil {
		t.Fatal(err)
	}
	normalWithin(t, tg)
	Eventually(t, tg.Limits.Write+slack, "the server closes the connection of a client that reads nothing", func() (bool, string) {
		_, err := c.Write([]byte{0})
		return err != nil, "still open"
	})
	if d := time.Since(sent); d < tg.Limits.Write*9/10 {
		t.Errorf("the server closed the connection after %v, before the write timeout (%v): was the answer smaller than the buffers?", d, tg.Limits.Write)
	}
}

// overTheCap: MaxConns/2 idle connections, then 2*MaxConns that send
// nothing: at most MaxConns stay open (the others are closed at once),
// a normal client is answered, and the rest are closed after their
// timeouts.
func overTheCap(t *testing.T, tg SlowTarget) {
	var ws []*watched
	for range tg.Limits.MaxConns / 2 {
		c := dial(t, tg, false)
		if _, err := io.WriteString(c, tg.Request); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		ws = append(ws, watch(c))
	}
	for range 2 * tg.Limits.MaxConns {
		ws = append(ws, watch(dial(t, tg, false)))
	}
	// Those over the cap are closed at once, not after their timeouts.
	Eventually(t, bound(tg), fmt.Sprintf("at most %d connections open", tg.Limits.MaxConns), func() (bool, string) {
		n := openCount(ws)
		return n <= tg.Limits.MaxConns, fmt.Sprintf("%d of %d open", n, len(ws))
	})
	normalWithin(t, tg)
	waitClosed(t, ws, max(tg.Limits.ReadHeader, tg.Limits.Idle)+slack)
}

// normalWithin fails t unless tg.Normal answers within half the shorter
// of ReadHeader and Write.
func normalWithin(t *testing.T, tg SlowTarget) {
	t.Helper()
	bound := bound(tg)
	start := time.Now()
	if err := tg.Normal(); err != nil {
		t.Fatalf("a normal client beside the slow ones: %v (after %v)", err, time.Since(start))
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("a normal client beside the slow ones was answered after %v, over %v", d, bound)
	}
}

// bound is how soon a normal client is answered beside slow ones, and
// connections over the cap are closed: half the shorter of ReadHeader and
// Write, well before any slow connection's timeout.
func bound(tg SlowTarget) time.Duration { return min(tg.Limits.ReadHeader, tg.Limits.Write) / 2 }

// dial opens a connection to tg, closed when the test ends; small makes
// its buffers the smallest the kernel allows (a receive buffer of 1 KiB,
// TCP segments of 536 bytes, which keep the server's send buffer small
// too), as a client that means to hold an answer would.
func dial(t *testing.T, tg SlowTarget, small bool) net.Conn {
	t.Helper()
	var d net.Dialer
	if small {
		d.Control = func(network, _ string, rc syscall.RawConn) error {
			var err error
			rc.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
				if err == nil && network != "unix" {
					err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
				}
			})
			return err
		}
	}
	c, err := d.Dial(tg.Network, tg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// watched is a connection read until the server closes it.
type watched struct {
	opened, at time.Time // at: when it was closed
	head       string    // what the server sent first (a 400 at most)
	closed     chan struct{}
}

func watch(c net.Conn) *watched {
	w := &watched{opened: time.Now(), closed: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if w.head == "" {
				w.head = string(buf[:min(n, 40)])
			}
			if err != nil {
				break
			}
		}
		w.at = time.Now()
		close(w.closed)
	}()
	return w
}

func openCount(ws []*watched) int {
	n := 0
	for _, w := range ws {
		select {
		case <-w.closed:
		default:
			n++
		}
	}
	return n
}

// waitClosed fails t unless the server closes every one of ws within
// timeout.
func waitClosed(t *testing.T, ws []*watched, timeout time.Duration) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, w := range ws {
		select {
		case <-w.closed:
		case <-deadline.C:
			t.Fatalf("after %v, %d of %d slow connections are still open", timeout, openCount(ws), len(ws))
		}
	}
}
