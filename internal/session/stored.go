package session

import (
	"encoding/json"
	"time"
)

// Scanner is what Stored reads: the state database's session scans
// (store.DB), each calling fn with a session's record and its chunks of
// commands, oldest first.
type Scanner interface {
	Sessions(since time.Time, fn func(value []byte, chunks [][]byte) bool) error
	ActiveSessions(fn func(value []byte, chunks [][]byte) bool) error
}

// Query selects stored sessions: of User and IP when not "", the open ones
// when Active, else those that started at or after Since; with Limit > 0
// only the newest that many.
type Query struct {
	User   string
	IP     string
	Since  time.Time
	Active bool
	Limit  int
}

// Stored returns the records of the sessions q selects, each merged with
// its chunks (see Merge), oldest first. Memory stays within twice the
// limit: the oldest are dropped in bulk as the scan goes. A record that
// does not merge is left out and its error returned after the others.
func Stored(db Scanner, q Query) ([]json.RawMessage, error) {
	out := []json.RawMessage{}
	var bad error
	keep := func(v []byte, chunks [][]byte) bool {
		if q.User != "" || q.IP != "" {
			ss, err := Unmarshal(v)
			if err != nil || (q.User != "" && ss.User != q.User) || (q.IP != "" && ss.IP != q.IP) {
				return true
			}
		}
		m, err := Merge(v, chunks)
		if err != nil {
			bad = err
			return true
		}
		out = append(out, json.RawMessage(append([]byte(nil), m...)))
		if q.Limit > 0 && len(out) > 2*q.Limit { // the newest are kept: drop the oldest in bulk
			out = append(out[:0], out[len(out)-q.Limit:]...)
		}
		return true
	}
	var err error
	if q.Active {
		err = db.ActiveSessions(keep)
	} else {
		err = db.Sessions(q.Since, keep)
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	if err == nil {
		err = bad
	}
	return out, err
}
