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
// keptBytes, and no answer over keptLargest. The zero value keeps
// nothing until now is set; a nil one keeps nothing.
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
	answerFresh = time.Second
	keptBytes   = 16 << 20
	keptLargest = 4 << 20
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

// put keeps body as key's answer, made now. When the answers kept would
// be over keptBytes, the stale ones go first, then all of them.
func (k *keptAnswers) put(key string, body []byte) {
	if k == nil || k.now == nil || len(body) > keptLargest {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.m == nil {
		k.m = map[string]keptAnswer{}
	}
	if old, ok := k.m[key]; ok {
		k.bytes -= len(old.body)
		delete(k.m, key)
	}
	if k.bytes+len(body) > keptBytes {
		for key, a := range k.m {
			if now.Sub(a.at) >= answerFresh {
				k.bytes -= len(a.body)
				delete(k.m, key)
			}
		}
	}
	if k.bytes+len(body) > keptBytes {
		clear(k.m)
		k.bytes = 0
	}
	k.m[key] = keptAnswer{at: now, body: body}
	k.bytes += len(body)
}
