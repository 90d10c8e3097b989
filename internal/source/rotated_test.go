package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// rotateTo renames path.N to path.N+1, the highest first, then path to
// path.1, and makes a new path with content, as logrotate's create does
// (see rotate), while a FileTail follows.
func rotateTo(t *testing.T, path, content string) {
	t.Helper()
	rotate(t, path)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// setTimes gives the files their modification times in the order given,
// oldest first, a second apart: rotated files are ordered by them (equal
// ones by their names), as a coarse clock might not.
func setTimes(t *testing.T, names ...string) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	for i, name := range names {
		mt := at.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(name, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTwoRotationsWhileRunning: the log rotated twice before the follower
// showed the first (its lines come from the newest file only): the file
// we hold is finished (now auth.log.2, with what its writer appended after
// the rename), then the one rotated in between (auth.log.1, read whole),
// then the new one. It was skipped whole: the path named another file, so
// ours was finished and the path opened.
func TestTwoRotationsWhileRunning(t *testing.T) {
	var got, warned []string
	f, path := tailRead(t, "l1\n", &got, &warned)
	ctx := context.Background()
	rotateTo(t, path, "m1\n")
	appendTo(t, path+".1", "l2\n") // the writer, not yet told to reopen
	appendTo(t, path, "m2\n")
	rotateTo(t, path, "n1\n")
	setTimes(t, path+".2", path+".1", path)
	f.deliver(ctx, "n1", 3) // the follower's first line, in the newest file
	if want := []string{"l1", "l2", "m1", "m2", "n1"}; !slices.Equal(got, want) || len(warned) > 0 {
		t.Fatalf("delivered %q (want %q), warned %q", got, want, warned)
	}
	if st, err := os.Stat(path); err != nil || fileID(st).Ino != f.pos.Ino || f.pos.Offset != 3 {
		t.Fatalf("position %+v: want the new file's, at 3", f.pos)
	}
}

// TestRotationsWhileRunningWarnOfACompressedOne: three rotations before
// the follower showed one, the second file compressed meanwhile: ours is
// finished (auth.log.3), the compressed one (auth.log.2.gz) named in a
// warning with the files its lines came between, the plain one after it
// read (auth.log.1), then the new one; a copy someone kept (auth.log.bak)
// and a file by another name are left alone, whatever their times.
func TestRotationsWhileRunningWarnOfACompressedOne(t *testing.T) {
	var got, warned []string
	f, path := tailRead(t, "l1\n", &got, &warned)
	ctx := context.Background()
	rotateTo(t, path, "m1\n")
	rotateTo(t, path, "k1\n")
	rotateTo(t, path, "n1\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("m1\n"))
	zw.Close()
	if err := os.WriteFile(path+".2.gz", gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + ".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".bak", []byte("b1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setTimes(t, path+".3", path+".2.gz", path+".bak", path+".1", path)
	f.look(ctx) // the check once a second
	if want := []string{"l1", "k1", "n1"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], path+".2.gz was rotated and compressed before sshguard-go read it; the lines it holds (written after those of "+path+".3 and before those of "+path+".1) were not read") {
		t.Fatalf("warnings %q", warned)
	}
}

// TestTailTwoRotationsWhileRunning: TestTwoRotationsWhileRunning through
// Run: the log rotated twice at once under a polling follower; however
// many of the rotations it sees, each file's lines come once, in order.
func TestTailTwoRotationsWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.log")
	w := create(t, path)
	appendLines(t, w, 1, 1)
	fo := startTail(t, &FileTail{Path: path, FromStart: true, Poll: true})
	fo.wait(t, 1)
	rotate(t, path)
	appendLines(t, w, 2, 2) // the writer, not yet told to reopen
	w2 := create(t, path)
	appendLines(t, w2, 3, 4)
	rotate(t, path)
	appendLines(t, create(t, path), 5, 5)
	if got := strings.Join(fo.wait(t, 5), "|"); got != want(1, 5) {
		t.Fatalf("got %s", got)
	}
}
