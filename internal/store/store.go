// Package store keeps sshguard-go's state in one BoltDB file: active bans
// and their history, offenders (how often a prefix was banned, for
// escalation), the allowlist, and source read positions. Only the daemon
// writes it; the CLI opens it directly only when no daemon runs.
package store

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 3

var (
	// ErrNotFound is returned when a ban, allowlist entry or position
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by Open when another process (normally the
	// running daemon) holds the database.
	ErrLocked = errors.New("database is in use by another process (is the daemon running?)")
	// ErrCorrupt is returned by Open when the file is not a usable
	// database, and by any later read or write that meets a damaged
	// page.
	ErrCorrupt = errors.New("database file is damaged")
	// ErrBadRecord is returned by a read of one record that does not
	// decode, in a file whose pages are whole (Position).
	ErrBadRecord = errors.New("a damaged record")
)

var (
	bktMeta      = []byte("meta")
	bktBans      = []byte("bans")      // prefix -> expiry + history key of its ban in force (bans.go)
	bktExpiry    = []byte("expiry")    // expiry time + prefix -> nothing, for the bans in force that expire
	bktHistory   = []byte("history")   // start time + prefix -> Ban, every ban with its evidence
	bktOffenders = []byte("offenders") // prefix -> Offender
	bktLastBan   = []byte("lastban")   // last ban time + prefix -> nothing: offenders by age, for pruning
	bktAllow     = []byte("allow")     // prefix -> AllowEntry
	bktPositions = []byte("positions") // source name -> raw position
	// Alerts, logins and counts (outbox.go, logins.go). Buckets added
	// later are created on open; an older binary ignores them.
	bktOutbox  = []byte("outbox")  // alert id -> alert and its delivery state per channel (opaque)
	bktPending = []byte("pending") // alert id -> nothing, while a channel still has to deliver it
	bktLogins  = []byte("logins")  // time + user + address -> Login
	bktSeen    = []byte("seen")    // user NUL address-or-network -> last login time
	bktDaily   = []byte("daily")   // UTC hour "2006-01-02T15" -> Counts
	// Sessions (sessions.go).
	bktSessions = []byte("sessions")         // start time + host NUL pid -> session (opaque)
	bktLive     = []byte("live")             // the same key -> nothing, while the session is open
	bktSesCmds  = []byte("session_commands") // session key NUL sequence -> commands appended to it (opaque)
	// Fleet (share.go).
	bktShare = []byte("share") // sequence -> a ban or unban to publish to the fleet (opaque)
	// Dry run (dryrun.go).
	bktDryRun = []byte("dryrun") // prefix -> the ban a dry run would have made, its newest
	buckets   = [][]byte{bktMeta, bktBans, bktExpiry, bktHistory, bktOffenders, bktLastBan, bktAllow, bktPositions, bktOutbox, bktPending, bktLogins, bktSeen, bktDaily,
		bktSessions, bktLive, bktSesCmds, bktShare, bktDryRun}
)

// DB is an open state database.
type DB struct {
	db   *bolt.DB
	path string
}

// Offender is what escalation needs to know about a prefix.
type Offender struct {
	Bans    int       `json:"bans"`
	LastBan time.Time `json:"last_ban"`
}

// AllowEntry is an allowlist entry added from the CLI.
type AllowEntry struct {
	Prefix  netip.Prefix `json:"prefix"`
	Comment string       `json:"comment,omitempty"`
	Added   time.Time    `json:"added"`
	// Lifted are the bans in force the entry lifted when it was added
	// (at most MaxLifted), made again when it is removed if they have not
	// ended by then.
	Lifted []Ban `json:"lifted,omitempty"`
}

// MaxLifted bounds the bans an allowlist entry remembers having lifted.
const MaxLifted = 1000

// Open opens or creates the database at path with mode 0600. It waits at
// most timeout for another process's lock and then returns ErrLocked; a
// damaged file gives ErrCorrupt with the file named and what to do.
func Open(path string, timeout time.Duration) (d *DB, err error) {
	// bbolt asserts its pages' consistency with panics: a damaged file is
	// reported as damaged, with what to do, instead of a crash.
	var db *bolt.DB
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true)) // as guard does
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				db.Close()
			}
			d, err = nil, corrupt("open store", path, fmt.Errorf("%v", r))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, openError(path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Grow the file 2 MB at a time (bbolt's default is 16 MB): the file
	// then tracks what it holds, which is what an administrator sees.
	db.AllocSize = 2 << 20
	d = &DB{db: db, path: path}
	if err := d.init(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// openError is what Open returns when bbolt could not open path.
func openError(path string, err error) error {
	switch {
	case errors.Is(err, bolterr.ErrTimeout):
		return fmt.Errorf("open store %s: %w", path, ErrLocked)
	case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrChecksum),
		errors.Is(err, bolterr.ErrVersionMismatch), errors.Is(err, bolterr.ErrInvalidMapping):
		return corrupt("open store", path, err)
	}
	return fmt.Errorf("open store %s: %w", path, err)
}

// corrupt is the error for the damaged file path, found by op ("open
// store" at Open, "store" later) with cause: ErrCorrupt, and what to do.
func corrupt(op, path string, cause error) error {
	return fmt.Errorf("%s %s: %w (%v); move it aside with `mv %s %s.damaged` and start again: "+
		"active bans are then taken back from the kernel set, history and the allowlist added with the CLI are lost",
		op, path, ErrCorrupt, cause, path, path)
}

// init creates the buckets and checks the schema version.
func (d *DB) init() error {
	err := d.update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		v := meta.Get([]byte("schema"))
		var have uint32
		switch {
		case v == nil:
			have = SchemaVersion // a new file
		case len(v) != 4:
			return fmt.Errorf("schema version record is %d bytes", len(v))
		default:
			have = binary.BigEndian.Uint32(v)
		}
		if have > SchemaVersion {
			return fmt.Errorf("schema version %d is newer than this sshguard-go understands (%d); upgrade sshguard-go", have, SchemaVersion)
		}
		if have < 2 {
			if err := migrateBans(tx); err != nil {
				return fmt.Errorf("migrate to schema 2: %w", err)
			}
		}
		if have < 3 {
			if err := migrateCompact(tx); err != nil {
				return fmt.Errorf("migrate to schema 3: %w", err)
			}
		}
		if meta.Get([]byte("instance")) == nil {
			id := make([]byte, 8)
			rand.Read(id)
			if err := meta.Put([]byte("instance"), []byte(hex.EncodeToString(id))); err != nil {
				return err
			}
		}
		if have != SchemaVersion || v == nil {
			return meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion))
		}
		return nil
	})
	if errors.Is(err, ErrCorrupt) {
		return err // named and explained already
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", d.path, err)
	}
	return nil
}

