package source

import (
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

// FuzzXZGuard: whatever bytes an .xz archive holds, the guard that checks
// its block headers (each dictionary, and all of them against what they
// decompress) neither panics nor loops, and never refuses as damaged a
// stream the xz reader reads whole (with a 1 MiB ceiling here, so that
// each run stays small). Seeded with the tools' archives.
func FuzzXZGuard(f *testing.F) {
	for _, name := range []string{"auth.log.xz", "auth.log.multi.xz"} {
		b, err := os.ReadFile(filepath.Join("../../testdata/archives", name))
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
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &xzGuard{r: bytes.NewReader(data), max: 1 << 20}
		n, err := io.Copy(io.Discard, g)
		if n > int64(len(data)) {
			t.Fatalf("%d bytes out of %d", n, len(data))
		}
		if err != nil {
			if !errors.Is(err, errXZStructure) && !strings.Contains(err.Error(), "xz dictionary of") && !strings.Contains(err.Error(), "xz blocks whose dictionaries") {
				t.Fatalf("unexpected error %v", err)
			}
		}
		// What the xz reader reads whole within 1 MiB, the guard passes.
		cfg := xz.ReaderConfig{DictCap: 4096}
		if r, rerr := cfg.NewReader(bytes.NewReader(data)); rerr == nil && len(data) < 64<<10 && !tooBig(data) {
			if _, rerr = io.Copy(io.Discard, io.LimitReader(r, 16<<20)); rerr == nil && errors.Is(err, errXZStructure) {
				t.Fatalf("the guard refused a stream the xz reader reads: %v", err)
			}
		}
	})
}

// tooBig reports whether data may hold an LZMA2 filter asking for more
// than 1 MiB, wherever it stands (the fuzz run does not let the xz reader
// allocate it).
func tooBig(data []byte) bool {
	for i := 0; i+2 < len(data); i++ {
		if data[i] == 0x21 && data[i+1] == 1 && data[i+2] > 20 {
			return true
		}
	}
	return false
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
