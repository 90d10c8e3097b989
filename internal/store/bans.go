package store

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unsafe"

	bolt "go.etcd.io/bbolt"
)

// A ban is stored once, in full, in the history (with its evidence). The
// bans bucket indexes the ones in force: prefix -> expiry and history key;
// the expiry bucket orders those that expire, so that expired ones are
// found without reading the others. A ban alert in the outbox refers to
// its history record (BanRef) instead of copying it.

// Damaged is what a read of the bans in force left out: the records that
// do not decode, or whose key is no prefix (a value or key damaged on a
// page that is whole; a damaged page is ErrCorrupt, and stops the read).
// A read goes on without them, so that one damaged record keeps no other
// ban out of the kernel; lifting its prefix (LiftMany, `sshguard-go
// unban`) deletes it.
type Damaged struct {
	N    int      // how many records
	Keys []string // the keys of the first MaxDamagedKeys, as DamagedKey writes them
}

// MaxDamagedKeys bounds the keys a Damaged names.
const MaxDamagedKeys = 100

// add counts the damaged record of key k.
func (d *Damaged) add(k []byte) {
	d.N++
	if len(d.Keys) < MaxDamagedKeys {
		d.Keys = append(d.Keys, DamagedKey(k))
	}
}

// isPrefix reports whether the bans bucket's key k is a prefix, as every
// key is but a damaged one: its record is then damaged too.
func isPrefix(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	// Read in place, not copied (100,000 keys a read): ParsePrefix keeps
	// nothing of its argument but in its error, dropped here.
	_, err := netip.ParsePrefix(unsafe.String(&k[0], len(k)))
	return err == nil
}

// DamagedKey is the key k of a damaged record, printable: a prefix as it
// is (what `sshguard-go unban` takes to delete the record), anything
// else (the key is damaged too) quoted in ASCII, its first 64 bytes.
func DamagedKey(k []byte) string {
	if p, err := netip.ParsePrefix(string(k)); err == nil && p.String() == string(k) {
		return string(k)
	}
	if len(k) > 64 {
		return strconv.QuoteToASCII(string(k[:64])) + "..."
	}
	return strconv.QuoteToASCII(string(k))
}

// Ban is a ban as recorded.
type Ban struct {
	Prefix   netip.Prefix `json:"prefix"`
	Start    time.Time    `json:"start"`
	Expires  time.Time    `json:"expires,omitzero"` // zero: permanent
	Count    int          `json:"count"`            // the nth ban of this prefix
	Reason   string       `json:"reason"`
	Attempts float64      `json:"attempts"`
	Users    []string     `json:"users,omitempty"`
	Evidence []string     `json:"evidence,omitempty"` // first and last lines
	// Origin is who made it: "detected", "admin", "archive", or
	// "fleet:<host>" for a ban another host of the fleet shared.
	Origin string `json:"origin,omitempty"`
}

// Shared reports whether b is a ban another host of the fleet shared: it
// never counts for this host's escalation.
func (b Ban) Shared() bool { return strings.HasPrefix(b.Origin, "fleet:") }

// Active reports whether b is in force at now.
func (b Ban) Active(now time.Time) bool { return b.Expires.IsZero() || now.Before(b.Expires) }

// BanRef is the reference to b's history record (valid once b is
// recorded, or from within RecordBans' alert function): what a ban
// alert keeps instead of a copy of the ban. See BanByRef.
func BanRef(b *Ban) []byte {
	return append(timeKey(b.Start), pkey(b.Prefix)...)
}

// BanByRef returns the ban recorded under ref, or ErrNotFound (the
// history record was pruned).
func (d *DB) BanByRef(ref []byte) (Ban, error) {
	var b Ban
	err := d.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktHistory).Get(ref)
		if v == nil {
			return ErrNotFound
		}
		return unpack(v, &b)
	})
	return b, err
}

// The bans bucket's value (schema 3) is a compact record of the ban in
// force: what restoring, listing and the gate need, so that 100,000 bans
// are read without touching their history records (each a deflated JSON
// document with its evidence). Layout: the mark activeMark; uvarints: the
// expiry (Unix nanoseconds, 0 for permanent), the start, the count; the
// attempts as a float64; the origin, the reason (at most maxReason
// bytes), the number of users (at most maxUsers) and each user (at most
// maxUser bytes), and the history key, each a uvarint length and bytes.
const (
	activeMark = 0x03
	maxReason  = 300
	maxUsers   = 8
	maxUser    = 64
)

