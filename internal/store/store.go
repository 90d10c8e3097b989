// Package store keeps sshguard-go's state in one BoltDB file: active bans
// and their history, offenders (how often a prefix was banned, for
// escalation), the allowlist, and source read positions. Only the daemon
// writes it; the CLI opens it directly only when no daemon runs.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterr "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 1

var (
	// ErrNotFound is returned when a ban, allowlist entry or position
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by Open when another process (normally the
	// running daemon) holds the database.
	ErrLocked = errors.New("database is in use by another process (is the daemon running?)")
	// ErrCorrupt is returned by Open when the file is not a usable
	// database.
	ErrCorrupt = errors.New("database file is damaged")
)

var (
	bktMeta      = []byte("meta")
	bktBans      = []byte("bans")      // prefix -> Ban (active or expired, until pruned)
	bktHistory   = []byte("history")   // start time + prefix -> Ban
	bktOffenders = []byte("offenders") // prefix -> Offender
	bktAllow     = []byte("allow")     // prefix -> AllowEntry
	bktPositions = []byte("positions") // source name -> raw position
	// Alerts, logins and counts (outbox.go, logins.go). Buckets added
	// later are created on open; an older binary ignores them.
	bktOutbox  = []byte("outbox")  // alert id -> alert and its delivery state per channel (opaque)
	bktPending = []byte("pending") // alert id -> nothing, while a channel still has to deliver it
	bktLogins  = []byte("logins")  // time + user + address -> Login
	bktSeen    = []byte("seen")    // user NUL address-or-network -> last login time
	bktDaily   = []byte("daily")   // UTC hour "2006-01-02T15" -> Counts
	buckets    = [][]byte{bktMeta, bktBans, bktHistory, bktOffenders, bktAllow, bktPositions, bktOutbox, bktPending, bktLogins, bktSeen, bktDaily}
)

// DB is an open state database.
type DB struct {
	db   *bolt.DB
	path string
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
}

// Active reports whether b is in force at now.
func (b Ban) Active(now time.Time) bool { return b.Expires.IsZero() || now.Before(b.Expires) }

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
}

// Open opens or creates the database at path with mode 0600. It waits at
// most timeout for another process's lock and then returns ErrLocked; a
// damaged file gives ErrCorrupt with the file named and what to do.
func Open(path string, timeout time.Duration) (*DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		switch {
		case errors.Is(err, bolterr.ErrTimeout):
			return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
		case errors.Is(err, bolterr.ErrInvalid), errors.Is(err, bolterr.ErrChecksum),
			errors.Is(err, bolterr.ErrVersionMismatch), errors.Is(err, bolterr.ErrInvalidMapping):
			return nil, corrupt(path, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	d := &DB{db: db, path: path}
	if err := d.init(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func corrupt(path string, cause error) error {
	return fmt.Errorf("open store %s: %w (%v); move it aside with `mv %s %s.damaged` and start again: "+
		"active bans are then taken back from the kernel set, history and the allowlist added with the CLI are lost",
		path, ErrCorrupt, cause, path, path)
}

// init creates the buckets and checks the schema version.
func (d *DB) init() error {
	err := d.db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bktMeta)
		v := meta.Get([]byte("schema"))
		switch {
		case v == nil:
			return meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion))
		case len(v) != 4:
			return fmt.Errorf("schema version record is %d bytes", len(v))
		case binary.BigEndian.Uint32(v) > SchemaVersion:
			return fmt.Errorf("schema version %d is newer than this sshguard-go understands (%d); upgrade sshguard-go", binary.BigEndian.Uint32(v), SchemaVersion)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open store %s: %w", d.path, err)
	}
	return nil
}

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Path returns the database file name.
func (d *DB) Path() string { return d.path }

func pkey(p netip.Prefix) []byte { return []byte(p.Masked().String()) }

// RecordBan stores b as the active ban of its prefix, appends it to the
// history and counts it for the offender, in one transaction. b.Count is
// set from the offender record (1 for a first ban).
func (d *DB) RecordBan(b *Ban) error { return d.RecordBans([]*Ban{b}) }

// RecordBans records many bans in one transaction (one disk sync), as
// RecordBan does for one.
func (d *DB) RecordBans(bans []*Ban) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		for _, b := range bans {
			if err := recordBan(tx, b); err != nil {
				return err
			}
		}
		return nil
	})
}

