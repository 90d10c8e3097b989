package store

import (
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sessions are stored as their owner encodes them (internal/session),
// keyed by start time, host and sshd pid; the live bucket indexes those
// still open, so that "who is logged in now" reads only them.

// SessionKey is the key of the session of host's sshd pid that started at
// start.
func SessionKey(start time.Time, host string, pid int) []byte {
	return strconv.AppendInt(append(append(timeKey(start), host...), 0), int64(pid), 10)
}

// PutSession writes a session's record: at its start (active) and at its
// end (not), over the same key.
func (d *DB) PutSession(key, value []byte, active bool) error {
	return d.PutSessions([]SessionPut{{key, value, active}})
}

// SessionPut is one session record to write (PutSessions).
type SessionPut struct {
	Key, Value []byte
	Active     bool // open: listed by ActiveSessions
}

// PutSessions writes many session records in one transaction, each as
// PutSession does.
func (d *DB) PutSessions(ps []SessionPut) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		live := tx.Bucket(bktLive)
		for _, p := range ps {
			if err := tx.Bucket(bktSessions).Put(p.Key, p.Value); err != nil {
				return err
			}
			var err error
			if p.Active {
				err = live.Put(p.Key, nil)
			} else {
				err = live.Delete(p.Key)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Sessions calls fn with the records of the sessions that started at or
// after since (zero: all), oldest first, until fn returns false.
func (d *DB) Sessions(since time.Time, fn func(value []byte) bool) error {
	return d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktSessions).Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			if !fn(v) {
				return nil
			}
		}
		return nil
	})
}

// ActiveSessions calls fn with the records of the sessions still open,
// oldest first.
func (d *DB) ActiveSessions(fn func(value []byte) bool) error {
	return d.db.View(func(tx *bolt.Tx) error {
		s := tx.Bucket(bktSessions)
		c := tx.Bucket(bktLive).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if v := s.Get(k); v != nil && !fn(v) {
				return nil
			}
		}
		return nil
	})
}

// pruneSession deletes a session's record and its live mark.
func pruneSession(tx *bolt.Tx, k, _ []byte) (bool, error) {
	return true, tx.Bucket(bktLive).Delete(k)
}