// activeValue is the bans bucket's value for b.
func activeValue(b *Ban) []byte {
	v := []byte{activeMark}
	v = binary.AppendUvarint(v, uint64(max(expiresNano(b.Expires), 0)))
	v = binary.AppendUvarint(v, uint64(max(b.Start.UnixNano(), 0)))
	v = binary.AppendUvarint(v, uint64(max(b.Count, 0)))
	v = binary.BigEndian.AppendUint64(v, math.Float64bits(b.Attempts))
	v = appendString(v, b.Origin, 64)
	v = appendString(v, b.Reason, maxReason)
	users := b.Users[:min(len(b.Users), maxUsers)]
	v = binary.AppendUvarint(v, uint64(len(users)))
	for _, u := range users {
		v = appendString(v, u, maxUser)
	}
	return appendString(v, string(BanRef(b)), 1<<10)
}

func expiresNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func appendString(v []byte, s string, most int) []byte {
	s = s[:min(len(s), most)]
	return append(binary.AppendUvarint(v, uint64(len(s))), s...)
}

// decodeActive reads a bans bucket value into b (without its evidence)
// and returns its history key; ok is false for a value of another layout
// or a damaged one.
func decodeActive(v []byte, b *Ban) (ref []byte, ok bool) {
	if len(v) < 1 || v[0] != activeMark {
		return nil, false
	}
	r := activeReader{v: v[1:]}
	exp, start, count := r.uvarint(), r.uvarint(), r.uvarint()
	attempts := r.float()
	origin, reason := r.str(), r.str()
	n := r.uvarint()
	if n > maxUsers {
		return nil, false
	}
	var users []string
	for range n {
		users = append(users, r.str())
	}
	ref = []byte(r.str())
	if r.bad {
		return nil, false
	}
	if b != nil {
		*b = Ban{Start: time.Unix(0, int64(start)), Count: int(count), Attempts: attempts, Origin: origin, Reason: reason, Users: users}
		if exp != 0 {
			b.Expires = time.Unix(0, int64(exp))
		}
		if len(ref) > 8 {
			b.Prefix, _ = netip.ParsePrefix(string(ref[8:]))
		}
	}
	return ref, true
}

// decodeHeld reads of a bans bucket record (k, v) what EachInForce gives,
// with no allocation but a new origin's (kept in origins); false for a
// value of another layout or a damaged one.
func decodeHeld(k, v []byte, b *Ban, origins map[string]string) bool {
	if len(v) < 1 || v[0] != activeMark {
		return false
	}
	r := activeReader{v: v[1:]}
	exp, start, count := r.uvarint(), r.uvarint(), r.uvarint()
	r.float()
	o := r.bytes()
	origin, ok := origins[string(o)]
	if !ok && !r.bad && len(origins) < 64 {
		origin = string(o)
		origins[origin] = origin
	} else if !ok {
		origin = string(o)
	}
	r.bytes() // the reason
	n := r.uvarint()
	if n > maxUsers {
		return false
	}
	for range n {
		r.bytes()
	}
	r.bytes() // the history key
	if r.bad {
		return false
	}
	p, err := netip.ParsePrefix(string(k))
	if err != nil {
		return false
	}
	*b = Ban{Prefix: p, Start: time.Unix(0, int64(start)), Count: int(count), Origin: origin}
	if exp != 0 {
		b.Expires = time.Unix(0, int64(exp))
	}
	return true
}

// parseActive is a bans bucket value's expiry and history key.
func parseActive(v []byte) (exp uint64, ref []byte, ok bool) {
	if len(v) < 2 || v[0] != activeMark {
		return 0, nil, false
	}
	exp, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, nil, false
	}
	ref, ok = decodeActive(v, nil)
	return exp, ref, ok
}

// activeReader reads the fields of a compact record; bad is set at the
// first that does not fit.
type activeReader struct {
	v   []byte
	bad bool
}

func (r *activeReader) uvarint() uint64 {
	x, n := binary.Uvarint(r.v)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.v = r.v[n:]
	return x
}

func (r *activeReader) float() float64 {
	if len(r.v) < 8 {
		r.bad = true
		return 0
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(r.v))
	r.v = r.v[8:]
	return f
}

func (r *activeReader) str() string { return string(r.bytes()) }

