package store

import (
	"fmt"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Every read and write of the file goes through view or update (or
// guard): bbolt asserts its pages' consistency with panics, and a damaged
// page can also make its page arithmetic, or our decoding of what it
// holds, index out of range or read outside the mapped file. Met at any
// time, not only at Open, such a page is reported as ErrCorrupt naming the
// file, with what to do, instead of crashing the process.

// view runs fn in a read transaction of d.
func (d *DB) view(fn func(*bolt.Tx) error) error { return d.viewCalling(nil, fn) }

// update runs fn in a write transaction of d.
func (d *DB) update(fn func(*bolt.Tx) error) error { return d.updateCalling(nil, fn) }

// viewCalling is view for an fn that calls the caller's code through t.
func (d *DB) viewCalling(t *theirs, fn func(*bolt.Tx) error) error {
	return d.guard(t, func() error { return d.db.View(fn) })
}

// updateCalling is update for an fn that calls the caller's code through
// t.
func (d *DB) updateCalling(t *theirs, fn func(*bolt.Tx) error) error {
	return d.guard(t, func() error { return d.db.Update(fn) })
}

// theirs marks, within a transaction, the calls of the caller's own code
// (an alert's encoder, a consumer of the bans read): a panic there is a
// fault of that code, not of the file, and goes on as it was, with its
// own stack.
type theirs struct{ in bool }

// call runs f, the caller's code.
func (t *theirs) call(f func()) {
	t.in = true
	f()
	t.in = false
}

// guard runs f, which reads or writes d's file, and returns a panic of f
// (outside t's calls; t may be nil) as ErrCorrupt. bbolt rolls the
// transaction back on the way out, so d stays usable (for what the damage
// leaves readable).
func (d *DB) guard(t *theirs, f func() error) (err error) {
	// A read outside the mapped file (a damaged page's id or offset)
	// is a panic here, not a fatal fault.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if t != nil && t.in {
			return // not recovered: the caller's panic goes on
		}
		if r := recover(); r != nil {
			err = corrupt("store", d.path, fmt.Errorf("%v", r))
		}
	}()
	return f()
}
