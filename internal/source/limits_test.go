package source

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sshguard-go/internal/testkit"
)

// recordedLog is what testdata/archives holds, compressed by the tools.
func recordedLog(t testing.TB) []byte {
	t.Helper()
	var all []byte
	for _, f := range []string{"recorded/openssh-9.2-rfc3339.log", "recorded/openssh-9.2-traditional.log", "samples/openssh-older.log", "samples/openssh-versions.log"} {
		b, err := os.ReadFile(filepath.Join("../../testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// readInput reads name whole and returns its text and the bytes allocated
// meanwhile.
func readInput(t testing.TB, name string) (string, uint64, error) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	in, err := OpenInput(name, nil)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	var b strings.Builder
	err = in.Lines(func(l string, _ int64) { b.WriteString(l); b.WriteByte('\n') })
	runtime.ReadMemStats(&after)
	return b.String(), after.TotalAlloc - before.TotalAlloc, err
}

// TestArchivesOfTheToolsRead: archives as the tools write them at their
// largest settings are read whole: xz -9 (64 MiB dictionary), xz -T2 with
// several blocks and streams (sizes in the headers, stream padding, a
// SHA-256 check), zstd -19 --long=27 (128 MiB window), zstd --ultra -22,
// gzip -9, bzip2 -9. They were made from standard input, so the tools did
// not shrink the window to the file.
func TestArchivesOfTheToolsRead(t *testing.T) {
	text := string(recordedLog(t))
	for name, copies := range map[string]int{"auth.log.xz": 1, "auth.log.multi.xz": 2, "auth.log.zst": 1, "auth.log.multi.zst": 2, "auth.log.gz": 1, "auth.log.bz2": 1} {
		got, alloc, err := readInput(t, filepath.Join("../../testdata/archives", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != strings.Repeat(text, copies) {
			t.Errorf("%s: %d bytes read, want %d", name, len(got), copies*len(text))
		}
		t.Logf("%s: %d MiB allocated", name, alloc>>20)
	}
}

// TestHostileArchivesRefused: a zstd frame asking for a 512 MiB window
// (zstd --long=29) and an xz block asking for a 4 GiB dictionary are
// refused with an error that says why, before the decoder takes that
// memory; frames just at the ceilings are read.
func TestHostileArchivesRefused(t *testing.T) {
	lines := bytes.Repeat([]byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"), 20000)
	dir := t.TempDir()
	good := testkit.HostileXZ(t, lines, 28) // 64 MiB: xz -9
	cases := []struct {
		name string
		data []byte
		want string // "" when it must read
	}{
		{"long29.zst", testkit.HostileZstd(t, lines, 29), "zstd window larger than the 128 MiB"},
		{"long28.zst", testkit.HostileZstd(t, lines, 28), "zstd window larger than the 128 MiB"},
		{"long27.zst", testkit.HostileZstd(t, lines, 27), ""},
		{"dict4g.xz", testkit.HostileXZ(t, lines, 40), "xz dictionary of 4095 MiB, larger than the 64 MiB"},
		{"dict128m.xz", testkit.HostileXZ(t, lines, 30), "xz dictionary of 128 MiB"},
		// A good stream, then one that asks for 4 GiB: every block is checked.
		{"second.xz", append(append([]byte{}, good...), testkit.HostileXZ(t, lines, 40)...), "xz dictionary of 4095 MiB"},
		{"dict64m.xz", good, ""},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, alloc, err := readInput(t, p)
		t.Logf("%s: %d MiB allocated, err %v", c.name, alloc>>20, err)
		if c.want == "" {
			if err != nil || got != string(lines) {
				t.Errorf("%s: %d bytes, err %v", c.name, len(got), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		// What the hostile part would have cost is never allocated: the
		// line reader's buffers, and for second.xz the good stream's 64
		// MiB dictionary.
		limit := uint64(16 << 20)
		if c.name == "second.xz" {
			limit = 96 << 20
		}
		if alloc > limit {
			t.Errorf("%s: %d MiB allocated, want under %d", c.name, alloc>>20, limit>>20)
		}
	}
}
