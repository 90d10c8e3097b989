package store

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sessions are stored as their owner encodes them (internal/session),
// keyed by start time, host and sshd pid; the live bucket indexes those
// still open, so that "who is logged in now" reads only them. A session's
// commands are appended as they come, in chunks of their own
// (session_commands: the session's key, NUL, a sequence): a command costs
// what it adds, not a rewrite of the record. Records written whole (with
// their commands in them, as before chunks) read as they are.

// SessionKey is the key of the session of host's sshd pid that started at
// start.
func SessionKey(start time.Time, host string, pid int) []byte {
	return strconv.AppendInt(append(append(timeKey(start), host...), 0), int64(pid), 10)
}

// PutSession writes a session's record: at its start (active) and at its
// end (not), over the same key.
func (d *DB) PutSession(key, value []byte, active bool) error {
	return d.PutSessions([]SessionPut{{Key: key, Value: value, Active: active}})
}

// SessionPut is one session record to write (PutSessions), and or a
// chunk of commands to append to it.
type SessionPut struct {
	Key    []byte
	Value  []byte // the record (nil: left as it is)
	Active bool   // open: listed by ActiveSessions (with Value only)
	Append []byte // a chunk to append (nil: none)
}

// PutSessions writes many session records and chunks in one transaction,
// each record as PutSession does.
func (d *DB) PutSessions(ps []SessionPut) error {
	return d.update(func(tx *bolt.Tx) error {
		live, cmds := tx.Bucket(bktLive), tx.Bucket(bktSesCmds)
		for _, p := range ps {
			if p.Append != nil {
				seq, err := cmds.NextSequence()
				if err != nil {
					return err
				}
				if err := cmds.Put(chunkKey(p.Key, seq), p.Append); err != nil {
					return err
				}
			}
			if p.Value == nil {
				continue
			}
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

// chunkKey is the key of a session's chunk: its key, NUL, the sequence.
func chunkKey(key []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(append(make([]byte, 0, len(key)+9), key...), 0), seq)
}

// chunks is the chunks of the session of key, in the order they came
// (nil when none, or in a database older than chunks).
func chunks(tx *bolt.Tx, key []byte) [][]byte {
	b := tx.Bucket(bktSesCmds)
	if b == nil {
		return nil
	}
	prefix := append(append(make([]byte, 0, len(key)+1), key...), 0)
	var out [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		out = append(out, v)
	}
	return out
}

// Sessions calls fn with the records of the sessions that started at or
// after since (zero: all), oldest first, each with its chunks of
// commands, until fn returns false. The values are valid during fn only.
func (d *DB) Sessions(since time.Time, fn func(value []byte, chunks [][]byte) bool) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktSessions).Cursor()
		for k, v := c.Seek(timeKey(since)); k != nil; k, v = c.Next() {
			if !giveSession(&t, fn, v, chunks(tx, k)) {
				return nil
			}
		}
		return nil
	})
}

// SessionsNewest is Sessions newest first: fn is called with the record
// of each session that started at or after since, the newest first, until
// it returns false (a list of the newest N reads N, not the week).
func (d *DB) SessionsNewest(since time.Time, fn func(value []byte, chunks [][]byte) bool) error {
	from := timeKey(since)
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktSessions).Cursor()
		for k, v := c.Last(); k != nil && bytes.Compare(k, from) >= 0; k, v = c.Prev() {
			if !giveSession(&t, fn, v, chunks(tx, k)) {
				return nil
			}
		}
		return nil
	})
}

// ActiveSessions calls fn with the records of the sessions still open,
// oldest first, each with its chunks of commands.
func (d *DB) ActiveSessions(fn func(value []byte, chunks [][]byte) bool) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		s := tx.Bucket(bktSessions)
		c := tx.Bucket(bktLive).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if v := s.Get(k); v != nil && !giveSession(&t, fn, v, chunks(tx, k)) {
				return nil
			}
		}
		return nil
	})
}

// giveSession calls fn, the caller's code, with a session's record and
// chunks.
func giveSession(t *theirs, fn func(value []byte, chunks [][]byte) bool, v []byte, chunks [][]byte) (more bool) {
	t.call(func() { more = fn(v, chunks) })
	return more
}

// pruneSession deletes a session's record, its live mark and its chunks.
func pruneSession(tx *bolt.Tx, k, _ []byte) (bool, error) {
	if b := tx.Bucket(bktSesCmds); b != nil {
		prefix := append(append(make([]byte, 0, len(k)+1), k...), 0)
		c := b.Cursor()
		for ck, _ := c.Seek(prefix); ck != nil && bytes.HasPrefix(ck, prefix); ck, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return false, err
			}
		}
	}
	return true, tx.Bucket(bktLive).Delete(k)
}
