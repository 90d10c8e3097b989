package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func open(t testing.TB) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func TestFileMode(t *testing.T) {
	_, path := open(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestBansSurviveReopenAndEscalationCounts(t *testing.T) {
	d, path := open(t)
	p := netip.MustParsePrefix("203.0.113.7/32")
	b := &Ban{Prefix: p, Start: now, Expires: now.Add(time.Hour), Reason: "5 failed attempts", Users: []string{"root"}}
	mustRecord(t, d, b)
	if b.Count != 1 {
		t.Fatalf("first ban count %d", b.Count)
	}
	perm := &Ban{Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: now}
	mustRecord(t, d, perm)
	d.Close()

	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	active, err := d.ActiveBans(now.Add(30 * time.Minute))
	if err != nil || len(active) != 2 {
		t.Fatalf("active after reopen: %v %v", active, err)
	}
	// Expired bans leave the active set, not the history.
	active, _ = d.ActiveBans(now.Add(2 * time.Hour))
	if len(active) != 1 || active[0].Prefix != perm.Prefix {
		t.Fatalf("active after expiry: %v", active)
	}
	again := &Ban{Prefix: p, Start: now.Add(3 * time.Hour), Expires: now.Add(5 * time.Hour)}
	if _, err := d.RecordBans([]*Ban{again}, nil, nil); err != nil || again.Count != 2 {
		t.Fatalf("second ban: count %d, %v", again.Count, err)
	}
	off, _ := d.Offender(p)
	if off.Bans != 2 || !off.LastBan.Equal(again.Start) {
		t.Fatalf("offender %+v", off)
	}
	hist, _ := d.History(now)
	if len(hist) != 3 {
		t.Fatalf("history has %d bans, want 3", len(hist))
	}
	if err := d.Lift(p, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Lift(p, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second lift: %v", err)
	}
}

func TestAllowlistAndPositions(t *testing.T) {
	d, _ := open(t)
	p := netip.MustParsePrefix("198.51.100.0/24")
	if err := d.Allow(AllowEntry{Prefix: p, Comment: "office", Added: now}); err != nil {
		t.Fatal(err)
	}
	list, _ := d.Allowlist()
	if len(list) != 1 || list[0].Comment != "office" {
		t.Fatalf("allowlist %v", list)
	}
	if err := d.Disallow(p); err != nil {
		t.Fatal(err)
	}
	if err := d.Disallow(p); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second disallow: %v", err)
	}
	type position struct{ Dev, Ino, Offset, FirstHash uint64 }
	pos := position{Dev: 1, Ino: 2, Offset: 300, FirstHash: 42}
	if err := d.SavePosition("/var/log/auth.log", pos); err != nil {
		t.Fatal(err)
	}
	var got position
	if err := d.Position("/var/log/auth.log", &got); err != nil || got != pos {
		t.Fatalf("position %+v %v", got, err)
	}
	if err := d.Position("journald", &got); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing position: %v", err)
	}
}

// TestDamagedPositionRecord: a position record that does not decode is
// ErrBadRecord naming the file and the source, not the bare JSON error.
func TestDamagedPositionRecord(t *testing.T) {
	d, path := open(t)
	if err := d.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktPositions).Put([]byte("/var/log/auth.log"), []byte(`{"dev":"x"`))
	}); err != nil {
		t.Fatal(err)
	}
	var pos struct{ Dev uint64 }
	err := d.Position("/var/log/auth.log", &pos)
	if !errors.Is(err, ErrBadRecord) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), `"/var/log/auth.log"`) || !strings.Contains(err.Error(), "unexpected end of JSON input") {
		t.Fatalf("err = %v", err)
	}
}

func TestCorruptFileGivesClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	junk := make([]byte, 64<<10)
	for i := range junk {
		junk[i] = byte(i * 7)
	}
	os.WriteFile(path, junk, 0o600)
	_, err := Open(path, time.Second)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "mv ") {
		t.Fatalf("err = %v", err)
	}
	// Nothing was overwritten.
	b, _ := os.ReadFile(path)
	if len(b) != len(junk) || b[100] != junk[100] {
		t.Fatal("the damaged file was changed")
	}
}