// bytes is the next string field, not copied.
func (r *activeReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.v)) {
		r.bad = true
		return nil
	}
	s := r.v[:n]
	r.v = r.v[n:]
	return s
}

func expiryKey(exp uint64, k []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, exp), k...)
}

// RecordBans records bans in one transaction (one disk sync): each is
// stored as the active ban of its prefix, appended to the history and
// counted for its offender (b.Count is set from the offender record: 1 for
// a first ban). In the same transaction it puts in the outbox what alert
// returns for each recorded ban (with its Count set), and in the share
// outbox, for the fleet, what share returns (a ban is never recorded but
// not shared, nor shared but not recorded); a nil function, or a nil or
// empty result, puts nothing. It returns the outbox ids (0 where alert
// gave nothing).
func (d *DB) RecordBans(bans []*Ban, alert, share func(*Ban) []byte) ([]uint64, error) {
	ids := make([]uint64, len(bans))
	var t theirs
	err := d.updateCalling(&t, func(tx *bolt.Tx) error {
		for i, b := range bans {
			if err := recordBan(tx, b); err != nil {
				return err
			}
			if alert != nil {
				var msg []byte
				t.call(func() { msg = alert(b) })
				var err error
				if ids[i], err = enqueue(tx, msg); err != nil {
					return err
				}
			}
			if share != nil {
				var msg []byte
				t.call(func() { msg = share(b) })
				if err := enqueueIn(tx, bktShare, msg); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return ids, err
}

// recordBan counts b for its offender (setting b.Count; a shared ban is
// not counted, its Count is 0), writes its history record and makes it
// the prefix's ban in force.
func recordBan(tx *bolt.Tx, b *Ban) error {
	k := pkey(b.Prefix)
	if b.Shared() {
		b.Count = 0
		return putBan(tx, k, b)
	}
	var off Offender
	if v := tx.Bucket(bktOffenders).Get(k); v != nil {
		if err := json.Unmarshal(v, &off); err != nil {
			return fmt.Errorf("offender %s: %w", k, err)
		}
		if err := tx.Bucket(bktLastBan).Delete(append(timeKey(off.LastBan), k...)); err != nil {
			return err
		}
	}
	off.Bans++
	off.LastBan = b.Start
	b.Count = off.Bans
	if err := putJSON(dense(tx, bktOffenders), k, off); err != nil {
		return err
	}
	if err := appendOnly(tx, bktLastBan).Put(append(timeKey(b.Start), k...), nil); err != nil {
		return err
	}
	return putBan(tx, k, b)
}

// putBan writes b's history record and makes it the ban in force of its
// prefix (key k).
func putBan(tx *bolt.Tx, k []byte, b *Ban) error {
	if err := putPacked(appendOnly(tx, bktHistory), BanRef(b), b); err != nil {
		return err
	}
	if err := unindex(tx, k); err != nil {
		return err
	}
	v := activeValue(b)
	if err := dense(tx, bktBans).Put(k, v); err != nil {
		return err
	}
	if exp, _, _ := parseActive(v); exp != 0 {
		return dense(tx, bktExpiry).Put(expiryKey(exp, k), nil)
	}
	return nil
}

// unindex removes prefix k's ban in force, if any, from the indexes.
func unindex(tx *bolt.Tx, k []byte) error {
	bb := tx.Bucket(bktBans)
	v := bb.Get(k)
	if v == nil {
		return nil
	}
	if exp, _, ok := parseActive(v); ok && exp != 0 {
		if err := tx.Bucket(bktExpiry).Delete(expiryKey(exp, k)); err != nil {
			return err
		}
	}
	return bb.Delete(k)
}

// Offender returns the offender record of p (zero if never banned).
func (d *DB) Offender(p netip.Prefix) (Offender, error) {
	offs, err := d.Offenders([]netip.Prefix{p})
	return offs[0], err
}

// Offenders returns the offender records of ps, in one read.
func (d *DB) Offenders(ps []netip.Prefix) ([]Offender, error) {
	out := make([]Offender, len(ps))
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktOffenders)
		for i, p := range ps {
			if v := b.Get(pkey(p)); v != nil {
				if err := json.Unmarshal(v, &out[i]); err != nil {
					return fmt.Errorf("offender %s: %w", p, err)
				}
			}
		}
		return nil
	})
	return out, err
}

// Lift removes p's ban and, in the same transaction, puts share (unless
// nil) in the share outbox. It returns ErrNotFound if p has no ban in
// force (the history keeps it).
func (d *DB) Lift(p netip.Prefix, share []byte) error {
	var fn func(netip.Prefix) []byte
	if share != nil {
		fn = func(netip.Prefix) []byte { return share }
	}
	lifted, err := d.LiftMany([]netip.Prefix{p}, fn)
	if err == nil && len(lifted) == 0 {
		err = ErrNotFound
	}
	return err
}

// LiftMany removes the bans of ps in one transaction, putting in the
// share outbox what share returns for each (nil: share nothing), and
// returns those that had a ban in force.
func (d *DB) LiftMany(ps []netip.Prefix, share func(netip.Prefix) []byte) ([]netip.Prefix, error) {
	var lifted []netip.Prefix
	var t theirs
	err := d.updateCalling(&t, func(tx *bolt.Tx) error {
		lifted = lifted[:0]
		for _, p := range ps {
			if tx.Bucket(bktBans).Get(pkey(p)) == nil {
				continue
			}
			if share != nil {
				var msg []byte
				t.call(func() { msg = share(p) })
				if err := enqueueIn(tx, bktShare, msg); err != nil {
					return err
				}
			}
			if err := unindex(tx, pkey(p)); err != nil {
				return err
			}
			lifted = append(lifted, p)
		}
		return nil
	})
	return lifted, err
}

// DamagedRecord reports whether p's record in the bans bucket (a dry
// run's: in the dryrun bucket) is one that does not decode: left out of
// every read (Damaged), and deleted by lifting p.
func (d *DB) DamagedRecord(p netip.Prefix, dryRun bool) (bool, error) {
	damaged := false
	err := d.view(func(tx *bolt.Tx) error {
		if dryRun {
			var b Ban
			v := tx.Bucket(bktDryRun).Get(pkey(p))
			damaged = v != nil && unpack(v, &b) != nil
			return nil
		}
		v := tx.Bucket(bktBans).Get(pkey(p))
		_, _, ok := activeTimes(v)
		damaged = v != nil && !ok
		return nil
	})
	return damaged, err
}

// ActiveBan returns p's ban in force, or ErrNotFound.
func (d *DB) ActiveBan(p netip.Prefix, now time.Time) (Ban, error) {
	var b Ban
	err := d.view(func(tx *bolt.Tx) error {
		exp, ref, ok := parseActive(tx.Bucket(bktBans).Get(pkey(p)))
		if !ok || exp != 0 && int64(exp) <= now.UnixNano() {
			return ErrNotFound
		}
		h := tx.Bucket(bktHistory).Get(ref)
		if h == nil {
			return ErrNotFound
		}
		return unpack(h, &b)
	})
	return b, err
}

// expire takes the bans that expired by now out of the indexes: it reads
// only those (the expiry index is ordered by time).
func expire(tx *bolt.Tx, now time.Time) error {
	c := tx.Bucket(bktExpiry).Cursor()
	limit := timeKey(now)
	var done [][]byte
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) <= 0; k, _ = c.Next() {
		done = append(done, append([]byte(nil), k...))
	}
	bb, eb := tx.Bucket(bktBans), tx.Bucket(bktExpiry)
	for _, k := range done {
		if err := eb.Delete(k); err != nil {
			return err
		}
		// The prefix's entry, unless a newer ban replaced it.
		if v := bb.Get(k[8:]); v != nil {
			if exp, _, ok := parseActive(v); ok && bytes.Equal(binary.BigEndian.AppendUint64(nil, exp), k[:8]) {
				if err := bb.Delete(k[8:]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// expire runs expire in a write transaction, when there is something to
// expire (a write transaction costs a disk sync).
func (d *DB) expire(now time.Time) error {
	due := false
	d.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bktExpiry).Cursor().First()
		due = k != nil && bytes.Compare(k[:8], timeKey(now)) <= 0
		return nil
	})
	if !due {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error { return expire(tx, now) })
}

// Expire takes the bans that ended by now out of the index of bans in
// force (their history stays).
func (d *DB) Expire(now time.Time) error { return d.expire(now) }

// CountActive returns how many bans are in force at now (after taking the
// expired ones out): no ban record is read.
func (d *DB) CountActive(now time.Time) (int, error) {
	if err := d.expire(now); err != nil {
		return 0, err
	}
	n := 0
	err := d.view(func(tx *bolt.Tx) error {
		// Stats counts the committed pages (not a write transaction's
		// changes, hence the second transaction).
		n = tx.Bucket(bktBans).Stats().KeyN
		return nil
	})
	return n, err
}

// ActiveBans returns the bans in force at now, and takes expired ones out
// of the index (they stay in the history). Records that do not decode
// are left out (InForce counts them).
func (d *DB) ActiveBans(now time.Time) ([]Ban, error) {
	if err := d.expire(now); err != nil {
		return nil, err
	}
	bans, _, err := d.InForce(now)
	return bans, err
}

// InForce returns the bans in force at now, like ActiveBans, but only
// reads: expired records are left for the next ActiveBans to remove. The
// records that do not decode are left out, and counted in damaged.
func (d *DB) InForce(now time.Time) (bans []Ban, damaged Damaged, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bktBans)
		bans = make([]Ban, 0, bb.Stats().KeyN)
		return bb.ForEach(func(k, v []byte) error {
			var b Ban
			if _, ok := decodeActive(v, &b); !ok || !isPrefix(k) {
				damaged.add(k)
				return nil
			}
			if b.Active(now) {
				bans = append(bans, b)
			}
			return nil
		})
	})
	return bans, damaged, err
}

