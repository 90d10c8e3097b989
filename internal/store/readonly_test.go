package store

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestOpenReadOnly: a missing file is an error naming it and no file is
// made; an existing database is read without a byte of it changing,
// beside another reader; a writer's lock is ErrLocked; writes fail; a
// newer schema is refused.
func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "sub", "state.db")
	if _, err := OpenReadOnly(missing, time.Second); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the directory was made: %v", err)
	}

	d, path := open(t)
	b := &Ban{Prefix: netip.MustParsePrefix("203.0.113.7/32"), Start: now, Expires: now.Add(time.Hour), Reason: "test"}
	mustRecord(t, d, b)
	if _, err := OpenReadOnly(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Fatalf("held by a writer: %v", err)
	}
	d.Close()
	before, _ := os.ReadFile(path)
	st0, _ := os.Stat(path)
	r1, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := OpenReadOnly(path, time.Second) // readers share the file
	if err != nil {
		t.Fatal(err)
	}
	bans, _, err := r2.InForce(now)
	if err != nil || len(bans) != 1 || bans[0].Reason != "test" {
		t.Fatalf("read: %+v %v", bans, err)
	}
	if err := r2.Allow(AllowEntry{Prefix: netip.MustParsePrefix("192.0.2.0/24")}); err == nil {
		t.Fatal("a write to a read-only database succeeded")
	}
	r2.Close()
	r1.Close()
	after, _ := os.ReadFile(path)
	st1, _ := os.Stat(path)
	if string(before) != string(after) || !st0.ModTime().Equal(st1.ModTime()) {
		t.Fatal("reading changed the file")
	}

	w, _ := Open(path, time.Second)
	w.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bktMeta).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion+1))
	})
	w.Close()
	if _, err := OpenReadOnly(path, time.Second); err == nil || !strings.Contains(err.Error(), "newer than this sshguard-go") {
		t.Fatalf("newer schema: %v", err)
	}
}

// TestOpenReadOnlyUpgrades: a database of an older layout, without the
// buckets added later, is brought up to date and then read.
func TestOpenReadOnlyUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bktMeta)
		tx.CreateBucket(bktBans)
		tx.CreateBucket(bktHistory)
		return meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, 1))
	})
	raw.Close()
	d, err := OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, _, err := d.InForce(now); err != nil {
		t.Fatal(err)
	}
	err = d.Sessions(time.Time{}, func([]byte, [][]byte) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
}
