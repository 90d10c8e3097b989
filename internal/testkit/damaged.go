package testkit

import (
	"net/netip"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"sshguard-go/internal/store"
)

// DamagedKey is the ban whose record DamagedBansDB overwrites.
const DamagedKey = "10.2.0.7/32"

// DamagedBansDB writes at path a database of 300 bans in force for an
// hour (10.2.0.0/32 onwards, of origin), then overwrites the record of
// DamagedKey with value through bbolt itself: a record that does not
// decode, on a page that is whole.
func DamagedBansDB(tb testing.TB, path, origin string, value []byte) {
	tb.Helper()
	db, err := store.Open(path, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	bans := make([]*store.Ban, 0, 300)
	for i := range 300 {
		bans = append(bans, &store.Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 32), Start: now,
			Expires: now.Add(time.Hour), Reason: "5 failed attempts in 10m0s", Origin: origin})
	}
	RecordBans(tb, db, bans...)
	db.Close()
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	if err := raw.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("bans")).Put([]byte(DamagedKey), value) }); err != nil {
		tb.Fatal(err)
	}
}