// NewestInForce returns how many bans are in force at now and the newest
// limit of them (by start, newest first), in memory and work for limit
// bans whatever the total: each record is read in place, and only the
// kept ones are decoded. The API's list, which a dashboard asks for every
// few seconds while a wave holds 100,000 bans. The records that do not
// decode are left out, and counted in damaged.
func (d *DB) NewestInForce(now time.Time, limit int) (total int, bans []Ban, damaged Damaged, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		bb := tx.Bucket(bktBans)
		var h newest
		err := bb.ForEach(func(k, v []byte) error {
			exp, start, ok := activeTimes(v)
			if !ok || !isPrefix(k) {
				damaged.add(k)
				return nil
			}
			if exp != 0 && !now.Before(time.Unix(0, int64(exp))) {
				return nil
			}
			total++
			if limit <= 0 {
				return nil
			}
			if len(h) < limit {
				heap.Push(&h, held{start, string(k)})
			} else if start > h[0].start || (start == h[0].start && string(k) < h[0].key) {
				h[0] = held{start, string(k)}
				heap.Fix(&h, 0)
			}
			return nil
		})
		if err != nil {
			return err
		}
		bans = make([]Ban, len(h))
		for i := len(h) - 1; i >= 0; i-- {
			e := heap.Pop(&h).(held)
			// activeTimes checked the whole record: it decodes.
			decodeActive(bb.Get([]byte(e.key)), &bans[i])
		}
		return nil
	})
	return total, bans, damaged, err
}

