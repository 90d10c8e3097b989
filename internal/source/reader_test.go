package source

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sshguard-go/internal/detect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

func readAll(t *testing.T, r io.Reader) ([]string, []int64, *LineReader) {
	t.Helper()
	lr := NewLineReader(r)
	var lines []string
	var nums []int64
	for {
		l, n, ok := lr.Next()
		if !ok {
			break
		}
		lines = append(lines, l)
		nums = append(nums, n)
	}
	if err := lr.Err(); err != nil {
		t.Fatal(err)
	}
	return lines, nums, lr
}

func TestLineReaderBasics(t *testing.T) {
	lines, nums, _ := readAll(t, iotest.OneByteReader(strings.NewReader("a\nbb\n\nccc")))
	if strings.Join(lines, "|") != "a|bb||ccc" || nums[3] != 4 {
		t.Fatalf("lines %q nums %v", lines, nums)
	}
}

func TestLineReaderOverlongLineLosesNothingElse(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("first\n")
	b.WriteString(strings.Repeat("x", 3*MaxLine)) // longer than any buffer
	b.WriteString("\nsecond\n")
	b.WriteString(strings.Repeat("y", MaxLine+10)) // longer than MaxLine, fits the buffer
	b.WriteString("\nthird\n")
	lines, nums, lr := readAll(t, &b)
	var kept []string
	for i, l := range lines {
		if l != "" {
			kept = append(kept, l)
			if l == "third" && nums[i] != 5 {
				t.Errorf("third is line %d, want 5", nums[i])
			}
		}
	}
	if strings.Join(kept, "|") != "first|second|third" {
		t.Fatalf("kept %q", kept)
	}
	if lr.Overlong != 2 {
		t.Fatalf("Overlong = %d, want 2", lr.Overlong)
	}
}

func TestLineReaderBlockBoundaries(t *testing.T) {
	// Lines straddling the 1 MiB block boundary come back whole.
	var b bytes.Buffer
	var want []string
	size := 3 * len(NewLineReader(nil).buf)
	for i := 0; b.Len() < size; i++ {
		l := strings.Repeat(string(rune('a'+i%26)), 1+i%300)
		want = append(want, l)
		b.WriteString(l + "\n")
	}
	lines, _, _ := readAll(t, &b)
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d", len(lines), len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Fatalf("line %d = %q, want %q", i+1, lines[i], want[i])
		}
	}
}

func TestScanJunkKeepsRealLines(t *testing.T) {
	junk := []byte("\x00\xff\xfe binary \x1b[31m\n")
	junk = append(junk, bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)...)
	junk = append(junk, "\nNov 23 20:14:49 h sshd[1]: Invalid user \xff\xfe from 192.0.2.1 port 1\n"...)
	junk = append(junk, "Nov 23 20:14:49 h sshd[1]: Failed password for invalid user \xff\xfe from 192.0.2.1 port 1 ssh2\n"...)
	var s detect.Scanner
	var recs []detect.Record
	in := &Input{Name: "junk", Reader: bytes.NewReader(junk)}
	if err := scanInput(&s, in, func(r *detect.Record) { recs = append(recs, *r) }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Client() != "192.0.2.1" || recs[0].Line != 3 {
		t.Fatalf("records %+v", recs)
	}
	out := recs[0].AppendJSON(nil, "junk", 3)
	if !bytes.Contains(out, []byte(`"user":"\ufffd\ufffd"`)) {
		t.Fatalf("invalid UTF-8 not replaced in JSON: %s", out)
	}
}

func TestOpenInputGzipAndErrors(t *testing.T) {
	dir := t.TempDir()
	gz := filepath.Join(dir, "auth.log.2") // no .gz suffix: detected by magic
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"))
	zw.Close()
	os.WriteFile(gz, b.Bytes(), 0o644)
	in, err := OpenInput(gz, nil)
	if err != nil {
		t.Fatal(err)
	}
	var s detect.Scanner
	n := 0
	if err := scanInput(&s, in, func(*detect.Record) { n++ }); err != nil || n != 1 {
		t.Fatalf("gzip: %d records, err %v", n, err)
	}
	in.Close()

	// A truncated archive: the lines before the damage are kept, and the
	// error says what happened.
	trunc := filepath.Join(dir, "trunc.gz")
	var big bytes.Buffer
	zw = gzip.NewWriter(&big)
	for i := 0; i < 2000; i++ {
		zw.Write([]byte("Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\n"))
	}
	zw.Close()
	os.WriteFile(trunc, big.Bytes()[:big.Len()/2], 0o644)
	in, err = OpenInput(trunc, nil)
	if err != nil {
		t.Fatal(err)
	}
	n = 0
	err = scanInput(&s, in, func(*detect.Record) { n++ })
	if err == nil || n == 0 {
		t.Fatalf("truncated gzip: %d records, err %v", n, err)
	}
	in.Close()

	if _, err := OpenInput(filepath.Join(dir, "missing"), nil); err == nil {
		t.Fatal("missing file opened")
	}
	if _, err := OpenInput(dir, nil); err == nil || !strings.Contains(err.Error(), "directory") {
		t.Fatalf("directory: %v", err)
	}
}

// scanInput scans every line of in as the scan command does.
func scanInput(s *detect.Scanner, in *Input, emit func(*detect.Record)) error {
	if !in.ModTime.IsZero() {
		s.SetRef(in.ModTime)
	}
	return in.Lines(func(text string, n int64) { s.Line(in.Name, n, text, emit) })
}

// TestOpenInputCompressions: gzip, zstd, bzip2 and xz archives are read by
// their content, whatever their names; a plain file as it is.
func TestOpenInputCompressions(t *testing.T) {
	const text = "Nov 23 20:14:49 h sshd[1]: Invalid user a from 192.0.2.1 port 1\nNov 23 20:14:50 h sshd[2]: Invalid user b from 192.0.2.2 port 2\n"
	dir := t.TempDir()
	var gz, zs, xzb bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(text))
	zw.Close()
	enc, _ := zstd.NewWriter(&zs)
	enc.Write([]byte(text))
	enc.Close()
	xw, _ := xz.NewWriter(&xzb)
	xw.Write([]byte(text))
	xw.Close()
	files := map[string][]byte{"plain": []byte(text), "a.1": gz.Bytes(), "b.1": zs.Bytes(), "c.1": xzb.Bytes()}
	if bz, err := exec.Command("sh", "-c", "printf '%s' \"$0\" | bzip2", text).Output(); err == nil {
		files["d.1"] = bz
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("bzip2: %v", err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		in, err := OpenInput(p, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var lines []string
		if err := in.Lines(func(l string, _ int64) { lines = append(lines, l) }); err != nil || strings.Join(lines, "\n")+"\n" != text {
			t.Errorf("%s: %q %v", name, lines, err)
		}
		in.Close()
	}
}

func TestGlob(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"auth.log", "auth.log.1", "auth.log.2.gz", "other.log", "odd[1].log"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pattern, want := range map[string][]string{
		"auth.log*":  {"auth.log", "auth.log.1", "auth.log.2.gz"},
		"auth.log":   {"auth.log"},
		"none*":      {"none*"},      // kept: opening it reports it
		"odd[1].log": {"odd[1].log"}, // a file by that very name
		"-":          {"-"},
	} {
		if pattern != "-" {
			pattern = filepath.Join(dir, pattern)
			for i := range want {
				want[i] = filepath.Join(dir, want[i])
			}
		}
		if got := Glob(pattern); !slices.Equal(got, want) {
			t.Errorf("Glob(%q) = %q, want %q", pattern, got, want)
		}
	}
}
