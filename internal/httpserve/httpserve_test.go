package httpserve_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sshguard-go/internal/httpserve"
	"sshguard-go/internal/testkit"
)

// testLimits are short enough for a test to see each one pass.
var testLimits = httpserve.Limits{ReadHeader: 2 * time.Second, Read: 2 * time.Second, Write: 2 * time.Second, Idle: 2 * time.Second,
	MaxHeaderBytes: 4 << 10, MaxConns: 16, MaxRequests: 4, Grace: time.Second}

// big is larger than any kernel keeps for a client that reads nothing.
var big = strings.Repeat("0123456789abcdef", 1<<19) // 8 MiB

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) })
	return mux
}

// serve serves h with lim on l until the test ends.
func serve(t *testing.T, l net.Listener, s httpserve.Server) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, l) }()
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(s.Limits.Grace + 5*time.Second):
			return fmt.Errorf("Serve did not return within its grace (%v) and 5 s", s.Limits.Grace)
		}
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// get asks url on a connection of its own.
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func fresh() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestSlowClientsTCP(t *testing.T) {
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: handler(), Limits: testLimits})
	url := "http://" + l.Addr().String()
	testkit.HoldsNoServer(t, testkit.SlowTarget{Network: "tcp", Addr: l.Addr().String(), Limits: testLimits,
		Request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Big: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
		Normal: func() error {
			code, body, err := get(fresh(), url+"/")
			if err == nil && (code != 200 || body != "ok\n") {
				err = fmt.Errorf("%d %q", code, body)
			}
			return err
		}})
}

func TestSlowClientsUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, l, httpserve.Server{Handler: handler(), Limits: testLimits})
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}}}
	testkit.HoldsNoServer(t, testkit.SlowTarget{Network: "unix", Addr: path, Limits: testLimits,
		Request: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", Big: "GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
		Normal: func() error {
			code, _, err := get(c, "http://unix/")
			if err == nil && code != 200 {
				err = fmt.Errorf("%d", code)
			}
			return err
		}})
}

// blocking is a handler that says when it starts and answers when told.
type blocking struct {
	entered chan struct{}
	release chan struct{}
	first   bool // write a first byte before waiting
}

func newBlocking(first bool) *blocking {
	return &blocking{entered: make(chan struct{}, 100), release: make(chan struct{}), first: first}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wait" {
		io.WriteString(w, "ok\n")
		return
	}
	if b.first {
		io.WriteString(w, "working ")
		http.NewResponseController(w).Flush()
	}
	b.entered <- struct{}{}
	<-b.release
	io.WriteString(w, "done\n")
}

func waitEntered(t *testing.T, b *blocking, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-b.entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d requests reached the handler", i, n)
		}
	}
}

// At most MaxRequests are worked on at once; one more is answered 503 at
// once (Queue 0), and is served when a place frees.
func TestRequestCap(t *testing.T) {
	lim := testLimits
	lim.MaxRequests = 2
	b := newBlocking(false)
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: b, Limits: lim})
	url := "http://" + l.Addr().String()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, body, err := get(fresh(), url+"/wait")
			if err == nil && body != "done\n" {
				err = fmt.Errorf("%q", body)
			}
			errs <- err
		}()
	}
	waitEntered(t, b, 2)
	resp, err := fresh().Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("a third request while two are worked on: %d, Retry-After %q; want 503, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(b.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if code, _, err := get(fresh(), url+"/"); err != nil || code != 200 {
		t.Fatalf("once the two are answered: %d %v", code, err)
	}
}

// A request waits up to Queue for its place.
func TestRequestQueue(t *testing.T) {
	lim := testLimits
	lim.MaxRequests, lim.Queue = 1, time.Minute
	b := newBlocking(false)
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: b, Limits: lim})
	url := "http://" + l.Addr().String()
	first := make(chan error, 1)
	go func() { _, _, err := get(fresh(), url+"/wait"); first <- err }()
	waitEntered(t, b, 1)
	second := make(chan string, 1)
	go func() {
		code, body, err := get(fresh(), url+"/")
		second <- fmt.Sprint(code, " ", strings.TrimSpace(body), " ", err)
	}()
	select {
	case s := <-second:
		t.Fatalf("the second request was answered while the first held the one place: %s", s)
	default:
	}
	close(b.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if s := <-second; s != "200 ok <nil>" {
		t.Fatalf("the second request, once the place freed: %s", s)
	}
}

// A handler's first byte of answer frees its place: a client reading
// slowly holds a connection (bounded by Write and MaxConns), never a
// place among the requests worked on.
func TestAnswerFreesItsPlace(t *testing.T) {
	lim := testLimits
	lim.MaxRequests = 1
	b := newBlocking(true)
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: b, Limits: lim})
	url := "http://" + l.Addr().String()
	go get(fresh(), url+"/wait")
	waitEntered(t, b, 1)
	if code, _, err := get(fresh(), url+"/"); err != nil || code != 200 {
		t.Fatalf("beside a handler that has begun its answer: %d %v", code, err)
	}
	close(b.release)
}

