// Package testkit holds what the tests of several packages share: a
// bounded wait for a condition, a settable clock, a real state database in
// a test's temporary directory, and a bounded stop of a child process.
// Only tests import it.
package testkit

import (
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"sshguard-go/internal/store"
)

// Eventually calls cond every 20 ms until it returns true, and fails tb
// (with what, if given, and cond's last word) when timeout passes first.
// cond returns whether it holds and, for the failure message, what it saw.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s: %s", timeout, what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clock is a settable clock for code that takes a now func. It is safe
// for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// OpenDB opens a fresh state database in tb's temporary directory, closed
// when tb ends, and returns it with its path.
func OpenDB(tb testing.TB) (*store.DB, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "state.db")
	db, err := store.Open(path, time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, path
}

// Stop sends cmd's process SIGTERM and waits for it at most timeout; then
// it kills it and fails tb. It returns the process's exit error.
func Stop(tb testing.TB, cmd *exec.Cmd, timeout time.Duration) error {
	tb.Helper()
	if cmd.Process == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		tb.Errorf("%s did not stop within %v of SIGTERM; killed", cmd.Path, timeout)
		return nil
	}
}