// activeTimes is a bans bucket value's expiry and start, read in place;
// false, as decodeActive, for a value of another layout or a damaged one
// (every field is walked, none copied).
func activeTimes(v []byte) (exp, start uint64, ok bool) {
	if len(v) < 1 || v[0] != activeMark {
		return 0, 0, false
	}
	r := activeReader{v: v[1:]}
	exp, start = r.uvarint(), r.uvarint()
	r.uvarint() // the count
	r.float()
	r.bytes() // the origin
	r.bytes() // the reason
	n := r.uvarint()
	if n > maxUsers {
		return 0, 0, false
	}
	for range n {
		r.bytes()
	}
	r.bytes() // the history key
	return exp, start, !r.bad
}

// held is a ban NewestInForce keeps: its start and key.
type held struct {
	start uint64
	key   string
}

// newest is a min-heap of held, the oldest (and, at one start, the
// greatest key) on top: the one to drop for a newer.
type newest []held

func (h newest) Len() int { return len(h) }
func (h newest) Less(i, j int) bool {
	if h[i].start != h[j].start {
		return h[i].start < h[j].start
	}
	return h[i].key > h[j].key
}
func (h newest) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *newest) Push(x any)   { *h = append(*h, x.(held)) }
func (h *newest) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// EachInForce calls fn with the bans in force at now, n at a time (fn may
// keep the slice), with only what the kernel and the gate need of each:
// Prefix, Start, Expires, Origin and Count (restoring a wave's bans
// writes the first to the kernel while the next are read). The records
// that do not decode are left out, and counted in damaged.
func (d *DB) EachInForce(now time.Time, n int, fn func([]Ban) error) (damaged Damaged, err error) {
	origins := map[string]string{} // a few origins, shared by thousands of bans
	var t theirs
	give := func(batch []Ban) (err error) {
		t.call(func() { err = fn(batch) })
		return err
	}
	err = d.viewCalling(&t, func(tx *bolt.Tx) error {
		batch := make([]Ban, 0, n)
		err := tx.Bucket(bktBans).ForEach(func(k, v []byte) error {
			var b Ban
			if !decodeHeld(k, v, &b, origins) {
				damaged.add(k)
				return nil
			}
			if !b.Active(now) {
				return nil
			}
			if batch = append(batch, b); len(batch) == n {
				if err := give(batch); err != nil {
					return err
				}
				batch = make([]Ban, 0, n)
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = give(batch)
		}
		return err
	})
	return damaged, err
}

// Banned returns which of addrs a ban in force at now covers (a ban of
// the address or of any prefix holding it): at most 129 lookups each.
func (d *DB) Banned(addrs []netip.Addr, now time.Time) (map[netip.Addr]bool, error) {
	out := map[netip.Addr]bool{}
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktBans)
		for _, a := range addrs {
			for bits := a.BitLen(); bits >= 0; bits-- {
				exp, _, ok := parseActive(b.Get(pkey(netip.PrefixFrom(a, bits))))
				if ok && (exp == 0 || int64(exp) > now.UnixNano()) {
					out[a] = true
					break
				}
			}
		}
		return nil
	})
	return out, err
}