// RecordBanAlert records b as RecordBan does and, in the same
// transaction, puts in the outbox what alert returns for the recorded ban
// (with its Count set); nil or an empty result puts nothing. It returns the
// outbox id, or 0.
func (d *DB) RecordBanAlert(b *Ban, alert func(*Ban) []byte) (uint64, error) {
	ids, err := d.RecordBanAlerts([]*Ban{b}, alert)
	return ids[0], err
}

// RecordBanAlerts records many bans in one transaction (one disk sync),
// each as RecordBanAlert does, and returns their outbox ids (0 where
// alert gave nothing).
func (d *DB) RecordBanAlerts(bans []*Ban, alert func(*Ban) []byte) ([]uint64, error) {
	ids := make([]uint64, len(bans))
	err := d.db.Update(func(tx *bolt.Tx) error {
		for i, b := range bans {
			if err := recordBan(tx, b); err != nil {
				return err
			}
			var err error
			if ids[i], err = enqueue(tx, alert(b)); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

func recordBan(tx *bolt.Tx, b *Ban) error {
	k := pkey(b.Prefix)
	var off Offender
	if v := tx.Bucket(bktOffenders).Get(k); v != nil {
		if err := json.Unmarshal(v, &off); err != nil {
			return fmt.Errorf("offender %s: %w", k, err)
		}
	}
	off.Bans++
	off.LastBan = b.Start
	b.Count = off.Bans
	if err := putJSON(tx.Bucket(bktOffenders), k, off); err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bktBans), k, b); err != nil {
		return err
	}
	hk := binary.BigEndian.AppendUint64(nil, uint64(b.Start.UnixNano()))
	return putJSON(tx.Bucket(bktHistory), append(hk, k...), b)
}

// Offender returns the offender record of p (zero if never banned).
func (d *DB) Offender(p netip.Prefix) (Offender, error) {
	var off Offender
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktOffenders).Get(pkey(p))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &off)
	})
	return off, err
}

// Offenders returns the offender records of ps, in one read.
func (d *DB) Offenders(ps []netip.Prefix) ([]Offender, error) {
	out := make([]Offender, len(ps))
	err := d.db.View(func(tx *bolt.Tx) error {
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

// Lift removes p's ban. It returns ErrNotFound if p has no recorded ban.
func (d *DB) Lift(p netip.Prefix) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktBans)
		if b.Get(pkey(p)) == nil {
			return ErrNotFound
		}
		return b.Delete(pkey(p))
	})
}

// ActiveBans returns the bans in force at now, and removes expired ones
// from the active bucket (they stay in the history).
func (d *DB) ActiveBans(now time.Time) ([]Ban, error) {
	var out []Ban
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktBans)
		var expired [][]byte
		err := b.ForEach(func(k, v []byte) error {
			var ban Ban
			if err := json.Unmarshal(v, &ban); err != nil {
				return fmt.Errorf("ban %s: %w", k, err)
			}
			if ban.Active(now) {
				out = append(out, ban)
			} else {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// History returns the bans that started at or after since (zero: all),
// oldest first.
func (d *DB) History(since time.Time) ([]Ban, error) { return from[Ban](d, bktHistory, since) }

// from decodes the records of a bucket keyed by time (8 bytes of Unix
// nanoseconds first) from t on, oldest first; the zero t means all.
func from[T any](d *DB, bkt []byte, t time.Time) ([]T, error) {
	var start uint64
	if t.After(time.Unix(0, 0)) {
		start = uint64(t.UnixNano())
	}
	var out []T
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bkt).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, start)); k != nil; k, v = c.Next() {
			var rec T
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%s record: %w", bkt, err)
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// Allow adds or replaces an allowlist entry.
func (d *DB) Allow(e AllowEntry) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bktAllow), pkey(e.Prefix), e)
	})
}

// Disallow removes an allowlist entry, or returns ErrNotFound.
func (d *DB) Disallow(p netip.Prefix) error {
	return d.db.Update(func(tx *bolt.Tx) error {
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
	err := d.db.View(func(tx *bolt.Tx) error {
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
	return d.db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bktPositions), []byte(source), pos)
	})
}

// Position loads a source's read position into pos, or returns
// ErrNotFound.
func (d *DB) Position(source string, pos any) error {
	return d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bktPositions).Get([]byte(source))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, pos)
	})
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}
