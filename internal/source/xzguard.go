package source

import (
	"errors"
	"fmt"
	"io"
)

// xzGuard follows an xz file's structure as its bytes go to the xz reader
// (streams, block headers, LZMA2 chunks, indexes, padding) and stops it at
// a block header whose LZMA2 dictionary is larger than max, before the
// reader sees that header whole and allocates the dictionary. It walks
// the chunk headers only and skips their data, so it costs little; what
// it cannot follow is an error, as the xz reader would find it too.
//
// The xz reader allocates a new dictionary for every block, so the
// dictionaries are also paid for by what they decompress: all the blocks'
// together may come to max plus xzDictPerByte times the bytes the blocks
// before decompress to (the chunk headers say how many). Without that, a
// few bytes of empty blocks each asking for 64 MiB cost 64 MiB of memory
// to clear each.
type xzGuard struct {
	r   io.Reader
	max int64
	err error

	dicts int64 // the dictionaries of the blocks so far, summed
	out   int64 // the bytes the chunks so far decompress to
	block int64 // blocks so far

	state int
	need  int    // bytes to collect into hdr before handling the state
	hdr   []byte // collected bytes
	skip  int64  // bytes to pass without looking
	check int    // size of the block check of the current stream
	size  int64  // bytes of the current block's data or index, for padding
	nrec  uint64 // index: varints left to read
	vint  int    // index: bytes of the varint being read
}

const (
	xzStreamHeader = iota // collecting the 12-byte stream header
	xzBlockStart          // the first byte of a block header, or 0 for the index
	xzBlockHeader         // collecting the rest of a block header
	xzChunk               // an LZMA2 chunk's control byte
	xzChunkHeader         // collecting the rest of a chunk header
	xzBlockEnd            // padding and check after the last chunk
	xzIndex               // the index's varints
	xzIndexEnd            // index padding, CRC32 and the stream footer
	xzStreamPad           // zero bytes between streams, or the next stream
)

// xzDictPerByte is how many bytes of dictionary each byte a block
// decompresses to pays for, for the blocks after it: 64, for the blocks
// of 1 MiB with xz -9's 64 MiB dictionary that `xz -9 --block-size=1MiB`
// writes (xz -T0 makes blocks of three times the dictionary).
const xzDictPerByte = 64

var errXZStructure = errors.New("xz: damaged stream (its structure cannot be followed)")

func (g *xzGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; {
		k, gerr := g.feed(p[i:n])
		if gerr != nil {
			g.err = gerr
			return i + k, gerr
		}
		i += k
	}
	return n, err // a cut stream: the xz reader says so
}

// feed handles the start of b and returns how many bytes it consumed (at
// least one unless it fails; on failure, the bytes before the one that
// made the error).
func (g *xzGuard) feed(b []byte) (int, error) {
	if g.skip > 0 {
		k := int64(len(b))
		if k > g.skip {
			k = g.skip
		}
		g.skip -= k
		return int(k), nil
	}
	if g.need > 0 {
		k := min(g.need-len(g.hdr), len(b))
		g.hdr = append(g.hdr, b[:k]...)
		if len(g.hdr) < g.need {
			return k, nil
		}
		if err := g.collected(); err != nil {
			return k - 1, err
		}
		return k, nil
	}
	c := b[0]
	switch g.state {
	case xzStreamHeader, xzStreamPad:
		if c == 0 && g.state == xzStreamPad {
			return 1, nil
		}
		if c != 0xfd {
			return 0, errXZStructure
		}
		g.state, g.need, g.hdr = xzStreamHeader, 12, append(g.hdr[:0], c)
	case xzBlockStart:
		if c == 0 {
			// The index; its record count comes first.
			g.state, g.size, g.nrec, g.vint, g.hdr = xzIndex, 1, ^uint64(0), 0, g.hdr[:0]
			return 1, nil
		}
		g.state, g.need, g.hdr = xzBlockHeader, (int(c)+1)*4, append(g.hdr[:0], c)
	case xzChunk:
		g.size++
		switch {
		case c == 0:
			pad := (4 - g.size%4) % 4
			g.state, g.skip = xzBlockStart, pad+int64(g.check)
		case c == 1 || c == 2:
			g.state, g.need, g.hdr = xzChunkHeader, 3, append(g.hdr[:0], c)
		case c >= 0x80:
			h := 5
			if c >= 0xc0 {
				h = 6
			}
			g.state, g.need, g.hdr = xzChunkHeader, h, append(g.hdr[:0], c)
		default:
			return 0, errXZStructure
		}
	case xzIndex:
		g.size++
		if g.vint++; g.vint > 9 {
			return 0, errXZStructure
		}
		if g.nrec == ^uint64(0) { // the record count, a varint too
			g.hdr = append(g.hdr, c)
			if c&0x80 == 0 {
				cnt, _ := uvarint(g.hdr)
				if cnt > 1<<40 {
					return 0, errXZStructure
				}
				g.nrec, g.hdr, g.vint = 2*cnt, g.hdr[:0], 0
				if g.nrec == 0 {
					g.endIndex()
				}
			}
			return 1, nil
		}
		if c&0x80 == 0 {
			g.vint = 0
			if g.nrec--; g.nrec == 0 {
				g.endIndex()
			}
		}
		return 1, nil
	default:
		return 0, errXZStructure
	}
	return 1, nil
}

