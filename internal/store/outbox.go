package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The outbox holds alerts from the moment the ban or login that caused
// them is recorded (in the same transaction) until every channel has
// delivered them, and afterwards as the alert history. Its records are
// opaque here: the alert package owns their format.

func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// enqueue adds data to the outbox as pending and returns its id; empty
// data adds nothing and returns 0.
func enqueue(tx *bolt.Tx, data []byte) (uint64, error) {
	if len(data) == 0 {
		return 0, nil
	}
	ob := appendOnly(tx, bktOutbox)
	id, err := ob.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := ob.Put(idKey(id), data); err != nil {
		return 0, err
	}
	return id, appendOnly(tx, bktPending).Put(idKey(id), nil)
}

// Enqueue adds an alert to the outbox, pending, and returns its id.
func (d *DB) Enqueue(data []byte) (uint64, error) {
	var id uint64
	err := d.update(func(tx *bolt.Tx) (err error) {
		id, err = enqueue(tx, data)
		return err
	})
	return id, err
}

// Pending calls fn for every alert that is still to be delivered, oldest
// first. data is a copy fn may keep.
func (d *DB) Pending(fn func(id uint64, data []byte) error) error { return d.PendingAfter(0, fn) }

// PendingAfter calls fn for every alert still to be delivered whose id is
// above after, oldest first: what was written since the caller last
// looked, found by the pending list's order without reading the rest.
func (d *DB) PendingAfter(after uint64, fn func(id uint64, data []byte) error) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		ob := tx.Bucket(bktOutbox)
		c := tx.Bucket(bktPending).Cursor()
		for k, _ := c.Seek(idKey(after + 1)); k != nil; k, _ = c.Next() {
			v := ob.Get(k)
			if v == nil {
				continue
			}
			id, data := binary.BigEndian.Uint64(k), append([]byte(nil), v...)
			var err error
			t.call(func() { err = fn(id, data) })
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Records calls fn with the record of each of ids that exists, in one
// read; data is a copy fn may keep.
func (d *DB) Records(ids []uint64, fn func(id uint64, data []byte) error) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		ob := tx.Bucket(bktOutbox)
		for _, id := range ids {
			if v := ob.Get(idKey(id)); v != nil {
				data := append([]byte(nil), v...)
				var err error
				t.call(func() { err = fn(id, data) })
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// UpdateAlerts rewrites the records of ids with fn, in one transaction:
// fn gets the current record and returns the new one and whether no
// channel has it still to deliver (it then leaves the pending list). An
// error from fn aborts the whole update.
func (d *DB) UpdateAlerts(ids []uint64, fn func(id uint64, data []byte) ([]byte, bool, error)) error {
	var t theirs
	return d.updateCalling(&t, func(tx *bolt.Tx) error {
		ob, pb := tx.Bucket(bktOutbox), tx.Bucket(bktPending)
		for _, id := range ids {
			v := ob.Get(idKey(id))
			if v == nil {
				return fmt.Errorf("alert %d: %w", id, ErrNotFound)
			}
			data := append([]byte(nil), v...)
			var nv []byte
			var done bool
			var err error
			t.call(func() { nv, done, err = fn(id, data) })
			if err != nil {
				return fmt.Errorf("alert %d: %w", id, err)
			}
			if err := ob.Put(idKey(id), nv); err != nil {
				return err
			}
			if done {
				if err := pb.Delete(idKey(id)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// Alerts calls fn for the most recent alerts, newest first, until fn
// returns false or limit alerts were passed (limit <= 0: all).
func (d *DB) Alerts(limit int, fn func(id uint64, data []byte, pending bool) bool) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		pb := tx.Bucket(bktPending)
		c := tx.Bucket(bktOutbox).Cursor()
		n := 0
		for k, v := c.Last(); k != nil && (limit <= 0 || n < limit); k, v = c.Prev() {
			n++
			id, data, pending := binary.BigEndian.Uint64(k), append([]byte(nil), v...), pb.Get(k) != nil
			more := false
			t.call(func() { more = fn(id, data, pending) })
			if !more {
				break
			}
		}
		return nil
	})
}

// PruneAlerts deletes the oldest delivered alerts beyond the newest keep,
// so the history stays bounded. Pending alerts are never deleted.
func (d *DB) PruneAlerts(keep int) (int, error) {
	deleted := 0
	err := d.update(func(tx *bolt.Tx) error {
		ob, pb := tx.Bucket(bktOutbox), tx.Bucket(bktPending)
		excess := ob.Stats().KeyN - keep
		c := ob.Cursor()
		for k, _ := c.First(); k != nil && deleted < excess; {
			if pb.Get(k) != nil {
				k, _ = c.Next()
				continue
			}
			next := append([]byte(nil), k...)
			if err := c.Delete(); err != nil {
				return err
			}
			deleted++
			k, _ = c.Seek(next)
		}
		return nil
	})
	return deleted, err
}