func TestLockedByAnotherOpen(t *testing.T) {
	_, path := open(t)
	if _, err := Open(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
}

// TestNewerSchemaRefused: a database written by a newer release is not
// opened (its layout may differ), and the error says to upgrade.
func TestNewerSchemaRefused(t *testing.T) {
	d, path := open(t)
	if err := d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, err := Open(path, time.Second)
	if err == nil || !strings.Contains(err.Error(), "newer than this sshguard-go understands") || !strings.Contains(err.Error(), path) {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestMigrateSchema1: a database of the first layout (every ban copied in
// full in the bans bucket) opens with its bans in force, re-indexed.
func TestMigrateSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1 := Ban{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: now, Expires: now.Add(time.Hour), Count: 2, Reason: "5 failed attempts in 10m0s",
		Attempts: 5, Users: []string{"root", "admin"}, Evidence: []string{"first", "last"}}
	b2 := Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Start: now, Count: 1, Reason: "by hand"} // permanent
	err = raw.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bktMeta)
		meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 1))
		bans, _ := tx.CreateBucket(bktBans)
		hist, _ := tx.CreateBucket(bktHistory)
		for _, b := range []Ban{b1, b2} {
			v, _ := json.Marshal(b)
			bans.Put(pkey(b.Prefix), v)
			hist.Put(append(binary.BigEndian.AppendUint64(nil, uint64(b.Start.UnixNano())), pkey(b.Prefix)...), v)
		}
		return nil
	})
	raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	active, err := d.ActiveBans(now.Add(time.Minute))
	if err != nil || len(active) != 2 {
		t.Fatalf("after migration: %+v, %v", active, err)
	}
	if n, _ := d.CountActive(now.Add(2 * time.Hour)); n != 1 {
		t.Fatalf("%d in force after the first expired, want the permanent one", n)
	}
	if err := d.Lift(b2.Prefix, nil); err != nil {
		t.Fatal(err)
	}
}

// TestExpiryIndex: expired bans leave the index without their records
// being read, a longer re-ban of a prefix replaces its expiry, and the
// history keeps every ban with its evidence.
func TestExpiryIndex(t *testing.T) {
	d, _ := open(t)
	a, b, c := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("192.0.2.3/32")
	for _, x := range []*Ban{
		{Prefix: a, Start: now, Expires: now.Add(time.Hour), Evidence: []string{"a line"}},
		{Prefix: b, Start: now, Expires: now.Add(2 * time.Hour)},
		{Prefix: c, Start: now}, // permanent
		{Prefix: a, Start: now.Add(time.Second), Expires: now.Add(4 * time.Hour)}, // escalated
	} {
		mustRecord(t, d, x)
	}
	for _, tc := range []struct {
		at   time.Duration
		want int
	}{{0, 3}, {90 * time.Minute, 3}, {3 * time.Hour, 2}, {5 * time.Hour, 1}} {
		if n, err := d.CountActive(now.Add(tc.at)); err != nil || n != tc.want {
			t.Errorf("at +%v: %d in force (%v), want %d", tc.at, n, err, tc.want)
		}
	}
	hist, err := d.History(time.Time{})
	if err != nil || len(hist) != 4 || hist[0].Evidence[0] != "a line" {
		t.Fatalf("history %+v, %v", hist, err)
	}
	ref := BanRef(&hist[0])
	if got, err := d.BanByRef(ref); err != nil || got.Prefix != a || len(got.Evidence) != 1 {
		t.Fatalf("BanByRef: %+v, %v", got, err)
	}
}

// TestDamagedPages: a database whose pages were overwritten (a disk
// error, a bad copy), one page at a time, gives ErrCorrupt with advice at
// Open, or opens; then every read the CLI and the daemon make (list, the
// restore, the allowlist, the read position, the history), and their
// writes, give what the file holds or ErrCorrupt naming the file, read-only
// (the CLI without a daemon) or not (the daemon). Nothing panics: bbolt
// asserts and panics on some damaged pages, which exited with status 2, a
// stack trace and no advice: at Open first, and then, after Open, at the
// first read of such a page (list, the daemon's restore).
func TestDamagedPages(t *testing.T) {
	d, path := open(t)
	var bans []*Ban
	for i := range 300 {
		bans = append(bans, &Ban{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), 32), Start: now,
			Expires: now.Add(time.Hour), Evidence: []string{strings.Repeat("x", 100)}})
	}
	mustRecord(t, d, bans...)
	for i := range 50 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 32)
		if err := d.Allow(AllowEntry{Prefix: p, Comment: strings.Repeat("office ", 10), Added: now}); err != nil {
			t.Fatal(err)
		}
	}
	type position struct{ Dev, Ino, Offset, FirstHash uint64 }
	if err := d.SavePosition("/var/log/auth.log", position{1, 2, 300, 42}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	var atOpen, atRead, whole int
	for pg := 0; pg*page < len(orig); pg++ {
		for _, fill := range []byte{0x00, 0x5a} {
			data := slices.Clone(orig)
			for i := pg * page; i < (pg+1)*page && i < len(data); i++ {
				data[i] = fill ^ byte(i*7)
			}
			p := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("page %d filled with %#x", pg, fill)
			// Read-only first (the CLI's open leaves the file as it is),
			// then as the daemon opens it.
			for _, readOnly := range []bool{true, false} {
				damaged, opened := damagedUse(t, what, p, readOnly)
				switch {
				case !opened:
					atOpen++
				case damaged:
					atRead++
				default:
					whole++
				}
			}
		}
	}
	t.Logf("damaged at open %d, at a read or write %d, not found damaged %d", atOpen, atRead, whole)
	if atOpen == 0 || atRead == 0 {
		t.Fatal("no damaged page was reported as damaged at open, or none after it")
	}
}