// At the cap, with a handler at work on every connection, a new one is
// closed at once; none that is worked on is displaced.
func TestCapAllBusy(t *testing.T) {
	lim := testLimits
	lim.MaxConns, lim.MaxRequests = 2, 2
	b := newBlocking(false)
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: b, Limits: lim})
	url := "http://" + l.Addr().String()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, body, err := get(fresh(), url+"/wait")
			if err == nil && body != "done\n" {
				err = fmt.Errorf("%q", body)
			}
			errs <- err
		}()
	}
	waitEntered(t, b, 2)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	n, err := c.Read(make([]byte, 100))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a third connection while both are worked on: read %d bytes, %v; want it closed unanswered", n, err)
	}
	close(b.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a request worked on at the cap: %v", err)
		}
	}
}

// At the cap the connection that has waited longest on its client is the
// one displaced: here the idle one, not the newer one still to send.
func TestCapDisplacesLongestWaiting(t *testing.T) {
	lim := testLimits
	lim.MaxConns = 2
	l := listenTCP(t)
	serve(t, l, httpserve.Server{Handler: handler(), Limits: lim})
	idle, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprint(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	quiet, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	// quiet is open (counted) once a request on a third connection has
	// displaced one of the two.
	if code, _, err := get(fresh(), "http://"+l.Addr().String()+"/"); err != nil || code != 200 {
		t.Fatalf("a third client at the cap: %d %v", code, err)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the idle connection, longest waiting: %v, want it closed (EOF)", err)
	}
	fmt.Fprint(quiet, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	quiet.SetReadDeadline(time.Now().Add(10 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(quiet), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the newer connection, still to send: %v, want it kept and answered", err)
	}
}

// When the context ends, a request in progress is answered within the
// grace and Serve returns nil; one that outlasts it is cut off and Serve
// returns all the same.
func TestShutdown(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprint("finishes=", finish), func(t *testing.T) {
			b := newBlocking(false)
			l := listenTCP(t)
			lim := testLimits
			lim.Grace = time.Second
			if finish {
				lim.Grace = time.Minute
			}
			stop := serve(t, l, httpserve.Server{Handler: b, Limits: lim})
			res := make(chan string, 1)
			go func() {
				code, body, err := get(fresh(), "http://"+l.Addr().String()+"/wait")
				res <- fmt.Sprint(code, " ", strings.TrimSpace(body), " ", err != nil)
			}()
			waitEntered(t, b, 1)
			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			testkit.Eventually(t, 5*time.Second, "the listener closed", func() (bool, string) {
				c, err := net.Dial("tcp", l.Addr().String())
				if err == nil {
					c.Close()
				}
				return err != nil, "still taking connections"
			})
			if finish {
				close(b.release)
				if s := <-res; s != "200 done false" {
					t.Fatalf("the request in progress: %s", s)
				}
				if err := <-stopped; err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
			if s := <-res; !strings.HasSuffix(s, "true") {
				t.Fatalf("a request outlasting the grace: %s, want it cut off", s)
			}
			close(b.release)
		})
	}
}

// Over TLS: a connection that never begins its handshake is closed after
// ReadHeader while a normal client is served, and HTTP/2 is never
// negotiated even when the configuration offers it.
func TestTLS(t *testing.T) {
	ca := testkit.NewCA(t, "test CA")
	pair := ca.Issue(t, "127.0.0.1", t.TempDir(), "server")
	cert, err := tls.LoadX509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		t.Fatal(err)
	}
	l := listenTCP(t)
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	serve(t, l, httpserve.Server{Handler: handler(), Limits: testLimits, TLS: tc})
	silent, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	opened := time.Now()
	c := ca.Client(t, nil)
	c.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	resp, err := c.Get("https://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
		t.Fatalf("served %s, ALPN %q: want HTTP/1.1 only", resp.Proto, resp.TLS.NegotiatedProtocol)
	}
	silent.SetReadDeadline(time.Now().Add(testLimits.ReadHeader + 5*time.Second))
	if _, err := silent.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a connection that never begins its handshake: %v, want it closed (EOF)", err)
	}
	if d := time.Since(opened); d < testLimits.ReadHeader*9/10 {
		t.Fatalf("closed after %v, before ReadHeader (%v)", d, testLimits.ReadHeader)
	}
}

func TestLimitsMustBeSet(t *testing.T) {
	lim := testLimits
	lim.Write = 0
	err := httpserve.Server{Handler: handler(), Limits: lim}.Serve(context.Background(), listenTCP(t))
	if err == nil || !strings.Contains(err.Error(), "Write") {
		t.Fatalf("Serve with no write timeout: %v, want an error naming it", err)
	}
}