// Instance returns the database's own random id, made when it was
// created: what tells apart the alerts of two databases (two hosts, or a
// database recreated) whose outbox ids are the same.
func (d *DB) Instance() string {
	var id string
	d.view(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bktMeta).Get([]byte("instance")))
		return nil
	})
	return id
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Path returns the database file name.
func (d *DB) Path() string { return d.path }

func pkey(p netip.Prefix) []byte { return []byte(p.Masked().String()) }

// from decodes the records of a bucket keyed by time (8 bytes of Unix
// nanoseconds first) from t on, oldest first; the zero t means all.
func from[T any](d *DB, bkt []byte, t time.Time) ([]T, error) {
	return records[T](d, bkt, t, false, -1)
}

// newestFrom is the newest n records of bkt at or after t, newest first:
// n read, whatever the bucket holds.
func newestFrom[T any](d *DB, bkt []byte, t time.Time, n int) ([]T, error) {
	return records[T](d, bkt, t, true, n)
}

// records decodes the records of bkt keyed at or after t, oldest first
// or newest first, at most n of them (n < 0: all).
func records[T any](d *DB, bkt []byte, t time.Time, newestFirst bool, n int) ([]T, error) {
	var out []T
	lo := timeKey(t)
	err := d.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bkt).Cursor()
		k, v := c.Seek(lo)
		next := c.Next
		if newestFirst {
			k, v = c.Last()
			next = c.Prev
		}
		for ; k != nil && bytes.Compare(k, lo) >= 0 && (n < 0 || len(out) < n); k, v = next() {
			var rec T
			if err := unpack(v, &rec); err != nil {
				return fmt.Errorf("%s record: %w", bkt, err)
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// timeKey is the 8-byte big-endian Unix nanoseconds of t (0 before 1970).
func timeKey(t time.Time) []byte {
	var n uint64
	if t.After(time.Unix(0, 0)) {
		n = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(nil, n)
}

// Allow adds or replaces an allowlist entry.
func (d *DB) Allow(e AllowEntry) error {
	return d.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bktAllow), pkey(e.Prefix), e)
	})
}