// damagedUse opens the damaged file path (readOnly: as the CLI does
// without a daemon) and reads (and unless readOnly writes) it as the CLI
// and the daemon do, failing t on a panic or on an error that is not
// ErrCorrupt naming path with the advice. It reports whether the file
// opened and whether a read or write then found it damaged.
func damagedUse(t *testing.T, what, path string, readOnly bool) (damaged, opened bool) {
	t.Helper()
	check := func(op string, err error) {
		t.Helper()
		switch {
		case err == nil, errors.Is(err, ErrNotFound):
		case errors.Is(err, ErrCorrupt) && strings.Contains(err.Error(), path) && strings.Contains(err.Error(), "mv "+path):
			damaged = true
		default:
			t.Fatalf("%s (read-only %v): %s: %v", what, readOnly, op, err)
		}
	}
	var op string
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("%s (read-only %v): %s panicked: %v", what, readOnly, op, r)
		}
	}()
	op = "Open"
	var d *DB
	var err error
	if readOnly {
		d, err = OpenReadOnly(path, time.Second)
	} else {
		d, err = Open(path, time.Second)
	}
	if err != nil {
		check(op, err)
		return damaged, false
	}
	defer d.Close()
	reads := []struct {
		op string
		fn func() error
	}{
		{"InForce", func() error { _, _, err := d.InForce(now); return err }},
		{"NewestInForce", func() error { _, _, _, err := d.NewestInForce(now, 20); return err }},
		{"EachInForce", func() error { _, err := d.EachInForce(now, 64, func([]Ban) error { return nil }); return err }},
		{"Allowlist", func() error { _, err := d.Allowlist(); return err }},
		{"Position", func() error { var v any; return d.Position("/var/log/auth.log", &v) }},
		{"History", func() error { _, err := d.History(time.Time{}); return err }},
		{"Offenders", func() error { _, err := d.Offenders([]netip.Prefix{netip.MustParsePrefix("10.2.0.7/32")}); return err }},
		{"BanByRef", func() error {
			_, err := d.BanByRef(BanRef(&Ban{Prefix: netip.MustParsePrefix("10.2.0.7/32"), Start: now}))
			return err
		}},
		{"Banned", func() error { _, err := d.Banned([]netip.Addr{netip.MustParseAddr("10.2.1.7")}, now); return err }},
	}
	if !readOnly {
		later := now.Add(2 * time.Hour) // the bans have ended
		reads = append(reads, []struct {
			op string
			fn func() error
		}{
			{"CountActive", func() error { _, err := d.CountActive(later); return err }},
			{"RecordBans", func() error {
				_, err := d.RecordBans([]*Ban{{Prefix: netip.MustParsePrefix("10.2.0.9/32"), Start: later, Expires: later.Add(time.Hour)}}, nil, nil)
				return err
			}},
			{"Lift", func() error { return d.Lift(netip.MustParsePrefix("10.2.0.9/32"), nil) }},
			{"Allow", func() error {
				return d.Allow(AllowEntry{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Added: later})
			}},
			{"SavePosition", func() error { return d.SavePosition("/var/log/auth.log", map[string]int{"offset": 400}) }},
			{"Prune", func() error {
				_, err := d.Prune(later.Add(time.Hour), Retention{History: time.Minute, Offenders: time.Minute})
				return err
			}},
		}...)
	}
	for _, r := range reads {
		op = r.op
		check(op, r.fn())
	}
	return damaged, true
}

