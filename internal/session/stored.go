package session

import (
	"encoding/json"
	"slices"
	"time"
)

// Scanner is what Stored reads: the state database's session scans
// (store.DB), each calling fn with a session's record and its chunks of
// commands, oldest first.
type Scanner interface {
	Sessions(since time.Time, fn func(value []byte, chunks [][]byte) bool) error
	SessionsNewest(since time.Time, fn func(value []byte, chunks [][]byte) bool) error // newest first
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
// its chunks (see Merge), oldest first. With a limit the sessions are
// read newest first and the scan stops there; the open ones (Active) are
// read in full, memory within twice the limit (the oldest dropped in bulk
// as the scan goes). A record that does not merge is left out and its
// error returned after the others.
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
	switch {
	case q.Active:
		err = db.ActiveSessions(keep)
	case q.Limit > 0:
		// The newest first, until there are enough: the API's list reads
		// its 100, not a busy bastion's week.
		err = db.SessionsNewest(q.Since, func(v []byte, chunks [][]byte) bool {
			keep(v, chunks)
			return len(out) < q.Limit
		})
		slices.Reverse(out)
	default:
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
