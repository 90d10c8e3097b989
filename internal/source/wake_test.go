package source

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestWakerWatchesTheFileHeld: a write to the file the waker watches
// wakes it; once the watch moved to another file (a rotation), writes to
// the first one do not.
func TestWakerWatchesTheFileHeld(t *testing.T) {
	dir := t.TempDir()
	open := func(name string) *os.File {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b := open("a"), open("b")
	w, err := newWaker()
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	woken := func() bool {
		select {
		case <-w.c:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}
	w.watch(a)
	a.WriteString("one\n")
	if !woken() {
		t.Fatal("a write to the watched file did not wake the waker within 10s")
	}
	w.watch(b)
	a.WriteString("two\n") // the old file: no wake
	b.WriteString("three\n")
	if !woken() {
		t.Fatal("a write to the newly watched file did not wake the waker within 10s")
	}
	select {
	case <-w.c:
		t.Fatal("woken once more: the write to the file no longer watched woke it")
	default:
	}
}

// TestFollowerBehindIsNoTruncation: lines read on our own notice put the
// position past where a new follower starts; its copies of them are
// passed over, not taken for a truncation (which read them again from a
// copy, or warned that none was found).
func TestFollowerBehindIsNoTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(path, []byte("l1\nl2\nl3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got, warned []string
	f := &FileTail{Path: path, Warn: func(m string) { warned = append(warned, m) }}
	f.emit = func(line string, _ Position) { got = append(got, line) }
	f.openPath()
	defer f.cur.Close()
	ctx := context.Background()
	f.readLines(ctx)
	f.followed = -1 // a new follower, started at 0
	f.deliver(ctx, "l1", 3)
	f.deliver(ctx, "l2", 6)
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("l4\n")
	w.Close()
	f.deliver(ctx, "l3", 9)
	f.deliver(ctx, "l4", 12)
	if want := []string{"l1", "l2", "l3", "l4"}; !slices.Equal(got, want) || len(warned) > 0 {
		t.Fatalf("delivered %q (want %q), warned %q", got, want, warned)
	}
	if f.pos.Offset != 12 {
		t.Fatalf("position %d, want 12", f.pos.Offset)
	}
}
