package session

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"sshguard-go/internal/control"
)

// sessionsBackend answers Sessions with raw (or err) and keeps the query;
// any other call of control.Backend panics.
type sessionsBackend struct {
	control.Backend
	raw   []json.RawMessage
	err   error
	asked []control.SessionQuery
}

func (b *sessionsBackend) Sessions(_ context.Context, q control.SessionQuery) ([]json.RawMessage, error) {
	b.asked = append(b.asked, q)
	return b.raw, b.err
}

// TestFetch: the filter becomes the control API's query (with the limit),
// the records come back decoded, and an error of the backend or of a
// record is returned.
func TestFetch(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a := &Session{Host: "h", PID: 10, User: "alice", IP: "192.0.2.1", Start: t0}
	c := &Session{Host: "h", PID: 11, User: "alice", IP: "192.0.2.1", Start: t0.Add(time.Hour), Active: true}
	b := &sessionsBackend{raw: []json.RawMessage{a.Marshal(), c.Marshal()}}
	f := Filter{User: "alice", IP: "192.0.2.1", Since: t0, Active: true}
	list, err := Fetch(context.Background(), b, f)
	want := control.SessionQuery{User: "alice", IP: "192.0.2.1", Since: t0, Active: true, Limit: 100000}
	if err != nil || len(b.asked) != 1 || b.asked[0] != want {
		t.Fatalf("asked %+v, %v", b.asked, err)
	}
	if len(list) != 2 || list[0].PID != 10 || list[1].PID != 11 || !list[1].Active || list[0].Transfers == nil {
		t.Fatalf("decoded %+v", list)
	}

	boom := errors.New("no daemon, no database")
	if list, err := Fetch(context.Background(), &sessionsBackend{err: boom}, f); !errors.Is(err, boom) || list != nil {
		t.Fatalf("backend error: %v, %v", list, err)
	}
	bad := &sessionsBackend{raw: []json.RawMessage{a.Marshal(), json.RawMessage(`{"start": 7}`)}}
	if list, err := Fetch(context.Background(), bad, f); err == nil || list != nil {
		t.Fatalf("a bad record: %v, %v", list, err)
	}
}