// History returns the bans that started at or after since (zero: all),
// oldest first.
func (d *DB) History(since time.Time) ([]Ban, error) { return from[Ban](d, bktHistory, since) }

// migrateCompact turns the bans bucket of schema 2 (prefix -> expiry and
// history key) into schema 3's compact records, read from the history.
func migrateCompact(tx *bolt.Tx) error {
	bb, hb := tx.Bucket(bktBans), tx.Bucket(bktHistory)
	type rec struct{ k, v []byte }
	var recs []rec
	err := bb.ForEach(func(k, v []byte) error {
		if len(v) > 0 && v[0] == activeMark {
			return nil // compact already (migrated from schema 1 just now)
		}
		if len(v) < 16 {
			return fmt.Errorf("ban %s: a record of %d bytes", k, len(v))
		}
		var b Ban
		h := hb.Get(v[8:])
		if h == nil {
			return fmt.Errorf("ban %s: its history record is missing", k)
		}
		if err := unpack(h, &b); err != nil {
			return fmt.Errorf("ban %s: %w", k, err)
		}
		recs = append(recs, rec{append([]byte(nil), k...), activeValue(&b)})
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := bb.Put(r.k, r.v); err != nil {
			return err
		}
	}
	return nil
}

// migrateBans turns the bans bucket of schema 1 (prefix -> the ban in
// full, also copied in the history) into the index of schema 2, and
// indexes the offenders by their last ban.
func migrateBans(tx *bolt.Tx) error {
	err := tx.Bucket(bktOffenders).ForEach(func(k, v []byte) error {
		var off Offender
		if err := json.Unmarshal(v, &off); err != nil {
			return fmt.Errorf("offender %s: %w", k, err)
		}
		return tx.Bucket(bktLastBan).Put(append(timeKey(off.LastBan), k...), nil)
	})
	if err != nil {
		return err
	}
	bb := tx.Bucket(bktBans)
	type old struct {
		k []byte
		b Ban
	}
	var all []old
	err = bb.ForEach(func(k, v []byte) error {
		var b Ban
		if err := json.Unmarshal(v, &b); err != nil {
			return fmt.Errorf("ban %s: %w", k, err)
		}
		all = append(all, old{append([]byte(nil), k...), b})
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range all {
		if err := bb.Delete(o.k); err != nil {
			return err
		}
		if tx.Bucket(bktHistory).Get(BanRef(&o.b)) == nil {
			if err := putJSON(tx.Bucket(bktHistory), BanRef(&o.b), o.b); err != nil {
				return err
			}
		}
		v := activeValue(&o.b)
		if err := bb.Put(o.k, v); err != nil {
			return err
		}
		if exp, _, _ := parseActive(v); exp != 0 {
			if err := tx.Bucket(bktExpiry).Put(expiryKey(exp, o.k), nil); err != nil {
				return err
			}
		}
	}
	return nil
}
