package store

import (
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A dry run (firewall.backend = "none") decides bans as a real run would
// and enforces none. What it would have banned is kept apart, in the
// dryrun bucket (prefix -> its newest would-be ban): never a ban in
// force, never restored into the kernel, never counted for escalation,
// listed by `list --dry-run`. A prefix's entry is replaced by its next
// would-be ban, and deleted when it has ended and the hourly prune runs.

// RecordDryRun keeps bans as a dry run's, and in the same transaction
// puts in the outbox what alert returns for each (nil: nothing). It
// returns the outbox ids (0 where none).
func (d *DB) RecordDryRun(bans []*Ban, alert func(*Ban) []byte) ([]uint64, error) {
	ids := make([]uint64, len(bans))
	var t theirs
	err := d.updateCalling(&t, func(tx *bolt.Tx) error {
		b := dense(tx, bktDryRun)
		for i, ban := range bans {
			if err := putPacked(b, pkey(ban.Prefix), ban); err != nil {
				return err
			}
			var msg []byte
			t.call(func() { msg = alert(ban) })
			var err error
			if ids[i], err = enqueue(tx, msg); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// DryRunBans returns the bans a dry run would have in force at now; the
// records that do not decode are left out, and counted in damaged (as
// InForce's).
func (d *DB) DryRunBans(now time.Time) (bans []Ban, damaged Damaged, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktDryRun).ForEach(func(k, v []byte) error {
			var b Ban
			if err := unpack(v, &b); err != nil {
				damaged.add(k)
				return nil
			}
			if b.Active(now) {
				b.Evidence = nil
				bans = append(bans, b)
			}
			return nil
		})
	})
	return bans, damaged, err
}

// LiftDryRun removes the would-be bans of ps and returns those there
// were.
func (d *DB) LiftDryRun(ps []netip.Prefix) ([]netip.Prefix, error) {
	var lifted []netip.Prefix
	err := d.update(func(tx *bolt.Tx) error {
		lifted = lifted[:0]
		b := tx.Bucket(bktDryRun)
		for _, p := range ps {
			if b.Get(pkey(p)) == nil {
				continue
			}
			if err := b.Delete(pkey(p)); err != nil {
				return err
			}
			lifted = append(lifted, p)
		}
		return nil
	})
	return lifted, err
}

// pruneDryRun deletes the would-be bans that ended before now.
func (d *DB) pruneDryRun(now time.Time) (int, error) {
	var done [][]byte
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktDryRun).ForEach(func(k, v []byte) error {
			var b Ban
			if unpack(v, &b) == nil && !b.Active(now) {
				done = append(done, append([]byte(nil), k...))
			}
			return nil
		})
	})
	if err != nil || len(done) == 0 {
		return 0, err
	}
	return len(done), d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDryRun)
		for _, k := range done {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
