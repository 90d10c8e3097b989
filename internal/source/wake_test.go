package source

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nxadm/tail"
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
	if err := w.watch(a); err != nil {
		t.Fatal(err)
	}
	a.WriteString("one\n")
	if !woken() {
		t.Fatal("a write to the watched file did not wake the waker within 10s")
	}
	if err := w.watch(b); err != nil {
		t.Fatal(err)
	}
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

// tailRead writes content to a new log and returns it (and its path)
// followed by a FileTail holding the file, as Run would after its start,
// which has read it: its lines into got, its warnings into warned.
func tailRead(t *testing.T, content string, got, warned *[]string) (*FileTail, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.log")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &FileTail{Path: path, Warn: func(m string) { *warned = append(*warned, m) }}
	f.emit = func(line string, _ Position) { *got = append(*got, line) }
	f.openPath()
	t.Cleanup(func() {
		if f.cur != nil {
			f.cur.Close()
		}
	})
	f.readLines(context.Background())
	return f, path
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// TestTruncatedAndWrittenAgain: copytruncate, then the log written past
// our old position before the follower noticed. Our notice must not read
// the new lines from the old offset (the middle of a line; the lines
// before it skipped): the bytes before it changed, so the copy is
// finished and the new file read whole, each line once, and the
// follower's lines that come after tell nothing more.
func TestTruncatedAndWrittenAgain(t *testing.T) {
	var got, warned []string
	f, path := tailRead(t, "old-1\nold-2\n", &got, &warned)
	ctx := context.Background()
	f.followed = 12 // the follower delivered both too
	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path+".1", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "new-1\nnew-2\nnew-3\n")
	f.readLines(ctx) // our notice of the writes
	f.deliver(ctx, "new-1", 6)
	f.deliver(ctx, "new-2", 12)
	f.deliver(ctx, "new-3", 18)
	if want := []string{"old-1", "old-2", "new-1", "new-2", "new-3"}; !slices.Equal(got, want) || len(warned) > 0 {
		t.Fatalf("delivered %q (want %q), warned %q", got, want, warned)
	}
}

// TestLongFirstLineFollowerBehind: a first line longer than the 4 KiB
// that identify a file (any local user can log one) is hashed alike
// whoever reads it: a new follower behind us is not taken for a
// truncation.
func TestLongFirstLineFollowerBehind(t *testing.T) {
	long := strings.Repeat("x", 5000)
	var got, warned []string
	f, _ := tailRead(t, long+"\nl2\nl3\n", &got, &warned)
	ctx := context.Background()
	f.followed = 0 // a new follower, from the start
	f.deliver(ctx, long, 5001)
	f.deliver(ctx, "l2", 5004)
	f.deliver(ctx, "l3", 5007)
	if len(got) != 3 || got[1] != "l2" || got[2] != "l3" || len(warned) > 0 {
		t.Fatalf("delivered %d lines (want 3: the long one, l2, l3), warned %q", len(got), warned)
	}
}

// TestRotationSeenWithoutTheFollowersWatch: the follower loses its watch
// (nxadm/tail shares one inotify watcher per process: another tail's
// Cleanup removes the path's watch for all); lines still come through our
// own, and a rotation after it is still followed: the follower is found
// behind (the path names a new file with lines it never showed us) and
// started again.
func TestRotationSeenWithoutTheFollowersWatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fo := startTail(t, &FileTail{Path: path})
	defer fo.stop()
	other, err := tail.TailFile(path, tail.Config{Follow: true, ReOpen: true, Logger: tail.DiscardingLogger})
	if err != nil {
		t.Fatal(err)
	}
	other.Stop()
	other.Cleanup() // the shared watch of the path, gone
	appendTo(t, path, "before\n")
	fo.wait(t, 1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("after\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := fo.wait(t, 2); got[1] != "after" {
		t.Fatalf("lines %q, want before, after", got)
	}
}

// TestTruncatedUnderALaggingFollower: the log truncated (no copy made)
// and written past the follower's place before it noticed, so that its
// next lines (the new file's, read from its old offset) continue its
// chain behind our position. Our notice found the bytes before our
// position changed, and read the new file from its start.
func TestTruncatedUnderALaggingFollower(t *testing.T) {
	var got, warned []string
	f, path := tailRead(t, "old-1\nold-2\nold-3\n", &got, &warned)
	ctx := context.Background()
	f.followed = 6 // the follower showed old-1 only
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "new-1\nnew-2\nnew-3\nnew-4\n")
	f.readLines(ctx)            // our notice: the bytes before 18 changed
	f.deliver(ctx, "new-2", 12) // the follower goes on from 6 in the new file
	f.deliver(ctx, "new-3", 18)
	f.deliver(ctx, "new-4", 24)
	if want := []string{"old-1", "old-2", "old-3", "new-1", "new-2", "new-3", "new-4"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "truncated and no copy of it was found") {
		t.Fatalf("warned %q: want the copy not found (none was made)", warned)
	}
}

// TestDrainedLinesBounded: the lines of a rotated file or a copy are read
// as the followed file's are, a line longer than maxCatchUpLine cut there
// (a forged one must not take the daemon's memory; it was read whole).
func TestDrainedLinesBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log.1")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 200<<10)+"\nnext\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var got []string
	var ends []int64
	f := &FileTail{emit: func(line string, p Position) { got, ends = append(got, line), append(ends, p.Offset) }}
	f.readFrom(file, Position{})
	if len(got) != 2 || len(got[0]) != maxCatchUpLine || got[1] != "next" || ends[0] != 200<<10+1 || ends[1] != 200<<10+6 {
		t.Fatalf("%d lines (first of %d bytes), ends %v: want the long line cut at %d, then next", len(got), len(got[0]), ends, maxCatchUpLine)
	}
}

// TestLookWaitsForTheNewFileToBeWritten: rotated by rename and create,
// with the writer not yet told to reopen: our look (once a second, or on
// a follower's line) stays on the renamed file while the new one is
// empty, so what the writer still appends to the old one is read; once
// the new file is written to, the old one's rest is read, then the new.
func TestLookWaitsForTheNewFileToBeWritten(t *testing.T) {
	var got, warned []string
	f, path := tailRead(t, "l1\n", &got, &warned)
	ctx := context.Background()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path+".1", "l2\n")
	f.look(ctx)
	appendTo(t, path+".1", "l3\n")
	appendTo(t, path, "n1\n")
	f.look(ctx)
	if want := []string{"l1", "l2", "l3", "n1"}; !slices.Equal(got, want) || len(warned) > 0 {
		t.Fatalf("delivered %q (want %q), warned %q", got, want, warned)
	}
	if st, err := os.Stat(path); err != nil || fileID(st).Ino != f.pos.Ino || f.pos.Offset != 3 {
		t.Fatalf("position %+v: want the new file's, at 3", f.pos)
	}
}
