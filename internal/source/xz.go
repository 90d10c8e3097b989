package source

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// xzReader decompresses an xz file: its streams, one after the other with
// the padding between them. It follows the container itself and checks
// every field as xz does (the headers and their CRC32s, the sizes, the
// padding, each block's integrity check, the index against the blocks,
// the footers), and gives each block's LZMA2 data to the library's LZMA2
// decoder through xzChunks, which ends where the chunk headers say that
// data ends: whatever the decoder makes of those bytes, it reads none
// that were not checked. (The library's reader of whole streams takes
// the next structure from where its decoder stopped: a chunk declaring
// more bytes than its decoder took could hide, in the rest, a block
// header no check before the decoder saw.)
//
// Each block gets a new dictionary of the size its header asks for,
// allocated there: one larger than max is refused, and the dictionaries
// are also paid for by what they decompress: all the blocks' together may
// come to max plus xzDictPerByte times the bytes the blocks before them
// decompressed to. Without that, a few bytes of empty blocks each asking
// for 64 MiB cost 64 MiB of memory to clear each.
type xzReader struct {
	r   *bufio.Reader
	max int64
	err error

	after   bool      // a stream ended: padding, another stream or the end next
	streams int       // streams so far
	flags   [2]byte   // the stream's flags, as its footer must repeat them
	checkID byte      // the stream's kind of block check
	check   hash.Hash // the block check (nil: none)
	blocks  int64     // blocks of the stream so far
	records hash.Hash // their sizes, as the index must list them
	hdr     [1024]byte

	// The block being read; lz is nil between blocks.
	lz           *lzma.Reader2
	data         xzChunks
	hsize        int64 // its header's size
	csize, usize int64 // the sizes its header declares, -1 for none
	bout         int64 // the bytes it decompressed to so far

	dicts int64 // the dictionaries of the blocks so far, summed
	out   int64 // the bytes the blocks before this one decompressed to
	block int64 // blocks so far, all streams
}

// xzDictPerByte is how many bytes of dictionary each byte a block
// decompresses to pays for, for the blocks after it: 64, for the blocks
// of 1 MiB with xz -9's 64 MiB dictionary that `xz -9 --block-size=1MiB`
// writes (xz -T0 makes blocks of three times the dictionary).
const xzDictPerByte = 64

// errXZDamaged is the error, wrapped, of an xz file that breaks the
// format: xz refuses it too.
var errXZDamaged = errors.New("xz: damaged")

func xzDamaged(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errXZDamaged}, a...)...)
}

// newXZReader reads the first stream header of r (whose bytes start with
// the xz magic) and returns the reader of its data, refusing dictionaries
// over maxDict.
func newXZReader(r *bufio.Reader, maxDict int64) (*xzReader, error) {
	x := &xzReader{r: r, max: maxDict, records: sha256.New()}
	if err := x.streamHeader(); err != nil {
		return nil, err
	}
	return x, nil
}

func (x *xzReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, x.err
	}
	for x.err == nil {
		if x.lz == nil {
			x.err = x.next()
			continue
		}
		n, err := x.lz.Read(p)
		x.bout += int64(n)
		if x.check != nil {
			x.check.Write(p[:n])
		}
		if err == io.EOF {
			x.err = x.endBlock()
		} else if err != nil {
			x.err = x.decodeErr(err)
		}
		if n > 0 {
			return n, x.err
		}
	}
	return 0, x.err
}

// next reads the structure up to the next block and starts it; io.EOF at
// the end of the last stream.
func (x *xzReader) next() error {
	for {
		if x.after {
			if err := x.padding(); err != nil {
				return err
			}
			if err := x.streamHeader(); err != nil {
				return err
			}
		}
		c, err := x.r.ReadByte()
		if err != nil {
			return cut(err)
		}
		if c != 0 {
			return x.blockHeader(c)
		}
		if err := x.index(); err != nil {
			return err
		}
		x.after = true
	}
}

// padding reads the zero bytes after a stream, a multiple of four: io.EOF
// when the file ends there, nil when a stream follows.
func (x *xzReader) padding() error {
	n := 0
	for {
		c, err := x.r.ReadByte()
		if err != nil && err != io.EOF {
			return err
		}
		if err == io.EOF || c != 0 {
			if n%4 != 0 {
				return xzDamaged("%d bytes of stream padding, not a multiple of four", n)
			}
			if err == io.EOF {
				return io.EOF
			}
			return x.r.UnreadByte()
		}
		n++
	}
}

