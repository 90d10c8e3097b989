package api

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// Answers are made one at a time: a second request waits while the first
// is being made, and is answered once it is.
func TestAnswersOneAtATime(t *testing.T) {
	release := make(chan struct{})
	free := sync.OnceFunc(func() { close(release) })
	var active, most, calls atomic.Int32
	h := serveData(nil, func(r *http.Request) (any, error) {
		n := active.Add(1)
		defer active.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if calls.Add(1) == 1 {
			<-release
		}
		return map[string]int{"n": int(n)}, nil
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	t.Cleanup(free) // before the server closes, on a failure too
	get := func(out chan<- string) {
		resp, err := http.Get(ts.URL)
		if err != nil {
			out <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	first, second := make(chan string, 1), make(chan string, 1)
	go get(first)
	testkit.Eventually(t, 10*time.Second, "the first answer being made", func() (bool, string) { return calls.Load() == 1, "" })
	go get(second)
	testkit.Eventually(t, 10*time.Second, "the second request waiting for its turn (or made beside the first)", func() (bool, string) {
		return waiting.Load() == 1 || calls.Load() == 2, ""
	})
	if calls.Load() != 1 {
		t.Fatal("the second answer was made while the first was being made")
	}
	free()
	for _, c := range []chan string{first, second} {
		if got := <-c; got != `200 {"n":1}` {
			t.Errorf("answer %q, want 200 {\"n\":1}", got)
		}
	}
	if most.Load() != 1 {
		t.Errorf("%d answers made at once, want 1", most.Load())
	}
}

// A client that does not read its answer holds no turn: the answer is
// made whole first, and sent after.
func TestSlowReaderHoldsNoTurn(t *testing.T) {
	big := strings.Repeat("x", 16<<20) // more than the sockets' buffers hold
	h := serveData(nil, func(r *http.Request) (any, error) {
		if r.URL.Path == "/big" {
			return big, nil
		}
		return "small", nil
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	// Its status line arrives: the answer was made; the client reads no
	// further.
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status line %q, %v", line, err)
	}
	done := make(chan string, 1)
	go func() {
		resp, err := http.Get(ts.URL + "/small")
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		done <- strings.TrimSpace(string(b))
	}()
	select {
	case got := <-done:
		if got != `"small"` {
			t.Fatalf("answer %q", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a client not reading its answer held every other answer")
	}
}

// An answer whose making panics ends its turn (the HTTP server recovers
// the panic; the next answers are made), one that cannot be written as
// JSON is a 500, and a request that waits too long for its turn gets 503.
func TestAnswerTurnEnds(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/panic":
			serveData(nil, func(*http.Request) (any, error) { panic("boom") }).ServeHTTP(w, r)
		case "/nan":
			serveData(nil, func(*http.Request) (any, error) { return math.NaN(), nil }).ServeHTTP(w, r)
		default:
			serveData(nil, func(*http.Request) (any, error) { return "ok", nil }).ServeHTTP(w, r)
		}
	}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(ts.Close)
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	get("/panic")
	done := make(chan string, 1)
	go func() { code, body := get("/ok"); done <- fmt.Sprint(code, " ", body) }()
	select {
	case got := <-done:
		if got != `200 "ok"` {
			t.Fatalf("after a panic: %s", got)
		}
	case <-time.After(answerWait + 10*time.Second):
		t.Fatal("the panic kept the turn: no answer is made")
	}
	if code, body := get("/nan"); code != http.StatusInternalServerError || !strings.Contains(body, "unsupported value") {
		t.Fatalf("a value JSON cannot hold: %d %s", code, body)
	}

	answering <- struct{}{} // the turn held
	was := answerWait
	answerWait = 50 * time.Millisecond
	t.Cleanup(func() { answerWait = was; <-answering })
	if code, body := get("/ok"); code != http.StatusServiceUnavailable || !strings.Contains(body, "busy") {
		t.Fatalf("with the turn held: %d %s", code, body)
	}
}
