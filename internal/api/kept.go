package api

import (
	"sync"
	"time"
)

// keptAnswers keeps each answer made for answerFresh, by path and query:
// the same question asked again within it (a dashboard open in several
// tabs, a script's loop, a page's burst of a hundred) is answered from
// here, so the work of the API follows the questions asked, not the
// requests. Under 200 requests a second the answers took a third of the
// daemon's processor time and made 40% of its garbage (the bans in force
// read whole, a hundred sessions merged), which the ban path paid for
// in the collector's work and the CPUs' time. It holds at most
// keptAnswersMax answers and keptBytes (questions and answers), none
// asked by a question over keptQuestion or answered over keptLargest
// (a page's questions made up to fill it keep nothing older than a
// second). The zero value keeps nothing until now is set; a nil one
// keeps nothing.
type keptAnswers struct {
	now   func() time.Time
	mu    sync.Mutex
	m     map[string]keptAnswer
	bytes int
}

type keptAnswer struct {
	at   time.Time
	body []byte
}

const (
	answerFresh    = time.Second
	keptBytes      = 16 << 20
	keptLargest    = 4 << 20
	keptQuestion   = 1 << 10
	keptAnswersMax = 1024
)

// get returns the answer kept for key if it is fresh.
func (k *keptAnswers) get(key string) ([]byte, bool) {
	if k == nil || k.now == nil {
		return nil, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.m[key]
	if !ok || k.now().Sub(a.at) >= answerFresh {
		return nil, false
	}
	return a.body, true
}

// put keeps body as key's answer, made now. The stale answers go first;
// when the fresh ones would still be over a bound, all of them.
func (k *keptAnswers) put(key string, body []byte) {
	if k == nil || k.now == nil || len(body) > keptLargest || len(key) > keptQuestion {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.m == nil {
		k.m = map[string]keptAnswer{}
	}
	for q, a := range k.m { // at most keptAnswersMax, once per answer made
		if q == key || now.Sub(a.at) >= answerFresh {
			k.bytes -= len(q) + len(a.body)
			delete(k.m, q)
		}
	}
	size := len(key) + len(body)
	if len(k.m) >= keptAnswersMax || k.bytes+size > keptBytes {
		clear(k.m)
		k.bytes = 0
	}
	k.m[key] = keptAnswer{at: now, body: body}
	k.bytes += size
}