// streamHeader reads a stream header and starts the stream.
func (x *xzReader) streamHeader() error {
	h := x.hdr[:12]
	if _, err := io.ReadFull(x.r, h); err != nil {
		return cut(err)
	}
	if string(h[:6]) != "\xfd7zXZ\x00" {
		return xzDamaged("no stream header after stream %d", x.streams)
	}
	if h[6] != 0 || h[7] > 0x0f || crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return xzDamaged("a stream header that does not check")
	}
	x.flags, x.checkID = [2]byte{h[6], h[7]}, h[7]
	switch x.checkID {
	case 0:
		x.check = nil
	case 1:
		x.check = crc32.NewIEEE()
	case 4:
		x.check = crc64.New(xzCRC64)
	case 10:
		x.check = sha256.New()
	default:
		return fmt.Errorf("xz integrity check of type %d, which this does not know (xz writes CRC32, CRC64, SHA-256 or none); decompress it with xz and pipe it to stdin", x.checkID)
	}
	x.after, x.blocks = false, 0
	x.streams++
	x.records.Reset()
	return nil
}

var xzCRC64 = crc64.MakeTable(crc64.ECMA)

// checkSize is the size of the stream's block check.
func (x *xzReader) checkSize() int {
	if x.check == nil {
		return 0
	}
	return x.check.Size()
}

// xzFilters names the filters of xz's filter chains other than LZMA2.
var xzFilters = map[uint64]string{3: "delta", 4: "x86 BCJ", 5: "PowerPC BCJ", 6: "IA-64 BCJ", 7: "ARM BCJ", 8: "ARM-Thumb BCJ", 9: "SPARC BCJ", 0x0a: "ARM64 BCJ", 0x0b: "RISC-V BCJ"}

// blockHeader reads the block header whose size byte is c, checks it
// (and the dictionary it asks for against what the blocks before paid
// for) and starts the block's decoder.
func (x *xzReader) blockHeader(c byte) error {
	size := (int(c) + 1) * 4
	h := x.hdr[:size]
	h[0] = c
	if _, err := io.ReadFull(x.r, h[1:]); err != nil {
		return cut(err)
	}
	block := x.block + 1
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return xzDamaged("the header of block %d does not check", block)
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return xzDamaged("block %d has header flags xz does not know", block)
	}
	rest := h[2 : size-4]
	x.csize, x.usize = -1, -1
	for _, s := range []struct {
		bit  byte
		size *int64
	}{{0x40, &x.csize}, {0x80, &x.usize}} {
		if flags&s.bit != 0 {
			v, k := uvarint(rest)
			if k == 0 || (s.bit == 0x40 && v == 0) {
				return xzDamaged("the sizes in the header of block %d", block)
			}
			*s.size, rest = int64(v), rest[k:]
		}
	}
	var dict int64
	for f, n := 0, int(flags&3)+1; f < n; f++ {
		id, k := uvarint(rest)
		if k == 0 {
			return xzDamaged("the filters in the header of block %d", block)
		}
		rest = rest[k:]
		psize, k := uvarint(rest)
		if k == 0 || psize > uint64(len(rest)-k) {
			return xzDamaged("the filters in the header of block %d", block)
		}
		props := rest[k : k+int(psize)]
		rest = rest[k+int(psize):]
		if id != 0x21 || f != n-1 {
			name, ok := xzFilters[id]
			if !ok {
				name = fmt.Sprintf("%#x", id)
			}
			if id == 0x21 {
				name = "LZMA2 before another"
			}
			return fmt.Errorf("xz filter %s in block %d, which this does not decode (LZMA2 alone); decompress it with xz and pipe it to stdin", name, block)
		}
		if len(props) != 1 || props[0] > 40 {
			return xzDamaged("the LZMA2 properties in the header of block %d", block)
		}
		dict = 1<<32 - 1
		if d := props[0]; d < 40 {
			dict = int64(2|d&1) << (d/2 + 11)
		}
	}
	for _, b := range rest {
		if b != 0 {
			return xzDamaged("the header padding of block %d", block)
		}
	}
	if dict > x.max {
		return fmt.Errorf("xz dictionary of %d MiB, larger than the %d MiB this reads (xz -9 uses 64 MiB); decompress it with xz and pipe it to stdin", dict>>20, x.max>>20)
	}
	if x.dicts += dict; x.dicts > x.max+xzDictPerByte*x.out {
		return fmt.Errorf("xz blocks whose dictionaries come to %d MiB by block %d, after %d bytes decompressed: more than this allocates (%d MiB, and %d bytes more a byte decompressed: blocks of at least 1 MiB at xz -9); decompress it with xz and pipe it to stdin",
			x.dicts>>20, block, x.out, x.max>>20, xzDictPerByte)
	}
	x.block, x.blocks, x.hsize, x.bout = block, x.blocks+1, int64(size), 0
	x.data = xzChunks{r: x.r, max: x.csize}
	if x.check != nil {
		x.check.Reset()
	}
	lz, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(&x.data)
	if err != nil {
		return x.decodeErr(err)
	}
	x.lz = lz
	return nil
}

