package source

import (
	"compress/bzip2"

	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// LineReader reads newline-terminated lines in large blocks and hands them
// out as strings that share one allocation per block, so reading costs no
// allocation per line. A line longer than MaxLine is skipped whole and
// counted in Overlong; the lines around it are not affected.
type LineReader struct {
	r        io.Reader
	buf      []byte
	n        int    // bytes in buf not yet handed out
	block    string // complete lines being handed out
	off      int    // next line in block
	line     int64  // number of the last line returned
	err      error
	skipping bool // inside an overlong line

	// Overlong counts the lines skipped because they were longer than
	// MaxLine.
	Overlong int64
	// BytesRead counts bytes consumed from the underlying reader.
	BytesRead int64
	// Block counts the blocks handed out: the lines of one block share
	// its allocation (at most 4*MaxLine bytes), so whoever keeps lines of
	// many blocks keeps that much each.
	Block int64
}

// MaxLine is the longest line a LineReader returns. sshd's own lines are
// under 2 KiB; anything near this is junk.
const MaxLine = 256 << 10

// NewLineReader returns a LineReader over r.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{r: r, buf: make([]byte, 4*MaxLine)}
}

// Next returns the next line without its newline, and its 1-based number.
// It returns false at the end of the input or on a read error (see Err).
func (lr *LineReader) Next() (string, int64, bool) {
	for {
		if lr.off < len(lr.block) {
			rest := lr.block[lr.off:]
			i := strings.IndexByte(rest, '\n')
			var line string
			if i < 0 {
				line, lr.off = rest, len(lr.block)
			} else {
				line, lr.off = rest[:i], lr.off+i+1
			}
			lr.line++
			return line, lr.line, true
		}
		if lr.err != nil {
			return "", lr.line, false
		}
		lr.fill()
	}
}

// Err returns the read error that ended the input, or nil at a clean end.
func (lr *LineReader) Err() error {
	if errors.Is(lr.err, io.EOF) {
		return nil
	}
	return lr.err
}

// fill reads until buf holds at least one newline, and turns the complete
// lines into the next block.
func (lr *LineReader) fill() {
	lr.block, lr.off = "", 0
	for lr.err == nil {
		if lr.n == len(lr.buf) {
			// A line longer than the buffer: drop what we have of it.
			if !lr.skipping {
				lr.skipping = true
				lr.Overlong++
				lr.line++
			}
			lr.n = 0
		}
		m, err := lr.r.Read(lr.buf[lr.n:])
		lr.BytesRead += int64(m)
		lr.err = err
		if m == 0 {
			continue
		}
		start := lr.n
		lr.n += m
		last := bytes.LastIndexByte(lr.buf[start:lr.n], '\n')
		if last < 0 {
			continue
		}
		last += start
		from := 0
		if lr.skipping {
			from = bytes.IndexByte(lr.buf[:lr.n], '\n') + 1
			lr.skipping = false
		}
		if from <= last {
			lr.cut(from, last+1)
		}
		if lr.block != "" {
			return
		}
	}
	if lr.n > 0 && !lr.skipping {
		lr.cut(0, lr.n)
	}
}

// cut makes buf[from:to] the block and keeps the rest of buf.
func (lr *LineReader) cut(from, to int) {
	lr.block = dropOverlong(lr.buf[from:to], &lr.Overlong)
	lr.Block++
	lr.n = copy(lr.buf, lr.buf[to:lr.n])
}

// Glob expands a file name holding *, ? or [ that names no file as the
// shell would (for timers and cron jobs that run without one), in name
// order; a pattern that matches nothing, or a plain name, is kept as it is,
// to be reported when it is opened.
func Glob(name string) []string {
	if !strings.ContainsAny(name, "*?[") {
		return []string{name}
	}
	if _, err := os.Lstat(name); err == nil {
		return []string{name}
	}
	if m, err := filepath.Glob(name); err == nil && len(m) > 0 {
		return m
	}
	return []string{name}
}

// dropOverlong returns b as a string without lines longer than MaxLine.
// Dropped lines keep their number: an empty line stands in their place.
func dropOverlong(b []byte, overlong *int64) string {
	if len(b) <= MaxLine || !hasOverlong(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if len(line) > MaxLine {
			*overlong++
			line = []byte{'\n'}
		}
		sb.Write(line)
	}
	return sb.String()
}

func hasOverlong(b []byte) bool {
	for len(b) > MaxLine {
		i := bytes.IndexByte(b, '\n')
		if i < 0 || i > MaxLine {
			return true
		}
		b = b[i+1:]
	}
	return false
}

