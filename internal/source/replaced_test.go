package source

import (
	"fmt"
	"os"
	"path/filepath"
	"sshguard-go/internal/testkit"
	"testing"
	"time"
)

// TestTailReplacedBySameStart: the log replaced by a new file that begins
// as the old one did (sed -i, an editor's save), then written on: the
// position follows the new file. With each line taken as the last one's
// successor without a look, it stayed on the old file's inode, and a
// restart read the whole log again.
func TestTailReplacedBySameStart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "auth.log")
	if err := os.WriteFile(p, []byte("a1\na2\na3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fo := startTail(t, &FileTail{Path: p, FromStart: true, Poll: true}) // a rename over the path is seen by polling
	fo.wait(t, 3)
	tmp := filepath.Join(dir, "tmp")
	if err := os.WriteFile(tmp, []byte("a1\na2\na3\nb4\nb5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	last := func(l string) func() (bool, string) {
		return func() (bool, string) {
			fo.mu.Lock()
			defer fo.mu.Unlock()
			return len(fo.lines) > 0 && fo.lines[len(fo.lines)-1] == l, fmt.Sprintf("%q", fo.lines)
		}
	}
	testkit.Eventually(t, 10*time.Second, "b5 read", last("b5"))
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("b6\n")
	f.Close()
	testkit.Eventually(t, 10*time.Second, "b6 read", last("b6"))
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if pos, id := fo.position(), fileID(st); pos.Ino != id.Ino || pos.Offset != st.Size() {
		t.Fatalf("position inode %d offset %d, the log is inode %d of %d bytes", pos.Ino, pos.Offset, id.Ino, st.Size())
	}
}
