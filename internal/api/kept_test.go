package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sshguard-go/internal/testkit"
)

// TestSameQuestionAnsweredOnce: twenty requests for the same path and
// query within a second are answered from one answer made; another query
// is another answer; a second later the answer is made again.
func TestSameQuestionAnsweredOnce(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC))
	var calls atomic.Int32
	h := serveData(&keptAnswers{now: clock.Now}, func(r *http.Request) (any, error) {
		return map[string]any{"n": calls.Add(1), "q": r.URL.RawQuery}, nil
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	get := func(q string) string {
		resp, err := http.Get(ts.URL + "/api/v1/bans?" + q)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Go(func() { got[i] = get("limit=100") })
	}
	wg.Wait()
	for _, g := range got {
		if g != `200 {"n":1,"q":"limit=100"}` {
			t.Fatalf("answers %q: want every one the first made", got)
		}
	}
	if g := get("limit=5"); g != `200 {"n":2,"q":"limit=5"}` {
		t.Fatalf("another query answered %s, want a new answer", g)
	}
	clock.Add(answerFresh)
	if g := get("limit=100"); g != `200 {"n":3,"q":"limit=100"}` {
		t.Fatalf("a second later answered %s, want a new answer", g)
	}
}

// TestKeptAnswersBounded: the answers kept never hold more than
// keptBytes, and one larger than keptLargest is not kept; an error is
// never kept.
func TestKeptAnswersBounded(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC))
	k := &keptAnswers{now: clock.Now}
	body := make([]byte, keptLargest)
	for i := range 100 {
		k.put(fmt.Sprint("/a?", i), body)
		if k.bytes > keptBytes {
			t.Fatalf("%d bytes kept after %d answers, at most %d", k.bytes, i+1, keptBytes)
		}
	}
	if _, ok := k.get("/a?99"); !ok {
		t.Fatal("the newest answer is not kept")
	}
	k.put("/big", make([]byte, keptLargest+1))
	if _, ok := k.get("/big"); ok {
		t.Fatal("an answer over keptLargest was kept")
	}
	var calls atomic.Int32
	ts := httptest.NewServer(serveData(k, func(*http.Request) (any, error) { calls.Add(1); return nil, bad("no") }))
	t.Cleanup(ts.Close)
	for range 2 {
		resp, err := http.Get(ts.URL + "/e")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if calls.Load() != 2 {
		t.Fatalf("an error answer was kept: %d calls for 2 requests", calls.Load())
	}
}

// TestKeptQuestionsBounded: questions made up to fill the answers kept (a
// new query string each time, long ones) never hold more than
// keptAnswersMax answers or keptBytes, questions included; a question over
// keptQuestion is answered, not kept; the stale ones go at the next put.
func TestKeptQuestionsBounded(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC))
	k := &keptAnswers{now: clock.Now}
	junk := strings.Repeat("j", keptQuestion-100)
	for i := range 3 * keptAnswersMax {
		k.put(fmt.Sprintf("/api/v1/summary?n=%d&junk=%s", i, junk), []byte("{}\n"))
		if len(k.m) > keptAnswersMax || k.bytes > keptBytes {
			t.Fatalf("after %d questions: %d answers, %d bytes kept (at most %d, %d)", i+1, len(k.m), k.bytes, keptAnswersMax, keptBytes)
		}
	}
	k.put("/q?"+strings.Repeat("j", keptQuestion), []byte("{}\n"))
	if _, ok := k.get("/q?" + strings.Repeat("j", keptQuestion)); ok {
		t.Fatal("a question over keptQuestion was kept")
	}
	clock.Add(answerFresh)
	k.put("/fresh", []byte("{}\n"))
	if len(k.m) != 1 || k.bytes != len("/fresh")+3 {
		t.Fatalf("after a second: %d answers, %d bytes kept; want only the fresh one", len(k.m), k.bytes)
	}
}
