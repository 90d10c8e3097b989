package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sshguard-go/internal/testkit"
	"strings"
	"sync"
	"testing"
	"time"
)

// follower runs a FileTail in the background and collects its lines.
type follower struct {
	mu     sync.Mutex
	lines  []string
	last   Position
	cancel context.CancelFunc
	done   chan error
}

func startTail(t *testing.T, ft *FileTail) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fo := &follower{cancel: cancel, done: make(chan error, 1)}
	warn := ft.Warn
	ft.Warn = func(msg string) {
		t.Log("warning:", msg)
		if warn != nil {
			warn(msg)
		}
	}
	ready, theirs := make(chan struct{}), ft.Ready
	ft.Ready = func() {
		if theirs != nil {
			theirs()
		}
		close(ready)
	}
	go func() {
		fo.done <- ft.Run(ctx, func(line string, pos Position) {
			fo.mu.Lock()
			fo.lines = append(fo.lines, line)
			fo.last = pos
			fo.mu.Unlock()
		})
	}()
	t.Cleanup(fo.stop)
	select { // lines appended from Ready on are delivered
	case <-ready:
	case err := <-fo.done:
		fo.done <- err
		t.Fatalf("tail stopped before it was ready: %v", err)
	}
	return fo
}

func (fo *follower) stop() {
	fo.cancel()
	<-fo.done
	fo.done <- nil // keep stop idempotent
}

// wait returns the lines once there are n of them, or fails after 5 s.
func (fo *follower) wait(t *testing.T, n int) []string {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%d lines", n), func() (bool, string) {
		fo.mu.Lock()
		defer fo.mu.Unlock()
		return len(fo.lines) >= n, fmt.Sprintf("%d lines: %q", len(fo.lines), fo.lines)
	})
	time.Sleep(150 * time.Millisecond) // catch duplicates arriving late
	fo.mu.Lock()
	defer fo.mu.Unlock()
	return append([]string(nil), fo.lines...)
}

func (fo *follower) position() Position {
	fo.mu.Lock()
	defer fo.mu.Unlock()
	return fo.last
}

func appendLines(t *testing.T, f *os.File, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if _, err := fmt.Fprintf(f, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
}

func want(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprintf("line %d", i))
	}
	return strings.Join(s, "|")
}

func create(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestTailFollowsAndStartsAtEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 3)
	fo := startTail(t, &FileTail{Path: path})
	appendLines(t, w, 4, 5)
	if got := strings.Join(fo.wait(t, 2), "|"); got != want(4, 5) {
		t.Fatalf("got %s", got)
	}
}

// TestTailReady: Ready comes once the start is fixed; a line appended
// then, before the follower runs, is delivered (the daemon's READY=1).
func TestTailReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 3)
	ready := 0
	fo := startTail(t, &FileTail{Path: path, Ready: func() {
		ready++
		appendLines(t, w, 4, 4)
	}})
	appendLines(t, w, 5, 5)
	if got := strings.Join(fo.wait(t, 2), "|"); got != want(4, 5) || ready != 1 {
		t.Fatalf("got %s, ready called %d times", got, ready)
	}
}

func TestTailRenameRotationDrainsOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 3)
	fo := startTail(t, &FileTail{Path: path, FromStart: true})
	fo.wait(t, 3)
	// logrotate renames; the writer goes on writing to the old file until
	// it is told to reopen (rsyslog's HUP), then writes to the new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, w, 4, 5)
	w2 := create(t, path)
	appendLines(t, w2, 6, 8)
	if got := strings.Join(fo.wait(t, 8), "|"); got != want(1, 8) {
		t.Fatalf("got %s", got)
	}
}

func TestTailCopytruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 3)
	fo := startTail(t, &FileTail{Path: path, FromStart: true})
	fo.wait(t, 3)
	appendLines(t, w, 4, 5)
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".1", data, 0o644)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, w, 6, 7) // O_APPEND: written at the new end
	if got := strings.Join(fo.wait(t, 7), "|"); got != want(1, 7) {
		t.Fatalf("got %s", got)
	}
}