// TestCallerPanicStaysTheirs: a panic of the caller's code that a
// transaction calls (restore's consumer of the bans read, an alert's
// encoder) is not taken for a damaged file: it goes on as it was.
func TestCallerPanicStaysTheirs(t *testing.T) {
	d, _ := open(t)
	mustRecord(t, d, &Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: now})
	for name, f := range map[string]func() error{
		"EachInForce": func() error {
			_, err := d.EachInForce(now, 10, func([]Ban) error { panic("the caller's bug") })
			return err
		},
		"RecordBans": func() error {
			_, err := d.RecordBans([]*Ban{{Prefix: netip.MustParsePrefix("192.0.2.2/32"), Start: now}}, func(*Ban) []byte { panic("the caller's bug") }, nil)
			return err
		},
	} {
		func() {
			defer func() {
				if r := recover(); r != "the caller's bug" {
					t.Errorf("%s: recovered %v, want the caller's panic", name, r)
				}
			}()
			err := f()
			t.Errorf("%s returned %v, want the caller's panic", name, err)
		}()
	}
	// The database is still usable: the write was rolled back.
	if got, _, err := d.InForce(now); err != nil || len(got) != 1 {
		t.Fatalf("after the panics: %v, %v", got, err)
	}
}

// TestMigrateToCompactBans: a database of schema 2 (the bans bucket an
// expiry and a history key) opens as schema 3, each ban in force read
// back whole from its compact record, without its history.
func TestMigrateToCompactBans(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Millisecond)
	bans := []*Ban{
		{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: now, Expires: now.Add(time.Hour), Reason: "6 failed attempts in 10m0s", Attempts: 6,
			Users: []string{"root", "admin"}, Evidence: []string{"first", "last"}, Origin: "detected"},
		{Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: now, Reason: "by hand", Origin: "admin"},
	}
	mustRecord(t, db, bans...)
	// Back to schema 2's layout.
	err = db.db.Update(func(tx *bolt.Tx) error {
		for _, b := range bans {
			v := append(binary.BigEndian.AppendUint64(nil, uint64(expiresNano(b.Expires))), BanRef(b)...)
			if err := tx.Bucket(bktBans).Put(pkey(b.Prefix), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bktMeta).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 2))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, _, err := db.InForce(now)
	if err != nil || len(got) != 2 {
		t.Fatalf("%+v %v", got, err)
	}
	for _, g := range got {
		want := bans[0]
		if g.Prefix != want.Prefix {
			want = bans[1]
		}
		if g.Prefix != want.Prefix || !g.Start.Equal(want.Start) || !g.Expires.Equal(want.Expires) || g.Reason != want.Reason || g.Attempts != want.Attempts ||
			g.Origin != want.Origin || g.Count != 1 || strings.Join(g.Users, ",") != strings.Join(want.Users, ",") || g.Evidence != nil {
			t.Errorf("migrated %+v, want %+v", g, want)
		}
	}
}

// TestCompactRecordBounded: a ban's compact record cuts what an attacker
// writes (users, reason) and a damaged record is an error, not a panic.
func TestCompactRecordBounded(t *testing.T) {
	long := strings.Repeat("x", 5000)
	users := make([]string, 40)
	for i := range users {
		users[i] = long
	}
	b := &Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Start: time.Now(), Reason: long, Users: users}
	v := activeValue(b)
	if len(v) > 2000 {
		t.Fatalf("a record of %d bytes", len(v))
	}
	var got Ban
	if _, ok := decodeActive(v, &got); !ok || len(got.Users) != maxUsers || len(got.Reason) != maxReason || got.Prefix != b.Prefix {
		t.Fatalf("%d users, reason %d bytes, %v", len(got.Users), len(got.Reason), got.Prefix)
	}
	for i := range len(v) {
		decodeActive(v[:i], &got) // cut anywhere: no panic
	}
	if _, ok := decodeActive(append([]byte{activeMark}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), &got); ok {
		t.Error("a damaged varint read")
	}
}

// mustRecord records bans as they are (RecordBans without alerts or
// sharing), failing tb on an error.
func mustRecord(tb testing.TB, d *DB, bans ...*Ban) {
	tb.Helper()
	if _, err := d.RecordBans(bans, nil, nil); err != nil {
		tb.Fatal(err)
	}
}
