package store

import (
	"encoding/binary"
	"net/netip"
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
	// Severity ("info", "warning", "high") and Tags are how the login was
	// judged when it was recorded.
	Severity string   `json:"severity,omitempty"`
	Tags     []string `json:"tags,omitempty"`
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
// what alert returns given the history before l (nil or empty: nothing);
// alert may set l's judgement (Severity, Tags) before l is written. It
// returns the outbox id, or 0.
func (d *DB) RecordLogin(l Login, alert func(LoginHistory, *Login) []byte) (uint64, error) {
	ids, err := d.RecordLogins([]Login{l}, alert)
	return ids[0], err
}

// RecordLogins records ls in order, each as RecordLogin does (each sees
// the history the ones before it made), in one transaction: a backlog's
// logins cost one disk sync, not one each. alert is called once per
// login, in order.
func (d *DB) RecordLogins(ls []Login, alert func(LoginHistory, *Login) []byte) ([]uint64, error) {
	ids := make([]uint64, len(ls))
	var t theirs
	err := d.updateCalling(&t, func(tx *bolt.Tx) error {
		seen := tx.Bucket(bktSeen)
		for i := range ls {
			l := &ls[i]
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
			var msg []byte
			t.call(func() { msg = alert(h, l) })
			k := append(append(stamp[:8:8], l.User+"\x00"...), l.Addr.String()...)
			if err := putJSON(appendOnly(tx, bktLogins), k, l); err != nil {
				return err
			}
			var err error
			if ids[i], err = enqueue(tx, msg); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// Logins returns the logins at or after since (zero: all), oldest first.
func (d *DB) Logins(since time.Time) ([]Login, error) { return from[Login](d, bktLogins, since) }

// NewestLogins returns the newest n logins at or after since, newest first.
func (d *DB) NewestLogins(since time.Time, n int) ([]Login, error) {
	return newestFrom[Login](d, bktLogins, since, n)
}
