package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OpenReadOnly opens the existing database at path for reading only: it
// never creates the file (a missing one is an error wrapping
// fs.ErrNotExist) and, in the layout this code writes, never writes to
// it; it needs only read access, and shares the file with other readers
// (a writer, such as the running daemon, holds it alone: ErrLocked after
// timeout). A database of an older layout, whose buckets or schema
// record the reads would miss, is brought up to date first, as the
// daemon would at its start (that open needs write access). Writes to the
// DB returned fail.
func OpenReadOnly(path string, timeout time.Duration) (*DB, error) {
	return openReadOnly(path, timeout, true)
}

func openReadOnly(path string, timeout time.Duration, upgrade bool) (d *DB, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
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
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		return nil, openError(path, err)
	}
	d = &DB{db: db, path: path}
	current, err := d.current()
	if err != nil || !current {
		db.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
		if !upgrade {
			return nil, fmt.Errorf("open store %s: still of an older layout after an upgrade", path)
		}
		d, err := Open(path, timeout)
		if err != nil {
			return nil, err
		}
		d.Close()
		return openReadOnly(path, timeout, false)
	}
	return d, nil
}

// current reports whether the database has everything init makes: every
// bucket, its instance id, and the schema version of this code. A newer
// schema is an error.
func (d *DB) current() (bool, error) {
	ok := true
	err := d.view(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if tx.Bucket(b) == nil {
				ok = false
				return nil
			}
		}
		meta := tx.Bucket(bktMeta)
		v := meta.Get([]byte("schema"))
		switch {
		case len(v) != 4 || meta.Get([]byte("instance")) == nil:
			ok = false
		case binary.BigEndian.Uint32(v) > SchemaVersion:
			return fmt.Errorf("schema version %d is newer than this sshguard-go understands (%d); upgrade sshguard-go", binary.BigEndian.Uint32(v), SchemaVersion)
		case binary.BigEndian.Uint32(v) < SchemaVersion:
			ok = false
		}
		return nil
	})
	return ok, err
}