// Input is an offline log source: a plain file, a compressed archive
// (gzip, zstd, bzip2 or xz, recognised by its magic bytes, whatever its
// name), an object in S3, or standard input.
type Input struct {
	Name    string    // as given; "-" is stdin
	ModTime time.Time // zero for stdin
	Size    int64     // size on disk, -1 when unknown
	// Compressed is set for gzip archives: Size is then not the size of
	// what Reader yields.
	Compressed bool
	io.Reader
	closers []io.Closer

	// Overlong counts the lines Lines skipped for their length.
	Overlong int64
	// Block is, while Lines calls its function, the number of the block
	// (LineReader.Block) the line's text shares.
	Block int64
}

// OpenInput opens name for reading ("-" is stdin). Gzip archives are
// decompressed transparently.
func OpenInput(name string, stdin io.Reader) (*Input, error) {
	in := &Input{Name: name, Size: -1}
	var r io.Reader
	if name == "-" {
		r = stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		in.closers = append(in.closers, f)
		if st, err := f.Stat(); err == nil {
			if st.IsDir() {
				f.Close()
				return nil, fmt.Errorf("%s: is a directory", name)
			}
			in.ModTime, in.Size = st.ModTime(), st.Size()
		}
		r = f
	}
	if err := in.decompress(r); err != nil {
		in.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// NewInput makes an Input of r, named name, decompressed by its content;
// closing the Input closes c too (nil: nothing to close).
func NewInput(name string, r io.Reader, c io.Closer) (*Input, error) {
	in := &Input{Name: name, Size: -1}
	if c != nil {
		in.closers = append(in.closers, c)
	}
	if err := in.decompress(r); err != nil {
		in.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

// decompress sets in.Reader to r, decompressed when its first bytes say
// it is gzip, zstd, bzip2 or xz.
func (in *Input) decompress(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	var zr io.Reader
	var err error
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		var g *gzip.Reader
		if g, err = gzip.NewReader(br); err == nil {
			in.closers, zr = append(in.closers, g), g
		}
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		var z *zstd.Decoder
		z, err = zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(MaxZstdWindow), zstd.WithDecoderMaxMemory(MaxZstdWindow))
		if err == nil {
			in.closers = append(in.closers, closerFunc(func() error { z.Close(); return nil }))
			zr = &limitErr{r: z, what: "zstd", limit: MaxZstdWindow}
		}
	case bytes.HasPrefix(magic, []byte("BZh")):
		zr = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		// A block's dictionary is as large as its header asks, up to 4
		// GiB: xzReader checks every header before the decoder sees it.
		zr, err = newXZReader(br, MaxXZDict)
	default:
		in.Reader = br
		return nil
	}
	if err != nil {
		return err
	}
	in.Reader, in.Compressed = zr, true
	return nil
}

// MaxZstdWindow is the largest zstd window read: 128 MiB, what the zstd
// tool itself decodes without --long or --memory (windowLog 27), and what
// `zstd --long` (27), --ultra -22 and every level below write. A larger
// window is refused before its memory is taken.
const MaxZstdWindow = 128 << 20

// MaxXZDict is the largest xz (LZMA2) dictionary read: 64 MiB, that of
// xz -9 and -9e, the largest preset. A block header asking for more
// (up to 4 GiB) is refused before its memory is taken.
const MaxXZDict = 64 << 20

// limitErr makes the zstd decoder's window error name the limit.
type limitErr struct {
	r     io.Reader
	what  string
	limit int
}

func (l *limitErr) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && (errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded)) {
		err = fmt.Errorf("%s window larger than the %d MiB this reads (%w); decompress it with a tool given more memory and pipe it to stdin", l.what, l.limit>>20, err)
	}
	return n, err
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Lines calls line with every line of in and its 1-based number, until
// the end of the input; it returns the read error that ended it early, if
// any (the lines before it were delivered). Lines longer than MaxLine are
// skipped and counted in Overlong.
func (in *Input) Lines(line func(text string, n int64)) error {
	lr := NewLineReader(in.Reader)
	for {
		text, n, ok := lr.Next()
		if !ok {
			break
		}
		in.Block = lr.Block
		line(text, n)
	}
	in.Overlong += lr.Overlong
	return lr.Err()
}

// Close closes the file and the decompressor.
func (in *Input) Close() error {
	var err error
	for i := len(in.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, in.closers[i].Close())
	}
	return err
}
