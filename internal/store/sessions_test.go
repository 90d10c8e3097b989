package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestSessionChunks: chunks appended to a session's record come back
// with it, in order, from Sessions and ActiveSessions; appending leaves
// the record's bytes as they were (a command costs what it adds); a
// record written whole, without chunks, reads as it is; pruning the
// session takes its chunks along, and not a neighbour's.
func TestSessionChunks(t *testing.T) {
	d, _ := open(t)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	k1, k2 := SessionKey(start, "h", 12), SessionKey(start, "h", 123) // the one key a prefix of the other's digits
	old := SessionKey(start.Add(-time.Hour), "h", 5)
	if err := d.PutSessions([]SessionPut{{Key: k1, Value: []byte(`{"r":1}`), Active: true}, {Key: k2, Value: []byte(`{"r":2}`)},
		{Key: old, Value: []byte(`{"commands":[{"argv":["ls"]}]}`)}}); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		ps := []SessionPut{{Key: k1, Append: []byte(fmt.Sprint(i))}}
		if i%10 == 0 {
			ps = append(ps, SessionPut{Key: k2, Append: []byte(fmt.Sprint("b", i))})
		}
		if err := d.PutSessions(ps); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string][][]byte{}
	err := d.Sessions(time.Time{}, func(v []byte, chunks [][]byte) bool {
		got[string(v)] = append([][]byte(nil), chunks...)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got[`{"r":1}`]) != 50 || len(got[`{"r":2}`]) != 5 || got[`{"commands":[{"argv":["ls"]}]}`] != nil {
		t.Fatalf("records %d, chunks %d and %d", len(got), len(got[`{"r":1}`]), len(got[`{"r":2}`]))
	}
	for i, c := range got[`{"r":1}`] {
		if string(c) != fmt.Sprint(i) {
			t.Fatalf("chunk %d is %q: out of order", i, c)
		}
	}
	var live [][]byte
	d.ActiveSessions(func(v []byte, chunks [][]byte) bool {
		live = append(live, v)
		live = append(live, chunks...)
		return true
	})
	if len(live) != 51 || !bytes.Equal(live[0], []byte(`{"r":1}`)) {
		t.Fatalf("active: %d values", len(live))
	}
	// The record stays as written; the end rewrites it, not its chunks.
	d.PutSession(k1, []byte(`{"r":1,"end":true}`), false)
	n, err := d.Prune(start, Retention{Sessions: 30 * time.Minute})
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	n, err = d.Prune(start.Add(time.Hour), Retention{Sessions: time.Minute})
	if err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	err = d.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bktSesCmds).Cursor().First(); k != nil {
			return fmt.Errorf("a chunk left: %q", k)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkSessionLateCommand: a late command appended to a session
// whose record and chunks hold 256 KiB: what one costs (a chunk of its
// own, the record untouched).
func BenchmarkSessionLateCommand(b *testing.B) {
	d, err := Open(filepath.Join(b.TempDir(), "state.db"), time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	key := SessionKey(time.Now(), "h", 7)
	if err := d.PutSession(key, bytes.Repeat([]byte("r"), 128<<10), false); err != nil {
		b.Fatal(err)
	}
	for range 128 {
		d.PutSessions([]SessionPut{{Key: key, Append: bytes.Repeat([]byte("c"), 1024)}})
	}
	cmd := bytes.Repeat([]byte("x"), 200)
	for b.Loop() {
		if err := d.PutSessions([]SessionPut{{Key: key, Append: cmd}}); err != nil {
			b.Fatal(err)
		}
	}
}