// endBlock checks the end of the block whose LZMA2 data the decoder ended:
// where it ended, the sizes, the padding and the check.
func (x *xzReader) endBlock() error {
	d := &x.data
	if !d.end {
		return xzDamaged("the LZMA2 data of block %d ends inside a chunk, %d bytes in", x.block, d.n)
	}
	if x.bout != d.out || (x.usize >= 0 && x.bout != x.usize) || (x.csize >= 0 && d.n != x.csize) {
		return xzDamaged("block %d is not of the sizes its headers say", x.block)
	}
	pad := int((4 - d.n%4) % 4)
	b := x.hdr[:pad+x.checkSize()]
	if _, err := io.ReadFull(x.r, b); err != nil {
		return cut(err)
	}
	for _, c := range b[:pad] {
		if c != 0 {
			return xzDamaged("the padding of block %d", x.block)
		}
	}
	if x.check != nil {
		// CRC32 and CRC64 are stored little-endian.
		var sum []byte
		switch h := x.check.(type) {
		case hash.Hash32:
			sum = binary.LittleEndian.AppendUint32(nil, h.Sum32())
		case hash.Hash64:
			sum = binary.LittleEndian.AppendUint64(nil, h.Sum64())
		default:
			sum = h.Sum(nil)
		}
		if !bytes.Equal(sum, b[pad:]) {
			return xzDamaged("block %d does not match its integrity check", x.block)
		}
	}
	x.record(x.hsize+d.n+int64(x.checkSize()), x.bout)
	x.out += x.bout
	x.lz = nil
	return nil
}

// record adds a block's sizes to those the index must list.
func (x *xzReader) record(unpadded, size int64) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:], uint64(unpadded))
	binary.LittleEndian.PutUint64(b[8:], uint64(size))
	x.records.Write(b[:])
}

// index reads the index of the stream (its indicator read) and the
// stream footer, and checks them against the blocks and the header.
func (x *xzReader) index() error {
	crc := crc32.Update(0, crc32.IEEETable, []byte{0})
	size := int64(1)
	next := func() (uint64, error) {
		var v uint64
		for i := 0; i < 9; i++ {
			c, err := x.r.ReadByte()
			if err != nil {
				return 0, cut(err)
			}
			crc = crc32.Update(crc, crc32.IEEETable, []byte{c})
			size++
			v |= uint64(c&0x7f) << (7 * i)
			if c&0x80 == 0 {
				if c == 0 && i > 0 {
					break
				}
				return v, nil
			}
		}
		return 0, xzDamaged("the index of stream %d", x.streams)
	}
	n, err := next()
	if err != nil {
		return err
	}
	if n != uint64(x.blocks) {
		return xzDamaged("an index listing %d blocks for %d", n, x.blocks)
	}
	records := sha256.New()
	for range n {
		u, err := next()
		if err != nil {
			return err
		}
		s, err := next()
		if err != nil {
			return err
		}
		var b [16]byte
		binary.LittleEndian.PutUint64(b[:], u)
		binary.LittleEndian.PutUint64(b[8:], s)
		records.Write(b[:])
	}
	if !bytes.Equal(records.Sum(nil), x.records.Sum(nil)) {
		return xzDamaged("an index that does not list the sizes of the blocks")
	}
	pad := int((4 - size%4) % 4)
	b := x.hdr[:pad+4+12]
	if _, err := io.ReadFull(x.r, b); err != nil {
		return cut(err)
	}
	crc = crc32.Update(crc, crc32.IEEETable, b[:pad])
	size += int64(pad) + 4
	foot := b[pad+4:]
	if !allZero(b[:pad]) || crc != binary.LittleEndian.Uint32(b[pad:]) {
		return xzDamaged("an index that does not check")
	}
	if crc32.ChecksumIEEE(foot[4:10]) != binary.LittleEndian.Uint32(foot) || string(foot[10:]) != "YZ" ||
		int64(binary.LittleEndian.Uint32(foot[4:])+1)*4 != size || [2]byte(foot[8:10]) != x.flags {
		return xzDamaged("a stream footer that does not check")
	}
	return nil
}

