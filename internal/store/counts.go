package store

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Counts are the events of one hour: per kind, the counted attempts per
// client address and per user tried (each map bounded by MaxCountKeys;
// further keys go to "other"), and the hour's totals. Every field adds up
// over hours, so a day or a week is the sum of its hours.
type Counts struct {
	Kinds map[string]int64 `json:"kinds,omitempty"`
	Addrs map[string]Tries `json:"addrs,omitempty"`
	Users map[string]int64 `json:"users,omitempty"` // counted failed attempts per user

	Failed int64 `json:"failed,omitempty"` // counted failed attempts
	Probes int64 `json:"probes,omitempty"` // counted probes
	Bans   int64 `json:"bans,omitempty"`   // bans started
	// Conns and Addresses are the distinct connections (host and sshd
	// pid) and client addresses that logged in this hour; DayConns and
	// DayAddresses those of them seen first in their day (in the daemon's
	// time zone) in this hour, so that a day's sum counts each once.
	Conns        int64 `json:"conns,omitempty"`
	Addresses    int64 `json:"addresses,omitempty"`
	DayConns     int64 `json:"day_conns,omitempty"`
	DayAddresses int64 `json:"day_addresses,omitempty"`
}

// Logins is the hour's successful logins.
func (c *Counts) Logins() int64 { return c.Kinds["success"] }

// Tries are an address's counted failed attempts and probes.
type Tries struct{ Failed, Probes int64 }

// MarshalJSON writes t as [failed, probes].
func (t Tries) MarshalJSON() ([]byte, error) { return json.Marshal([2]int64{t.Failed, t.Probes}) }

// UnmarshalJSON reads [failed, probes], or the single weighted number
// of databases written before probes were kept apart (taken as failed).
func (t *Tries) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] != '[' {
		var f float64
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		*t = Tries{Failed: int64(math.Round(f))}
		return nil
	}
	var a [2]int64
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*t = Tries{a[0], a[1]}
	return nil
}

// Cmp orders tries by failed attempts, then probes, most first.
func (t Tries) Cmp(o Tries) int {
	return cmp.Or(cmp.Compare(o.Failed, t.Failed), cmp.Compare(o.Probes, t.Probes))
}

// MaxCountKeys bounds the addresses and the users kept per hour.
const MaxCountKeys = 5000

func (c *Counts) init() {
	if c.Kinds == nil { // each apart: an hour stored without users or addresses decodes without them
		c.Kinds = map[string]int64{}
	}
	if c.Addrs == nil {
		c.Addrs = map[string]Tries{}
	}
	if c.Users == nil {
		c.Users = map[string]int64{}
	}
}

// Add counts one event of kind; a counted failed attempt (probe) is
// counted for addr, and a counted failed attempt for user too.
func (c *Counts) Add(kind, addr, user string, failed, probe bool) {
	c.AddN(kind, addr, user, failed, probe, 1)
}

// AddN is Add of a line that counted n attempts (rsyslog's "message
// repeated n times", a PAM tally): the line once, its attempts n times.
func (c *Counts) AddN(kind, addr, user string, failed, probe bool, n int64) {
	c.init()
	c.Kinds[kind]++
	n = max(n, 1)
	switch {
	case failed:
		c.Failed += n
		if user != "" {
			c.Users[bounded(c.Users, user)] += n
		}
	case probe:
		c.Probes += n
	default:
		return
	}
	if addr != "" {
		k := bounded(c.Addrs, addr)
		t := c.Addrs[k]
		if failed {
			t.Failed += n
		} else {
			t.Probes += n
		}
		c.Addrs[k] = t
	}
}

// TakeBackProbe takes back a probe counted for addr: its connection then
// failed, and counts as its failures (detect.Event.TakesBackProbe). In
// counts gathered since a flush the probe may be in the stored hour:
// Probes then go below 0 here, and Merge takes it from there.
func (c *Counts) TakeBackProbe(addr string) {
	c.init()
	c.Probes--
	if addr != "" {
		k := bounded(c.Addrs, addr)
		t := c.Addrs[k]
		t.Probes--
		setTries(c.Addrs, k, t)
	}
}

// setTries sets m[k] to t, or deletes k when t is nothing (a probe taken
// back): an address without attempts is not listed.
func setTries(m map[string]Tries, k string, t Tries) {
	if t == (Tries{}) {
		delete(m, k)
	} else {
		m[k] = t
	}
}

// Merge adds o to c.
func (c *Counts) Merge(o Counts) {
	c.init()
	for k, v := range o.Kinds {
		c.Kinds[k] += v
	}
	for k, v := range o.Addrs {
		k = bounded(c.Addrs, k)
		t := c.Addrs[k]
		setTries(c.Addrs, k, Tries{t.Failed + v.Failed, t.Probes + v.Probes})
	}
	for k, v := range o.Users {
		c.Users[bounded(c.Users, k)] += v
	}
	c.Failed += o.Failed
	c.Probes += o.Probes
	c.Bans += o.Bans
	c.Conns += o.Conns
	c.Addresses += o.Addresses
	c.DayConns += o.DayConns
	c.DayAddresses += o.DayAddresses
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
	return d.update(func(tx *bolt.Tx) error {
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

// Hours calls fn with each stored hour that starts in [from, to), in
// time order.
func (d *DB) Hours(from, to time.Time, fn func(hour time.Time, c Counts)) error {
	var th theirs
	return d.viewCalling(&th, func(tx *bolt.Tx) error {
		c := tx.Bucket(bktDaily).Cursor()
		end := string(hourKey(to))
		for k, v := c.Seek(hourKey(from)); k != nil && string(k) < end; k, v = c.Next() {
			t, err := time.Parse("2006-01-02T15", string(k))
			if err != nil {
				continue // not an hour's key
			}
			var h Counts
			if err := json.Unmarshal(v, &h); err != nil {
				return fmt.Errorf("counts of %s: %w", k, err)
			}
			th.call(func() { fn(t, h) })
		}
		return nil
	})
}

// CountsBetween returns the sum of the hourly counts of the hours that
// start in [from, to).
func (d *DB) CountsBetween(from, to time.Time) (Counts, error) {
	var sum Counts
	err := d.Hours(from, to, func(_ time.Time, h Counts) { sum.Merge(h) })
	return sum, err
}

// Top returns the n first keys of m in order (ties by key), "other"
// left out.
func Top[V any](m map[string]V, n int, order func(a, b V) int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		if k != "other" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp.Or(order(m[a], m[b]), strings.Compare(a, b)) })
	return keys[:min(n, len(keys))]
}

// thinKeep is how many addresses and users an hour keeps once thinned.
const thinKeep = 20

// thin keeps c's thinKeep biggest addresses and users; the rest are added
// to "other". It reports whether c changed.
func (c *Counts) thin() bool {
	a := thinMap(c.Addrs, Tries.Cmp, func(x, y Tries) Tries { return Tries{x.Failed + y.Failed, x.Probes + y.Probes} })
	u := thinMap(c.Users, func(x, y int64) int { return cmp.Compare(y, x) }, func(x, y int64) int64 { return x + y })
	return a || u
}

func thinMap[V any](m map[string]V, order func(a, b V) int, add func(a, b V) V) bool {
	if len(m) <= thinKeep+1 {
		return false
	}
	keys := Top(m, len(m), order)
	for _, k := range keys[min(thinKeep, len(keys)):] {
		m["other"] = add(m["other"], m[k])
		delete(m, k)
	}
	return true
}
