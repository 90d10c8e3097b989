package source

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"sshguard-go/internal/testkit"
)

// FuzzXZReader: whatever bytes an .xz archive holds, the reader neither
// panics nor loops, refuses what it cannot read with an error that says
// why (the file damaged or cut, a dictionary or blocks over the ceiling,
// 1 MiB here so that each run stays small, a filter or check it does not
// know), and what it reads whole the library's own xz reader reads to the
// same bytes. Seeded with archives of the xz tool (presets, threads,
// blocks, every check, streams one after the other with padding, a BCJ
// filter) and with the crafted ones of the tests.
func FuzzXZReader(f *testing.F) {
	names, err := filepath.Glob("../../testdata/archives/*.xz")
	if err != nil || len(names) < 5 {
		f.Fatalf("archives %v: %v", names, err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var small bytes.Buffer
	w, _ := xz.WriterConfig{DictCap: 64 << 10}.NewWriter(&small)
	w.Write([]byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"))
	w.Close()
	f.Add(small.Bytes())
	// Empty blocks of 256 KiB dictionaries, more than the ceiling pays for.
	f.Add(testkit.BlocksXZ(12, append([][]byte{[]byte("a line\n")}, make([][]byte, 20)...)...))
	f.Add(testkit.SmuggledXZ(12, []byte("a hidden line\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got bytes.Buffer
		x, err := newXZReader(bufio.NewReader(bytes.NewReader(data)), 1<<20)
		if err == nil {
			_, err = io.Copy(&got, io.LimitReader(x, 16<<20))
		}
		if err != nil {
			if msg := err.Error(); !errors.Is(err, errXZDamaged) && err != io.ErrUnexpectedEOF && !strings.HasPrefix(msg, "xz dictionary of") &&
				!strings.HasPrefix(msg, "xz blocks whose dictionaries") && !strings.HasPrefix(msg, "xz filter") && !strings.HasPrefix(msg, "xz integrity check") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if got.Len() == 16<<20 {
			return // not read whole
		}
		r, err := xz.ReaderConfig{DictCap: 4096}.NewReader(bytes.NewReader(data))
		var want bytes.Buffer
		if err == nil {
			_, err = io.Copy(&want, io.LimitReader(r, 16<<20+1))
		}
		if err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("read %d bytes; the xz reader %d, err %v", got.Len(), want.Len(), err)
		}
	})
}

// FuzzJournalCursor: the cursor read from a journalctl line is what
// follows "__CURSOR":" up to the next quote, never more.
func FuzzJournalCursor(f *testing.F) {
	f.Add(`{"__CURSOR":"s=a;i=1","__REALTIME_TIMESTAMP":"1763625720000000","MESSAGE":"x"}`)
	f.Add(`{"MESSAGE":"\"__CURSOR\":\"forged","__CURSOR":"s=b"}`)
	f.Fuzz(func(t *testing.T, line string) {
		c := journalCursorField(line)
		if strings.Contains(c, `"`) || (c != "" && !strings.Contains(line, `"__CURSOR":"`+c+`"`)) {
			t.Fatalf("cursor %q from %q", c, line)
		}
	})
}
