package store

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Login is a successful login as recorded.
type Login struct {
	Time   time.Time  `json:"time"`
	User   string     `json:"user"`
	Addr   netip.Addr `json:"addr"`
	Method string     `json:"method,omitempty"`
	Key    string     `json:"key,omitempty"` // key type and fingerprint
}

// LoginHistory is what the store knew about a user and a client before a
// login was recorded.
type LoginHistory struct {
	LastFromAddr time.Time // the user's previous login from this address (zero: none)
	SeenNet      bool      // the user logged in before from the address's /24 (IPv4) or /64 (IPv6)
	SeenUser     bool      // the user logged in before at all
}

// LoginNet returns the network a login's address belongs to for "new
// source" judgements: its /24 for IPv4, its /64 for IPv6.
func LoginNet(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 24).Masked()
	}
	return netip.PrefixFrom(a, 64).Masked()
}

func seenKey(user, what string) []byte { return []byte(user + "\x00" + what) }

// RecordLogin records l and, in the same transaction, puts in the outbox
// what alert returns given the history before l (nil or empty: nothing).
// It returns the outbox id, or 0.
func (d *DB) RecordLogin(l Login, alert func(LoginHistory) []byte) (uint64, error) {
	var id uint64
	err := d.db.Update(func(tx *bolt.Tx) error {
		seen := tx.Bucket(bktSeen)
		addrKey := seenKey(l.User, l.Addr.String())
		netKey := seenKey(l.User, LoginNet(l.Addr).String())
		userKey := seenKey(l.User, "")
		var h LoginHistory
		if v := seen.Get(addrKey); len(v) == 8 {
			h.LastFromAddr = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
		h.SeenNet = seen.Get(netKey) != nil
		h.SeenUser = seen.Get(userKey) != nil
		stamp := binary.BigEndian.AppendUint64(nil, uint64(l.Time.UnixNano()))
		for _, k := range [][]byte{addrKey, netKey, userKey} {
			if err := seen.Put(k, stamp); err != nil {
				return err
			}
		}
		k := append(append(stamp[:8:8], l.User+"\x00"...), l.Addr.String()...)
		if err := putJSON(tx.Bucket(bktLogins), k, l); err != nil {
			return err
		}
		var err error
		id, err = enqueue(tx, alert(h))
		return err
	})
	return id, err
}

// Logins returns the logins at or after since (zero: all), oldest first.
func (d *DB) Logins(since time.Time) ([]Login, error) { return from[Login](d, bktLogins, since) }

// Counts are the events of one hour: per kind, and the counted attempts
// per client address and per user tried (each map bounded by
// MaxCountKeys; further keys go to "other").
type Counts struct {
	Kinds map[string]int64   `json:"kinds,omitempty"`
	Addrs map[string]float64 `json:"addrs,omitempty"`
	Users map[string]int64   `json:"users,omitempty"`
}

// MaxCountKeys bounds the addresses and the users kept per hour.
const MaxCountKeys = 5000

// Add counts one event of kind; a counted attempt (weight > 0) is counted
// for addr and user too.
func (c *Counts) Add(kind, addr, user string, weight float64) {
	if c.Kinds == nil {
		c.Kinds, c.Addrs, c.Users = map[string]int64{}, map[string]float64{}, map[string]int64{}
	}
	c.Kinds[kind]++
	if weight <= 0 {
		return
	}
	if addr != "" {
		c.Addrs[bounded(c.Addrs, addr)] += weight
	}
	if user != "" {
		c.Users[bounded(c.Users, user)]++
	}
}

// Merge adds o to c.
func (c *Counts) Merge(o Counts) {
	if c.Kinds == nil {
		c.Kinds, c.Addrs, c.Users = map[string]int64{}, map[string]float64{}, map[string]int64{}
	}
	for k, v := range o.Kinds {
		c.Kinds[k] += v
	}
	for k, v := range o.Addrs {
		c.Addrs[bounded(c.Addrs, k)] += v
	}
	for k, v := range o.Users {
		c.Users[bounded(c.Users, k)] += v
	}
}

// bounded returns the key to count k under: k itself if present, a copy
// of it (k may point into a reused buffer) while there is room, else
// "other".
func bounded[V any](m map[string]V, k string) string {
	if _, ok := m[k]; ok {
		return k
	}
	if len(m) < MaxCountKeys {
		return strings.Clone(k)
	}
	return "other"
}

func hourKey(t time.Time) []byte { return []byte(t.UTC().Format("2006-01-02T15")) }

// AddCounts merges c into the stored counts of the hour of at.
func (d *DB) AddCounts(at time.Time, c Counts) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bktDaily)
		var cur Counts
		if v := b.Get(hourKey(at)); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return err
			}
		}
		cur.Merge(c)
		return putJSON(b, hourKey(at), cur)
	})
}

// CountsBetween returns the sum of the hourly counts of the hours that
// start in [from, to).
func (d *DB) CountsBetween(from, to time.Time) (Counts, error) {
	var sum Counts
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktDaily).Cursor()
		end := string(hourKey(to))
		for k, v := c.Seek(hourKey(from)); k != nil && string(k) < end; k, v = c.Next() {
			var h Counts
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			sum.Merge(h)
		}
		return nil
	})
	return sum, err
}
