package store

import (
	"cmp"
	"encoding/json"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

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

// thinKeep is how many addresses and users an hour keeps once thinned.
const thinKeep = 20

// thin keeps c's thinKeep biggest addresses and users; the rest are added
// to "other". It reports whether c changed.
func (c *Counts) thin() bool {
	return thinMap(c.Addrs) || thinMap(c.Users)
}

func thinMap[V int64 | float64](m map[string]V) bool {
	if len(m) <= thinKeep+1 {
		return false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "other" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b)) })
	for _, k := range keys[thinKeep:] {
		m["other"] += m[k]
		delete(m, k)
	}
	return true
}