// endIndex skips the index padding, its CRC32 and the stream footer.
func (g *xzGuard) endIndex() {
	pad := (4 - g.size%4) % 4
	g.state, g.skip, g.hdr = xzStreamPad, pad+4+12, g.hdr[:0]
}

// collected handles a complete header in g.hdr.
func (g *xzGuard) collected() error {
	h := g.hdr
	g.need = 0
	switch g.state {
	case xzStreamHeader:
		if string(h[:6]) != "\xfd7zXZ\x00" || h[6] != 0 || h[7] > 0x0f {
			return errXZStructure
		}
		g.check = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}[h[7]]
		g.state = xzBlockStart
	case xzBlockHeader:
		dict, err := xzBlockDict(h)
		if err != nil {
			return err
		}
		if dict > g.max {
			return fmt.Errorf("xz dictionary of %d MiB, larger than the %d MiB this reads (xz -9 uses 64 MiB); decompress it with xz and pipe it to stdin", dict>>20, g.max>>20)
		}
		g.block++
		if g.dicts += dict; g.dicts > g.max+xzDictPerByte*g.out {
			return fmt.Errorf("xz blocks whose dictionaries come to %d MiB by block %d, after %d bytes decompressed: more than this allocates (%d MiB, and %d bytes more a byte decompressed: blocks of at least 1 MiB at xz -9); decompress it with xz and pipe it to stdin",
				g.dicts>>20, g.block, g.out, g.max>>20, xzDictPerByte)
		}
		g.state, g.size = xzChunk, 0
	case xzChunkHeader:
		g.size += int64(len(h) - 1)
		var data int64
		if h[0] < 0x80 {
			data = int64(h[1])<<8 | int64(h[2]) + 1
			g.out += data
		} else {
			data = int64(h[3])<<8 | int64(h[4]) + 1
			g.out += int64(h[0]&0x1f)<<16 | int64(h[1])<<8 | int64(h[2]) + 1
		}
		g.size += data
		g.state, g.skip = xzChunk, data
	}
	g.hdr = g.hdr[:0]
	return nil
}

// xzBlockDict returns the LZMA2 dictionary size a block header (its size
// byte included) asks for.
func xzBlockDict(h []byte) (int64, error) {
	if len(h) < 8 {
		return 0, errXZStructure
	}
	flags := h[1]
	if flags&0x3c != 0 {
		return 0, errXZStructure
	}
	rest := h[2 : len(h)-4] // without the CRC32
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if present {
			_, k := uvarint(rest)
			if k <= 0 {
				return 0, errXZStructure
			}
			rest = rest[k:]
		}
	}
	var dict int64 = -1
	for f := 0; f <= int(flags&3); f++ {
		id, k := uvarint(rest)
		if k <= 0 {
			return 0, errXZStructure
		}
		rest = rest[k:]
		psize, k := uvarint(rest)
		if k <= 0 || psize > uint64(len(rest)-k) {
			return 0, errXZStructure
		}
		props := rest[k : k+int(psize)]
		rest = rest[k+int(psize):]
		if id == 0x21 { // LZMA2
			if len(props) != 1 || props[0] > 40 {
				return 0, errXZStructure
			}
			d := props[0]
			if d == 40 {
				dict = 1<<32 - 1
			} else {
				dict = int64(2|d&1) << (d/2 + 11)
			}
		}
	}
	if dict < 0 {
		return 0, errXZStructure
	}
	return dict, nil
}

// uvarint decodes xz's multibyte integer at the start of b: its value and
// length, or a length of 0 when b holds none.
func uvarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}
