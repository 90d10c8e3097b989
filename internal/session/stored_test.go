package session_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"sshguard-go/internal/session"
	"sshguard-go/internal/store"
)

// counting is the state database, counting the sessions its scans hand
// out.
type counting struct {
	*store.DB
	read int
}

func (c *counting) Sessions(since time.Time, fn func([]byte, [][]byte) bool) error {
	return c.DB.Sessions(since, func(v []byte, ch [][]byte) bool { c.read++; return fn(v, ch) })
}

func (c *counting) SessionsNewest(since time.Time, fn func([]byte, [][]byte) bool) error {
	return c.DB.SessionsNewest(since, func(v []byte, ch [][]byte) bool { c.read++; return fn(v, ch) })
}

// TestStoredNewest: the newest N of 1,000 stored sessions come oldest
// first, filtered by user, and reading them reads N (or, filtered, up to
// the N-th match), not the thousand; with no limit every one since Since.
func TestStoredNewest(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "state.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var puts []store.SessionPut
	for i := range 1000 {
		s := &session.Session{Host: "h", PID: 1000 + i, User: []string{"alice", "bob"}[i%2], IP: "192.0.2.1", Start: t0.Add(time.Duration(i) * time.Minute)}
		puts = append(puts, store.SessionPut{Key: store.SessionKey(s.Start, s.Host, s.PID), Value: s.Marshal()})
	}
	if err := db.PutSessions(puts); err != nil {
		t.Fatal(err)
	}
	pids := func(recs [][]byte) (out []int) {
		for _, r := range recs {
			s, err := session.Unmarshal(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s.PID)
		}
		return out
	}
	raw := func(q session.Query) ([]int, int) {
		c := &counting{DB: db}
		got, err := session.Stored(c, q)
		if err != nil {
			t.Fatal(err)
		}
		recs := make([][]byte, len(got))
		for i, g := range got {
			recs[i] = g
		}
		return pids(recs), c.read
	}
	got, read := raw(session.Query{Since: t0, Limit: 3})
	if fmt.Sprint(got) != "[1997 1998 1999]" || read != 3 {
		t.Fatalf("newest 3: %v, %d read", got, read)
	}
	got, read = raw(session.Query{Since: t0, Limit: 3, User: "alice"})
	if fmt.Sprint(got) != "[1994 1996 1998]" || read > 6 {
		t.Fatalf("alice's newest 3: %v, %d read", got, read)
	}
	got, read = raw(session.Query{Since: t0.Add(990 * time.Minute), Limit: 100})
	if len(got) != 10 || got[0] != 1990 || got[9] != 1999 || read != 10 {
		t.Fatalf("since the 990th, 100 at most: %v, %d read", got, read)
	}
	got, read = raw(session.Query{Since: t0.Add(500 * time.Minute)})
	if len(got) != 500 || got[0] != 1500 || read != 500 {
		t.Fatalf("no limit: %d, first %v, %d read", len(got), got[:1], read)
	}
}
