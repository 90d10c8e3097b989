package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention says how long the store keeps what protection no longer
// needs. A zero duration keeps forever.
type Retention struct {
	History   time.Duration // ban history records; never the record of a ban in force
	Offenders time.Duration // offender records after their last ban (the policy's memory)
	Logins    time.Duration // login records and the marks of users' known sources
	Counts    time.Duration // hourly counts
	Sessions  time.Duration // session records (by their start)
	// CountsDetail is how long an hour keeps all its addresses and users
	// (up to MaxCountKeys each); older hours keep their 20 biggest and
	// the totals, until Counts.
	CountsDetail time.Duration
}

// pruneChunk bounds the records one pruning transaction deletes, so that
// the daemon's own writes never wait long behind it.
const pruneChunk = 1000

// Prune deletes, at now, what rt no longer keeps, pruneChunk records per
// transaction, and returns how many records it deleted. Expired bans are
// taken out of the index too. Alerts are pruned by count (PruneAlerts).
func (d *DB) Prune(now time.Time, rt Retention) (int, error) {
	total := 0
	if err := d.expire(now); err != nil {
		return 0, err
	}
	if n, err := d.pruneDryRun(now); err != nil {
		return n, err
	} else {
		total += n
	}
	steps := []struct {
		keep   time.Duration
		bucket []byte
		cutoff func(time.Time) []byte
		prune  func(tx *bolt.Tx, k, v []byte) (bool, error) // false: keep this one
	}{
		{rt.History, bktHistory, timeKey, pruneHistory},
		{rt.Offenders, bktLastBan, timeKey, pruneOffender},
		{rt.Logins, bktLogins, timeKey, nil},
		{rt.Counts, bktDaily, hourKey, nil},
		{rt.Sessions, bktSessions, timeKey, pruneSession},
	}
	for _, s := range steps {
		if s.keep <= 0 {
			continue
		}
		n, err := d.pruneBefore(s.bucket, s.cutoff(now.Add(-s.keep)), s.prune)
		total += n
		if err != nil {
			return total, err
		}
	}
	if rt.CountsDetail > 0 {
		n, err := d.thinCounts(hourKey(now.Add(-rt.CountsDetail)))
		total += n
		if err != nil {
			return total, err
		}
	}
	if rt.Logins > 0 {
		n, err := d.pruneSeen(now.Add(-rt.Logins))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneBefore deletes the records of bkt whose keys sort before cutoff
// (and that prune, if set, agrees to delete), in transactions of at most
// pruneChunk deletions.
func (d *DB) pruneBefore(bkt, cutoff []byte, prune func(tx *bolt.Tx, k, v []byte) (bool, error)) (int, error) {
	total := 0
	var resume []byte
	for {
		n, more := 0, false
		err := d.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bkt)
			c := b.Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for ; k != nil && bytes.Compare(k, cutoff) < 0; k, v = c.Next() {
				if n == pruneChunk {
					resume, more = append([]byte(nil), k...), true
					return nil
				}
				del := true
				if prune != nil {
					var err error
					if del, err = prune(tx, k, v); err != nil {
						return err
					}
				}
				if del {
					if err := c.Delete(); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// pruneHistory keeps the record of a ban still in force (a permanent ban,
// say) and lets the others go.
func pruneHistory(tx *bolt.Tx, k, _ []byte) (bool, error) {
	if len(k) <= 8 {
		return true, nil
	}
	if _, ref, ok := parseActive(tx.Bucket(bktBans).Get(k[8:])); ok && bytes.Equal(ref, k) {
		return false, nil
	}
	return true, nil
}

// pruneOffender deletes, with the index entry k (last ban + prefix), the
// offender record of its prefix, unless a later ban renewed it.
func pruneOffender(tx *bolt.Tx, k, _ []byte) (bool, error) {
	if len(k) <= 8 {
		return true, nil
	}
	ob := tx.Bucket(bktOffenders)
	v := ob.Get(k[8:])
	if v == nil {
		return true, nil
	}
	var off Offender
	if err := json.Unmarshal(v, &off); err != nil {
		return false, fmt.Errorf("offender %s: %w", k[8:], err)
	}
	if bytes.Equal(timeKey(off.LastBan), k[:8]) {
		return true, ob.Delete(k[8:])
	}
	return true, nil // a stale index entry
}

// thinCounts thins the hours before cutoff that were not thinned yet (the
// meta record "counts-thinned" says up to where), and returns how many it
// rewrote.
func (d *DB) thinCounts(cutoff []byte) (int, error) {
	total := 0
	for {
		n, more := 0, false
		err := d.update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bktMeta)
			c := tx.Bucket(bktDaily).Cursor()
			k, v := c.First()
			if from := meta.Get([]byte("counts-thinned")); from != nil {
				k, v = c.Seek(from)
			}
			var last []byte
			type put struct{ k, v []byte }
			var puts []put // written after the walk: a Put moves the cursor
			for ; k != nil && bytes.Compare(k, cutoff) < 0; k, v = c.Next() {
				if n == pruneChunk {
					more = true
					break
				}
				var cs Counts
				if err := json.Unmarshal(v, &cs); err != nil {
					return fmt.Errorf("counts %s: %w", k, err)
				}
				last = append([]byte(nil), k...)
				if cs.thin() {
					data, err := json.Marshal(cs)
					if err != nil {
						return err
					}
					puts = append(puts, put{last, data})
					n++
				}
			}
			if last == nil {
				return nil
			}
			for _, p := range puts {
				if err := tx.Bucket(bktDaily).Put(p.k, p.v); err != nil {
					return err
				}
			}
			return meta.Put([]byte("counts-thinned"), append(last, 0)) // resume after it
		})
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// pruneSeen deletes the marks of sources not seen since cutoff.
func (d *DB) pruneSeen(cutoff time.Time) (int, error) {
	total := 0
	for {
		var old [][]byte
		if err := d.view(func(tx *bolt.Tx) error {
			return tx.Bucket(bktSeen).ForEach(func(k, v []byte) error {
				if len(old) < pruneChunk && len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(cutoff) {
					old = append(old, append([]byte(nil), k...))
				}
				return nil
			})
		}); err != nil || len(old) == 0 {
			return total, err
		}
		if err := d.update(func(tx *bolt.Tx) error {
			for _, k := range old {
				if err := tx.Bucket(bktSeen).Delete(k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return total, err
		}
		total += len(old)
		if len(old) < pruneChunk {
			return total, nil
		}
	}
}

// Compact rewrites the database at path into a new file holding only what
// is in use (bbolt never shrinks a file by itself), and replaces it. The
// daemon must not be running (ErrLocked). It returns the sizes before and
// after.
func Compact(path string, timeout time.Duration) (before, after int64, err error) {
	src, err := Open(path, timeout)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close() // closed before the rename below; a second Close is harmless
	st, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".compact")
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := src.guard(nil, func() error { return bolt.Compact(dst, src.db, 64<<20) }); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	dst.Close()
	nst, err := os.Stat(tmp)
	if err != nil {
		return 0, 0, err
	}
	// Replace the file only once nothing holds it open.
	if err := src.Close(); err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	return st.Size(), nst.Size(), nil
}