// stoppedAfterThree follows a new file from its start until it has read
// lines 1-3, stops, and returns the file's writer and the saved position.
func stoppedAfterThree(t *testing.T) (path string, w *os.File, pos Position) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "auth.log")
	w = create(t, path)
	appendLines(t, w, 1, 3)
	fo := startTail(t, &FileTail{Path: path, FromStart: true})
	fo.wait(t, 3)
	pos = fo.position()
	fo.stop()
	return path, w, pos
}

func TestTailResumeNeitherSkipsNorRepeats(t *testing.T) {
	path, w, pos := stoppedAfterThree(t)
	appendLines(t, w, 4, 6) // written while stopped
	fo2 := startTail(t, &FileTail{Path: path, Start: pos})
	appendLines(t, w, 7, 7)
	if got := strings.Join(fo2.wait(t, 4), "|"); got != want(4, 7) {
		t.Fatalf("got %s", got)
	}
}

func TestTailResumeAfterRotationWhileStopped(t *testing.T) {
	path, w, pos := stoppedAfterThree(t)
	appendLines(t, w, 4, 5)
	os.Rename(path, path+".1")
	w2 := create(t, path)
	appendLines(t, w2, 6, 7)
	fo2 := startTail(t, &FileTail{Path: path, Start: pos})
	if got := strings.Join(fo2.wait(t, 4), "|"); got != want(4, 7) {
		t.Fatalf("got %s", got)
	}
}

