package source

import (
	"bytes"
	"fmt"
	"io"
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
// the file. auth.log.checks.xz is the four logs as four xz streams one
// after the other, each with its check and preset, and stream padding:
//
//	{ xz -6 --check=crc32 -c recorded/openssh-9.2-rfc3339.log
//	  xz -0 --check=none -c recorded/openssh-9.2-traditional.log
//	  xz -6e --check=sha256 -c samples/openssh-older.log; head -c 8 /dev/zero
//	  xz -3 -T2 --block-size=4KiB --check=crc64 -c samples/openssh-versions.log
//	  head -c 4 /dev/zero; } > archives/auth.log.checks.xz
func TestArchivesOfTheToolsRead(t *testing.T) {
	text := string(recordedLog(t))
	for name, copies := range map[string]int{"auth.log.xz": 1, "auth.log.multi.xz": 2, "auth.log.blocks.xz": 175, "auth.log.checks.xz": 1, "auth.log.zst": 1, "auth.log.multi.zst": 2, "auth.log.gz": 1, "auth.log.bz2": 1} {
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
// their headers), with --block-size=1MiB at -9 (a new 64 MiB dictionary
// for each MiB), single-threaded or not, with each check (CRC32, CRC64,
// SHA-256, none), and as streams one after the other (cat a.xz b.xz),
// with stream padding between them or not.
func TestArchivesOfXZRead(t *testing.T) {
	if testing.Short() {
		t.Skip("runs xz on megabytes")
	}
	needXZ(t)
	log := recordedLog(t)
	repeat := func(size int) []byte { return bytes.Repeat(log, size/len(log)+1) }
	type run struct {
		streams [][]string // xz's arguments for each stream
		pad     int        // zero bytes after each stream
		data    []byte     // split between the streams
	}
	runs := []run{
		{[][]string{{"-0", "-T0"}}, 0, repeat(3 << 20)},                      // three blocks
		{[][]string{{"-9", "-T1", "--block-size=1MiB"}}, 0, repeat(5 << 19)}, // three blocks
		{[][]string{{"-9", "-T0", "--block-size=1MiB"}}, 0, repeat(5 << 19)},
		{[][]string{{"-6", "--check=crc32"}, {"-0", "--check=none"}, {"-9e", "--check=sha256"}, {"-3", "-T0", "--block-size=64KiB", "--check=crc64"}}, 0, repeat(1 << 20)},
		{[][]string{{"-6", "--check=crc64"}, {"-1", "--check=sha256"}, {"-6", "--check=crc32"}}, 4, repeat(512 << 10)},
		{[][]string{{"-6"}, {"-6"}}, 8, repeat(256 << 10)},
	}
	for _, p := range []string{"-0", "-1", "-2", "-3", "-4", "-5", "-6", "-7", "-8", "-9", "-9e"} {
		runs = append(runs, run{[][]string{{p, "-T1"}}, 0, repeat(256 << 10)})
	}
	for _, c := range []string{"crc32", "crc64", "sha256", "none"} {
		runs = append(runs, run{[][]string{{"-6", "-T1", "--check=" + c}}, 0, repeat(256 << 10)})
	}
	dir := t.TempDir()
	for i, r := range runs {
		var names []string
		for _, args := range r.streams {
			names = append(names, strings.Join(args, " "))
		}
		t.Run(fmt.Sprintf("%s pad %d", strings.Join(names, " + "), r.pad), func(t *testing.T) {
			var archive []byte
			part := len(r.data)/len(r.streams) + 1
			for j, args := range r.streams {
				cmd := exec.Command("xz", append(args, "-c")...)
				cmd.Stdin = bytes.NewReader(r.data[min(j*part, len(r.data)):min((j+1)*part, len(r.data))])
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("xz %v: %v", args, err)
				}
				archive = append(append(archive, out...), make([]byte, r.pad)...)
			}
			p := filepath.Join(dir, fmt.Sprintf("%d.xz", i))
			if err := os.WriteFile(p, archive, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("xz", "-t", p).CombinedOutput(); err != nil {
				t.Fatalf("xz -t: %v %s", err, out)
			}
			in, err := OpenInput(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var got strings.Builder
			err = in.Lines(func(l string, _ int64) { got.WriteString(l); got.WriteByte('\n') })
			if err != nil || got.String() != string(r.data) {
				t.Errorf("%d bytes of %d read, err %v", got.Len(), len(r.data), err)
			}
		})
	}
}

// needXZ skips a test when the xz tool is missing, except in CI, which
// installs it (scripts/test-deps.sh).
func needXZ(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip("no xz here")
	}
}

// TestXZDamagedAsXZSeesIt: archives of the xz tool, one stream for each
// check and stream padding, with each of their bytes changed in turn
// (one bit, a different one from byte to byte): the reader refuses what
// xz -d refuses, and reads what xz reads to the same bytes. Cut short
// anywhere, it is refused, after no more than the text before the cut.
func TestXZDamagedAsXZSeesIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs xz a thousand times")
	}
	needXZ(t)
	lines := bytes.SplitAfter(recordedLog(t), []byte("\n"))
	var archive []byte
	whole := map[int]bool{} // the lengths that end on a stream or its padding
	for i, c := range []string{"crc32", "crc64", "sha256", "none"} {
		cmd := exec.Command("xz", "-0", "--check="+c, "-c")
		cmd.Stdin = bytes.NewReader(bytes.Join(lines[3*i:3*i+3], nil))
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		archive = append(archive, out...)
		for range i + 1 {
			whole[len(archive)] = true
			archive = append(archive, make([]byte, 4)...)
		}
		archive = archive[:len(archive)-4]
	}
	t.Logf("%d bytes", len(archive))
	differ := 0
	for i := 6; i < len(archive); i++ { // not the magic: it is then no xz file
		m := bytes.Clone(archive)
		m[i] ^= 1 << (i % 8)
		cmd := exec.Command("xz", "-dc")
		cmd.Stdin = bytes.NewReader(m)
		want, xerr := cmd.Output()
		var got []byte
		in, err := NewInput("m", bytes.NewReader(m), nil)
		if err == nil {
			got, err = io.ReadAll(in)
		}
		if (err == nil) != (xerr == nil) || (err == nil && !bytes.Equal(got, want)) {
			differ++
			t.Errorf("byte %d changed: err %v, %d bytes; xz: err %v, %d bytes", i, err, len(got), xerr, len(want))
		}
	}
	if differ > 0 {
		t.Logf("%d of %d differ", differ, len(archive)-6)
	}
	text := bytes.Join(lines[:12], nil)
	for i := 6; i < len(archive); i++ {
		if whole[i] {
			continue
		}
		in, err := NewInput("m", bytes.NewReader(archive[:i]), nil)
		var got []byte
		if err == nil {
			got, err = io.ReadAll(in)
		}
		if err == nil || !bytes.HasPrefix(text, got) {
			t.Errorf("cut at %d: err %v, %d bytes read", i, err, len(got))
		}
	}
}

// TestXZChunkEndingEarlyHidesNothing: an LZMA2 chunk that declares more
// bytes than its decoder takes hides, in the rest, the end of its block
// and a block asking for a 128 MiB dictionary (testkit.SmuggledXZ): a
// reader that follows the declared sizes beside the xz reader never sees
// that header, and the xz reader allocated the 128 MiB and gave out the
// hidden line. The archive is refused as damaged, the dictionary never
// allocated, the hidden line never read.
func TestXZChunkEndingEarlyHidesNothing(t *testing.T) {
	hidden := []byte("Nov 23 20:14:49 h sshd[1]: Invalid user hidden from 192.0.2.9 port 1\n")
	p := filepath.Join(t.TempDir(), "smuggled.xz")
	if err := os.WriteFile(p, testkit.SmuggledXZ(30, hidden), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("xz"); err == nil {
		if out, err := exec.Command("xz", "-t", p).CombinedOutput(); err == nil {
			t.Fatalf("xz -t accepts the archive: %s", out)
		} else {
			t.Logf("xz -t: %s", bytes.TrimSpace(out))
		}
	}
	got, alloc, err := readInput(t, p)
	t.Logf("%d MiB allocated, %q read, err %v", alloc>>20, got, err)
	if err == nil || !strings.Contains(err.Error(), "xz: damaged") {
		t.Errorf("err = %v, want the archive refused as damaged", err)
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("the hidden block was read: %q", got)
	}
	if alloc > 16<<20 {
		t.Errorf("%d MiB allocated, want under 16", alloc>>20)
	}
}

// TestXZFiltersRefused: an archive of xz --x86 (a BCJ filter before LZMA2,
// for executables) is refused with an error naming the filter, as are
// those of the other filters xz writes; this decodes LZMA2 alone.
func TestXZFiltersRefused(t *testing.T) {
	_, _, err := readInput(t, "../../testdata/archives/auth.log.x86.xz")
	if err == nil || !strings.Contains(err.Error(), "xz filter x86 BCJ in block 1, which this does not decode") {
		t.Errorf("x86: err = %v", err)
	}
	if testing.Short() {
		return
	}
	needXZ(t)
	dir := t.TempDir()
	for filter, name := range map[string]string{"--delta=dist=4": "delta", "--powerpc": "PowerPC BCJ", "--sparc": "SPARC BCJ"} {
		cmd := exec.Command("xz", filter, "--lzma2=preset=6", "-c")
		cmd.Stdin = bytes.NewReader(recordedLog(t))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("xz %s: %v", filter, err)
		}
		p := filepath.Join(dir, name+".xz")
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := readInput(t, p); err == nil || !strings.Contains(err.Error(), "xz filter "+name+" in block 1") {
			t.Errorf("%s: err = %v", filter, err)
		}
	}
}

// TestXZChunkPropertiesAsLZMA2Allows: LZMA2 chunks whose properties have
// lc+lp over 4, which xz refuses, made the decoder allocate a state of 6
// MiB for each chunk of 12 bytes: 2,000 of them, 24 KB, took 12 GB. They
// are refused at the first such chunk; chunks with lc+lp at 4 (24 KiB of
// state each) are read, as xz reads them.
func TestXZChunkPropertiesAsLZMA2Allows(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		props byte
		want  string // "" when it must read
	}{{0x2c, "xz: damaged: LZMA2 properties 0x2c"}, {0x04, ""}} {
		p := filepath.Join(dir, fmt.Sprintf("%#x.xz", c.props))
		if err := os.WriteFile(p, testkit.ChunksXZ(2000, c.props), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath("xz"); err == nil {
			out, err := exec.Command("xz", "-t", p).CombinedOutput()
			t.Logf("xz -t %#x: %v %s", c.props, err, bytes.TrimSpace(out))
			if (err == nil) != (c.want == "") {
				t.Fatalf("xz -t %#x: %v", c.props, err)
			}
		}
		got, alloc, err := readInput(t, p)
		t.Logf("%#x: %d MiB allocated, err %v", c.props, alloc>>20, err)
		if c.want == "" {
			if err != nil || got != strings.Repeat("\x00", 2000)+"\n" {
				t.Errorf("%#x: %d bytes read, err %v", c.props, len(got), err)
			}
		} else if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%#x: err = %v, want %q", c.props, err, c.want)
		}
		if alloc > 128<<20 {
			t.Errorf("%#x: %d MiB allocated, want under 128", c.props, alloc>>20)
		}
	}
}