// Disallow removes an allowlist entry, or returns ErrNotFound.
func (d *DB) Disallow(p netip.Prefix) error {
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktAllow)
		if b.Get(pkey(p)) == nil {
			return ErrNotFound
		}
		return b.Delete(pkey(p))
	})
}

// Allowlist returns the entries added with Allow.
func (d *DB) Allowlist() ([]AllowEntry, error) {
	var out []AllowEntry
	err := d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bktAllow).ForEach(func(_, v []byte) error {
			var e AllowEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// SavePosition stores a source's read position (any JSON value).
func (d *DB) SavePosition(source string, pos any) error {
	return d.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bktPositions), []byte(source), pos)
	})
}

// Position loads a source's read position into pos, or returns
// ErrNotFound; a record that does not decode into pos is ErrBadRecord,
// naming the file and source (pos may then hold part of it).
func (d *DB) Position(source string, pos any) error {
	return d.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktPositions).Get([]byte(source))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, pos); err != nil {
			return fmt.Errorf("store %s: the position of %q: %w (%v)", d.path, source, ErrBadRecord, err)
		}
		return nil
	})
}

// appendOnly returns the bucket name of tx, set to fill its pages: its
// keys grow (times, sequence numbers), so new keys land on the last page,
// and bbolt's default (split pages half full, for random inserts) would
// leave every page half empty.
func appendOnly(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = 1
	return b
}

// dense returns the bucket name of tx, set to fill its pages to 90% when
// they split instead of bbolt's 50%: a wave inserts 100,000 prefixes at
// once, and half-empty pages doubled the file. Later inserts into a full
// page split it again; bbolt merges pages that deletes left under 25%.
func dense(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = 0.9
	return b
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// Records longer than this are stored deflated (a ban's history record
// with its evidence lines: 417 bytes of JSON become 226), marked by a
// first byte that JSON never starts with.
const (
	compressOver   = 256
	markCompressed = 0x01
)

// flater is one deflate writer for every record (making one costs
// 600 KB): bbolt runs one write transaction at a time anyway. (A
// sync.Pool dropped it at every collection under the race detector, and
// a wave's records took seconds.)
var flater struct {
	sync.Mutex
	w *flate.Writer
}

// putPacked stores v as JSON, deflated when long.
func putPacked(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(data) > compressOver {
		var buf bytes.Buffer
		buf.WriteByte(markCompressed)
		flater.Lock()
		if flater.w == nil {
			flater.w, _ = flate.NewWriter(nil, flate.BestSpeed)
		}
		flater.w.Reset(&buf)
		flater.w.Write(data)
		err := flater.w.Close()
		flater.Unlock()
		if err != nil {
			return err
		}
		data = buf.Bytes()
	}
	return b.Put(k, data)
}

// unpack decodes a value stored by putJSON or putPacked into v.
func unpack(data []byte, v any) error {
	if len(data) > 0 && data[0] == markCompressed {
		r := flate.NewReader(bytes.NewReader(data[1:]))
		defer r.Close()
		return json.NewDecoder(r).Decode(v)
	}
	return json.Unmarshal(data, v)
}