// rotate renames path.N (and path.N.gz) to path.N+1, the highest first,
// then path to path.1, as logrotate does.
func rotate(t *testing.T, path string) {
	t.Helper()
	for n := 9; n >= 1; n-- {
		for _, ext := range []string{"", ".gz"} {
			from := fmt.Sprintf("%s.%d%s", path, n, ext)
			if _, err := os.Stat(from); err == nil {
				if err := os.Rename(from, fmt.Sprintf("%s.%d%s", path, n+1, ext)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
}

// TestTailResumeAfterTwoRotationsWhileStopped: rotated twice while
// stopped, the file we were in is finished (auth.log.2), then the one
// rotated after it (auth.log.1), then the current one; a restart from a
// line of the middle file goes on from the line after it.
func TestTailResumeAfterTwoRotationsWhileStopped(t *testing.T) {
	path, w, pos := stoppedAfterThree(t)
	appendLines(t, w, 4, 5)
	rotate(t, path)
	w2 := create(t, path)
	appendLines(t, w2, 6, 7)
	rotate(t, path)
	w3 := create(t, path)
	appendLines(t, w3, 8, 9)
	// Written within a tick of a coarse clock: the names tell the order.
	now := time.Now()
	for _, name := range []string{path + ".2", path + ".1"} {
		if err := os.Chtimes(name, now, now); err != nil {
			t.Fatal(err)
		}
	}
	fo2 := startTail(t, &FileTail{Path: path, Start: pos})
	if got := strings.Join(fo2.wait(t, 6), "|"); got != want(4, 9) {
		t.Fatalf("got %s", got)
	}
	fo2.stop()

	st, err := os.Stat(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	mid := fileID(st)
	mid.Offset, mid.FirstHash = int64(len("line 6\n")), hashLine("line 6")
	fo3 := startTail(t, &FileTail{Path: path, Start: mid})
	appendLines(t, w3, 10, 10)
	if got := strings.Join(fo3.wait(t, 4), "|"); got != want(7, 10) {
		t.Fatalf("after a restart from line 6: got %s", got)
	}
}

// TestTailResumeWarnsOfACompressedRotation: of the files rotated while
// stopped, a compressed one is named in a warning with the files its lines
// came between, and the plain ones on either side of it are read; a copy
// someone kept next to the log (auth.log.bak) is not.
func TestTailResumeWarnsOfACompressedRotation(t *testing.T) {
	path, w, pos := stoppedAfterThree(t)
	appendLines(t, w, 4, 5)
	// Three rotations: ours is auth.log.3, the next was compressed.
	if err := os.Rename(path, path+".3"); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprint(zw, "line 6\nline 7\n")
	zw.Close()
	if err := os.WriteFile(path+".2.gz", gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	appendLines(t, create(t, path+".1"), 8, 9)
	appendLines(t, create(t, path), 10, 11)
	if err := os.WriteFile(path+".bak", []byte("line 1\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var warned []string
	fo2 := startTail(t, &FileTail{Path: path, Start: pos, Warn: func(m string) { mu.Lock(); warned = append(warned, m); mu.Unlock() }})
	if got := strings.Join(fo2.wait(t, 6), "|"); got != "line 4|line 5|line 8|line 9|line 10|line 11" {
		t.Fatalf("got %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warned) != 1 || !strings.Contains(warned[0], path+".2.gz was rotated and compressed while sshguard-go was stopped; the lines it holds (written after those of "+path+".3 and before those of "+path+".1) were not read") {
		t.Fatalf("warnings %q", warned)
	}
}

func TestTailResumeAfterCopytruncateWhileStopped(t *testing.T) {
	path, w, pos := stoppedAfterThree(t)
	appendLines(t, w, 4, 5)
	data, _ := os.ReadFile(path)
	os.WriteFile(path+".1", data, 0o644)
	os.Truncate(path, 0)
	appendLines(t, w, 6, 6)
	fo2 := startTail(t, &FileTail{Path: path, Start: pos})
	if got := strings.Join(fo2.wait(t, 3), "|"); got != want(4, 6) {
		t.Fatalf("got %s", got)
	}
}

func TestTailWaitsForMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	fo := startTail(t, &FileTail{Path: path})
	w := create(t, path)
	appendLines(t, w, 1, 2)
	if got := strings.Join(fo.wait(t, 2), "|"); got != want(1, 2) {
		t.Fatalf("got %s", got)
	}
}

// TestTailCatchUp: a backlog is read through our own descriptor to its
// end, each line with the position after it; a line longer than
// maxCatchUpLine is cut there; an incomplete last line waits for its
// writer; what comes after is followed as usual, and a restart from the
// last position neither skips nor repeats.
func TestTailCatchUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 3)
	fmt.Fprintf(w, "%s\n", strings.Repeat("x", 3*maxCatchUpLine))
	appendLines(t, w, 4, 5000)
	fmt.Fprint(w, "line 5001 half") // no newline yet
	fo := startTail(t, &FileTail{Path: path, FromStart: true})
	lines := fo.wait(t, 5001)
	if len(lines) != 5001 || lines[0] != "line 1" || len(lines[3]) != maxCatchUpLine || lines[4] != "line 4" || lines[5000] != "line 5000" {
		t.Fatalf("%d lines; the long one %d bytes; last %q", len(lines), len(lines[3]), lines[len(lines)-1])
	}
	st, _ := os.Stat(path)
	if p := fo.position(); p.Offset != st.Size()-int64(len("line 5001 half")) {
		t.Fatalf("position %+v, size %d", p, st.Size())
	}
	fmt.Fprint(w, "\n")
	appendLines(t, w, 5002, 5002)
	if got := fo.wait(t, 5003); len(got) != 5003 || got[5001] != "line 5001 half" || got[5002] != "line 5002" {
		t.Fatalf("after the backlog: %q", got[5000:])
	}
	pos := fo.position()
	fo.stop()
	appendLines(t, w, 5003, 5003)
	fo2 := startTail(t, &FileTail{Path: path, Start: pos})
	if got := fo2.wait(t, 1); len(got) != 1 || got[0] != "line 5003" {
		t.Fatalf("after a restart: %q", got)
	}
}