// decodeErr is the error for what the LZMA2 decoder returned: the chunk
// reader's own when it had one (a damaged chunk header, a cut file).
func (x *xzReader) decodeErr(err error) error {
	if x.data.err != nil {
		return x.data.err
	}
	if x.data.end {
		return xzDamaged("the LZMA2 data of block %d goes on after its end marker", x.block)
	}
	return xzDamaged("block %d (%v)", x.block, err)
}

// cut makes the end of the file where a structure goes on an error.
func cut(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// xzChunks is a block's LZMA2 data as the decoder reads it. It follows
// the chunk headers as their bytes go by, checking them as xz does, and
// ends after the end marker: the decoder reads no byte past the block's
// data, whatever it makes of those bytes.
type xzChunks struct {
	r    *bufio.Reader
	max  int64 // the size the block header declares for the data, or -1
	n    int64 // bytes read
	out  int64 // bytes the chunk headers say they decompress to
	left int   // bytes of the current chunk, its header and data, not read
	end  bool  // the current chunk is the end marker
	err  error

	reset bool // a chunk has reset the dictionary, as the first must
	props bool // properties are set since the last dictionary reset
}

func (c *xzChunks) Read(p []byte) (int, error) {
	if c.left == 0 {
		if c.end {
			return 0, io.EOF
		}
		if c.err == nil {
			c.err = c.chunk()
		}
		if c.err != nil {
			return 0, c.err
		}
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= n
	c.n += int64(n)
	if err != nil {
		c.err = cut(err)
		return n, c.err
	}
	return n, nil
}

// chunk reads the header of the next chunk, without taking its bytes.
func (c *xzChunks) chunk() error {
	h, err := c.r.Peek(1)
	if err != nil {
		return cut(err)
	}
	ctl := h[0]
	hl := 1
	switch {
	case ctl == 1 || ctl == 2:
		hl = 3
	case ctl >= 0xc0:
		hl = 6
	case ctl >= 0x80:
		hl = 5
	case ctl != 0:
		return xzDamaged("an LZMA2 chunk of type %#x", ctl)
	}
	if h, err = c.r.Peek(hl); err != nil {
		return cut(err)
	}
	if ctl == 1 || ctl >= 0xe0 {
		c.reset, c.props = true, false
	} else if ctl != 0 && !c.reset {
		return xzDamaged("LZMA2 data that does not start with a dictionary reset")
	}
	var out, data int
	switch {
	case ctl >= 0x80:
		out = int(ctl&0x1f)<<16 | int(h[1])<<8 | int(h[2]) + 1
		data = int(h[3])<<8 | int(h[4]) + 1
		if ctl >= 0xc0 {
			// lc+lp at most 4, as LZMA2 allows: more would make the
			// decoder allocate up to 6 MiB for each chunk's state.
			if p := h[5]; p > (4*5+4)*9+8 || p%9+p/9%5 > 4 {
				return xzDamaged("LZMA2 properties %#x", p)
			}
			c.props = true
		} else if !c.props {
			return xzDamaged("an LZMA2 chunk without the properties it needs")
		}
	case ctl != 0:
		out = int(h[1])<<8 | int(h[2]) + 1
		data = out
	}
	c.left, c.end = hl+data, ctl == 0
	c.out += int64(out)
	if c.max >= 0 && c.n+int64(c.left) > c.max {
		return xzDamaged("LZMA2 data longer than its block header says")
	}
	return nil
}

// uvarint decodes xz's multibyte integer at the start of b: its value and
// length, or a length of 0 when b holds none.
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if b[i] == 0 && i > 0 {
				return 0, 0 // not the shortest form: xz refuses it
			}
			return v, i + 1
		}
	}
	return 0, 0
}
