package store

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// The share outbox holds what the fleet must hear of this host's bans and
// unbans, written in the transaction of the ban (RecordBans, Lift
// and LiftMany) and deleted once published, in order.

// enqueueIn appends data (when not empty) to bkt under the next sequence.
func enqueueIn(tx *bolt.Tx, bkt, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	b := appendOnly(tx, bkt)
	id, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(idKey(id), data)
}

// Shared calls fn with the share outbox's entries, oldest first, at most
// limit, until fn returns false. data is a copy fn may keep.
func (d *DB) Shared(limit int, fn func(id uint64, data []byte) bool) error {
	var t theirs
	return d.viewCalling(&t, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktShare).Cursor()
		n := 0
		for k, v := c.First(); k != nil && n < limit; k, v = c.Next() {
			n++
			id, data := binary.BigEndian.Uint64(k), append([]byte(nil), v...)
			more := false
			t.call(func() { more = fn(id, data) })
			if !more {
				return nil
			}
		}
		return nil
	})
}

// Published deletes the share outbox's entries up to and including id.
func (d *DB) Published(id uint64) error {
	return d.update(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktShare).Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= id; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// SharePending is how many entries wait in the share outbox.
func (d *DB) SharePending() (int, error) {
	n := 0
	err := d.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bktShare).Stats().KeyN
		return nil
	})
	return n, err
}
