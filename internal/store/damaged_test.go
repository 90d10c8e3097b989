package store

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damageRecords writes, through bbolt itself, each of puts (key, value)
// into the bucket bkt of the closed database file path: records that do
// not decode, on pages that are whole.
func damageRecords(t *testing.T, path string, bkt []byte, puts ...[2][]byte) {
	t.Helper()
	raw, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	err = raw.Update(func(tx *bolt.Tx) error {
		for _, p := range puts {
			if err := tx.Bucket(bkt).Put(p[0], p[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDamagedBanRecord: a ban record that does not decode, on a page that
// is whole (a damaged value, and a damaged key), is left out of every read
// of the bans in force, which go on with the others and count and name it
// (its key printable); lifting its prefix deletes it. A dry run's damaged
// record is left out of its bans the same way. Every read stopped with
// "ban 10.2.0.7/32: a damaged record" (DryRunBans with the JSON error).
func TestDamagedBanRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var bans []*Ban
	for i := range 300 {
		bans = append(bans, &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 32), Start: now,
			Expires: now.Add(time.Hour), Reason: "5 failed attempts in 10m0s", Origin: "detected"})
	}
	mustRecord(t, d, bans...)
	if _, err := d.RecordDryRun([]*Ban{{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: now, Expires: now.Add(time.Hour)},
		{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Start: now, Expires: now.Add(time.Hour)}}, func(*Ban) []byte { return nil }); err != nil {
		t.Fatal(err)
	}
	d.Close()
	const hostile = "\x1b]0;pwned\x07"
	damageRecords(t, path, bktBans,
		[2][]byte{[]byte("10.2.0.7/32"), {activeMark, 0xff, 0xff}},
		[2][]byte{[]byte(hostile), activeValue(bans[8])}) // a key that is no prefix, a value that decodes
	damageRecords(t, path, bktDryRun, [2][]byte{[]byte("192.0.2.1/32"), []byte("{not json")})
	wantKeys := []string{`"\x1b]0;pwned\a"`, "10.2.0.7/32"} // in key order
	damaged := netip.MustParsePrefix("10.2.0.7/32")

	for _, readOnly := range []bool{true, false} {
		t.Run(fmt.Sprint("read-only ", readOnly), func(t *testing.T) {
			open := Open
			if readOnly {
				open = OpenReadOnly
			}
			d, err := open(path, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			check := func(what string, n int, dmg Damaged, err error) {
				t.Helper()
				if err != nil || n != 299 || dmg.N != 2 || !slices.Equal(dmg.Keys, wantKeys) {
					t.Errorf("%s: %d bans, damaged %+v, %v; want 299, and %q", what, n, dmg, err, wantKeys)
				}
			}
			all, dmg, err := d.InForce(now)
			check("InForce", len(all), dmg, err)
			if slices.ContainsFunc(all, func(b Ban) bool { return b.Prefix == damaged }) {
				t.Error("InForce lists the damaged record")
			}
			total, newest, dmg, err := d.NewestInForce(now, 20)
			check("NewestInForce", total, dmg, err)
			if len(newest) != 20 {
				t.Errorf("NewestInForce kept %d, want 20", len(newest))
			}
			n := 0
			dmg, err = d.EachInForce(now, 64, func(bs []Ban) error { n += len(bs); return nil })
			check("EachInForce", n, dmg, err)
			banned, err := d.Banned([]netip.Addr{damaged.Addr(), netip.MustParseAddr("10.2.0.8")}, now)
			if err != nil || banned[damaged.Addr()] || !banned[netip.MustParseAddr("10.2.0.8")] {
				t.Errorf("Banned: %v, %v", banned, err)
			}
			if dmg, err := d.DamagedRecord(damaged, false); err != nil || !dmg {
				t.Errorf("DamagedRecord(%s) = %v, %v", damaged, dmg, err)
			}
			if dmg, err := d.DamagedRecord(netip.MustParsePrefix("10.2.0.8/32"), false); err != nil || dmg {
				t.Errorf("DamagedRecord of a sound record = %v, %v", dmg, err)
			}
			dry, dmg, err := d.DryRunBans(now)
			if err != nil || len(dry) != 1 || dry[0].Prefix != netip.MustParsePrefix("192.0.2.2/32") || dmg.N != 1 || !slices.Equal(dmg.Keys, []string{"192.0.2.1/32"}) {
				t.Errorf("DryRunBans: %+v, damaged %+v, %v", dry, dmg, err)
			}
			if readOnly {
				return
			}
			if active, err := d.ActiveBans(now); err != nil || len(active) != 299 {
				t.Errorf("ActiveBans: %d, %v", len(active), err)
			}
			// CountActive reads no record: the damaged ones count.
			if n, err := d.CountActive(now); err != nil || n != 301 {
				t.Errorf("CountActive: %d, %v; want 301", n, err)
			}
		})
	}

	// Lifting the damaged record's prefix deletes it; the one with a
	// damaged key stays (no prefix names it).
	d, err = Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if lifted, err := d.LiftMany([]netip.Prefix{damaged}, nil); err != nil || !slices.Equal(lifted, []netip.Prefix{damaged}) {
		t.Fatalf("LiftMany: %v, %v", lifted, err)
	}
	if all, dmg, err := d.InForce(now); err != nil || len(all) != 299 || dmg.N != 1 || dmg.Keys[0] != wantKeys[0] {
		t.Fatalf("after the lift: %d bans, damaged %+v, %v", len(all), dmg, err)
	}
	if lifted, err := d.LiftDryRun([]netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}); err != nil || len(lifted) != 1 {
		t.Fatalf("LiftDryRun: %v, %v", lifted, err)
	}
	if _, dmg, err := d.DryRunBans(now); err != nil || dmg.N != 0 {
		t.Fatalf("after the dry run's lift: damaged %+v, %v", dmg, err)
	}
}

// TestDamagedKey: a damaged record's key is named as it is when it is a
// prefix, else quoted in ASCII and cut: it is the file's, not to be
// trusted on a terminal or in a log.
func TestDamagedKey(t *testing.T) {
	for k, want := range map[string]string{
		"203.0.113.7/32":          "203.0.113.7/32",
		"2001:db8::/64":           "2001:db8::/64",
		"\x1b[2J":                 `"\x1b[2J"`,
		"10.0.0.1/32\n":           `"10.0.0.1/32\n"`,
		"\u202eevil":              `"\u202eevil"`,
		string(make([]byte, 100)): `"` + string(slices.Repeat([]byte(`\x00`), 64)) + `"...`,
	} {
		if got := DamagedKey([]byte(k)); got != want {
			t.Errorf("DamagedKey(%q) = %s, want %s", k, got, want)
		}
	}
}
