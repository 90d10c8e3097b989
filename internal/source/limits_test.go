package source

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
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
// SHA-256 check), xz -9 --block-size=1MiB single-threaded (five blocks, a
// 64 MiB dictionary each and no sizes in their headers), zstd -19
// --long=27 (128 MiB window), zstd --ultra -22, gzip -9, bzip2 -9. They
// were made from standard input, so the tools did not shrink the window to
// the file.
func TestArchivesOfTheToolsRead(t *testing.T) {
	text := string(recordedLog(t))
	for name, copies := range map[string]int{"auth.log.xz": 1, "auth.log.multi.xz": 2, "auth.log.blocks.xz": 175, "auth.log.zst": 1, "auth.log.multi.zst": 2, "auth.log.gz": 1, "auth.log.bz2": 1} {
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

// TestXZBlocksPayForTheirDictionaries: the xz reader allocates a new
// dictionary for every block. Empty blocks each asking for 64 MiB (2,000
// of them in 36 KB, which xz -t accepts and xz -d reads at once) are
// refused at the second, after the first block's line, before its
// dictionary is allocated; blocks that decompress to 1 MiB each (what
// xz -9 --block-size=1MiB writes) are read whole, and blocks a little
// smaller are refused at the second.
func TestXZBlocksPayForTheirDictionaries(t *testing.T) {
	line := []byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n")
	text := bytes.Repeat(line, 4<<20/len(line)+1)
	split := func(size, n int) [][]byte {
		var b [][]byte
		for i := range n {
			b = append(b, text[i*size:(i+1)*size])
		}
		return b
	}
	empty := append([][]byte{line}, make([][]byte, 2000)...)
	dir := t.TempDir()
	cases := []struct {
		name   string
		blocks [][]byte
		want   string // the error; "" when it must read
		alloc  uint64 // at most this allocated, in MiB
	}{
		{"empty.xz", empty, fmt.Sprintf("xz blocks whose dictionaries come to 128 MiB by block 2, after %d bytes decompressed", len(line)), 96},
		{"paid.xz", split(1<<20, 4), "", 4*64 + 32},
		{"short.xz", split(1<<20-4<<10, 4), "xz blocks whose dictionaries come to 128 MiB by block 2, after 1044480 bytes decompressed", 96},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, testkit.BlocksXZ(28, c.blocks...), 0o644); err != nil {
			t.Fatal(err)
		}
		got, alloc, err := readInput(t, p)
		t.Logf("%s: %d MiB allocated, err %v", c.name, alloc>>20, err)
		if alloc>>20 > c.alloc {
			t.Errorf("%s: %d MiB allocated, want at most %d", c.name, alloc>>20, c.alloc)
		}
		whole := string(bytes.Join(c.blocks, nil))
		if c.want == "" {
			if err != nil || strings.TrimSuffix(got, "\n") != strings.TrimSuffix(whole, "\n") {
				t.Errorf("%s: %d bytes of %d read, err %v", c.name, len(got), len(whole), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
		// The first block's lines were delivered before the refusal.
		first := string(c.blocks[0])
		first = first[:strings.LastIndexByte(first, '\n')+1]
		if got != first {
			t.Errorf("%s: %d bytes read before the refusal, want the first block's %d", c.name, len(got), len(first))
		}
	}
}

// TestArchivesOfXZRead: what xz itself writes is read whole, whatever the
// preset (-0 to -9e, each block header asking for the preset's dictionary
// from standard input), with threads (blocks of at least 1 MiB, sizes in
// their headers), and with --block-size=1MiB at -9 (a new 64 MiB
// dictionary for each MiB), single-threaded or not.
func TestArchivesOfXZRead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs xz on megabytes")
	}
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz here")
	}
	log := recordedLog(t)
	repeat := func(size int) []byte { return bytes.Repeat(log, size/len(log)+1) }
	runs := []struct {
		args []string
		data []byte
	}{
		{[]string{"-0", "-T0"}, repeat(3 << 20)},                      // three blocks
		{[]string{"-9", "-T1", "--block-size=1MiB"}, repeat(5 << 19)}, // three blocks
		{[]string{"-9", "-T0", "--block-size=1MiB"}, repeat(5 << 19)},
	}
	for _, p := range []string{"-0", "-1", "-2", "-3", "-4", "-5", "-6", "-7", "-8", "-9", "-9e"} {
		runs = append(runs, struct {
			args []string
			data []byte
		}{[]string{p, "-T1"}, repeat(256 << 10)})
	}
	dir := t.TempDir()
	for i, r := range runs {
		t.Run(strings.Join(r.args, " "), func(t *testing.T) {
			cmd := exec.Command("xz", append(r.args, "-c")...)
			cmd.Stdin = bytes.NewReader(r.data)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("xz %v: %v", r.args, err)
			}
			p := filepath.Join(dir, fmt.Sprintf("%d.xz", i))
			if err := os.WriteFile(p, out, 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := OpenInput(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var got strings.Builder
			err = in.Lines(func(l string, _ int64) { got.WriteString(l); got.WriteByte('\n') })
			if err != nil || got.String() != string(r.data) {
				t.Errorf("xz %v: %d bytes of %d read, err %v", r.args, got.Len(), len(r.data), err)
			}
		})
	}
}
