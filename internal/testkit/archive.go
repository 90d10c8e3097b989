package testkit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// HostileZstd is data as a zstd frame whose header asks for a window of
// 1<<windowLog bytes (a frame `zstd --long=windowLog` would write), made
// with a small window and the header's window descriptor raised: decoders
// that accept it keep that much history.
func HostileZstd(t testing.TB, data []byte, windowLog int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b, zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	out := b.Bytes()
	// magic (4), frame header descriptor, then the window descriptor
	// (exponent<<3 | mantissa, windowLog = 10 + exponent) when the
	// single-segment flag is clear.
	if out[4]&0x20 != 0 {
		t.Fatal("zstd frame is single-segment: no window descriptor")
	}
	out[5] = byte(windowLog-10) << 3
	return out
}

// HostileXZ is data as an xz stream whose LZMA2 dictionary says dictByte
// (40: 4 GiB, the largest; 28: 64 MiB; 30: 128 MiB), the block header's
// CRC32 made right: readers that believe it allocate that dictionary.
func HostileXZ(t testing.TB, data []byte, dictByte byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.WriterConfig{DictCap: 1 << 20}.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	out := b.Bytes()
	// Stream header (12), then the block header: size byte, flags,
	// [sizes], filter flags (ID 0x21, props size 1, dictionary byte).
	h := out[12:]
	size := (int(h[0]) + 1) * 4
	flags := h[1]
	if flags&0xc3 != 0 || h[2] != 0x21 || h[3] != 1 {
		t.Fatalf("unexpected xz block header % x", h[:size])
	}
	h[4] = dictByte
	binary.LittleEndian.PutUint32(h[size-4:], crc32.ChecksumIEEE(h[:size-4]))
	return out
}

// BlocksXZ is an xz stream (no integrity check) of one block per element
// of blocks, its bytes in LZMA2's uncompressed chunks (an empty element is
// an empty block), every block header declaring the LZMA2 dictionary
// dictByte says (28: 64 MiB, that of xz -9) and no sizes, as `xz -T1
// --block-size` writes them. xz -t accepts it whatever the count; readers
// that allocate each block's dictionary allocate it that many times.
func BlocksXZ(dictByte byte, blocks ...[]byte) []byte {
	uvarint := func(b []byte, v uint64) []byte {
		for v >= 0x80 {
			b, v = append(b, byte(v)|0x80), v>>7
		}
		return append(b, byte(v))
	}
	out := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}
	out = le32(out, crc32.ChecksumIEEE([]byte{0, 0}))
	index := uvarint([]byte{0}, uint64(len(blocks)))
	for _, data := range blocks {
		// Header: its size/4-1, flags (one filter, no sizes), LZMA2 and
		// its dictionary byte, padding, CRC32.
		h := []byte{2, 0, 0x21, 1, dictByte, 0, 0, 0}
		block := le32(h, crc32.ChecksumIEEE(h))
		index = uvarint(index, uint64(len(block)+len(data)+3*((len(data)+0xffff)>>16)+1))
		index = uvarint(index, uint64(len(data)))
		ctl := byte(1) // the first chunk resets the dictionary
		for len(data) > 0 {
			n := min(len(data), 1<<16)
			block = append(block, ctl, byte((n-1)>>8), byte(n-1))
			block = append(block, data[:n]...)
			data, ctl = data[n:], 2
		}
		block = append(block, 0) // end of the LZMA2 data
		for len(block)%4 != 0 {
			block = append(block, 0)
		}
		out = append(out, block...)
	}
	return indexAndFooter(out, index)
}

// SmuggledXZ is an xz stream (no integrity check) whose one block holds an
// LZMA2 chunk that declares more compressed bytes than its range decoder
// takes: six bytes make its one byte of output (a zero), and the rest of
// the chunk, to a reader that takes the next chunk header where the
// decoder stopped, is the end of the block and a second block whose
// header asks for the LZMA2 dictionary dictByte says (30: 128 MiB), the
// text hidden in it (compressed: 128 MiB of one line fits), then that
// reader's index and footer. Zero bytes
// after the chunk end the block, index and stream as a reader that
// follows the declared sizes sees them, and are stream padding to the
// other. xz -t refuses it: a chunk must take all its bytes.
func SmuggledXZ(dictByte byte, hidden []byte) []byte {
	header := func(dict byte) []byte {
		h := []byte{2, 0, 0x21, 1, dict, 0, 0, 0}
		return le32(h, crc32.ChecksumIEEE(h))
	}
	pad := func(b []byte, from int) []byte {
		for (len(b)-from)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	// What the chunk holds past the decoder's six bytes: the end marker
	// and padding of block 1 (13 bytes of LZMA2 data as that reader
	// counts them), block 2, the index of both and the footer.
	var s []byte
	s = append(s, 0, 0, 0, 0)
	s = append(s, header(dictByte)...)
	start := len(s)
	var lz bytes.Buffer
	w, err := lzma.Writer2Config{DictCap: 64 << 10}.NewWriter2(&lz)
	if err != nil {
		panic(err)
	}
	w.Write(hidden)
	w.Close()
	s = append(s, lz.Bytes()...)
	data2 := len(s) - start
	s = pad(s, start)
	index := []byte{0, 2, 12 + 13, 1}
	index = binary.AppendUvarint(index, uint64(12+data2))
	index = binary.AppendUvarint(index, uint64(len(hidden)))
	s = indexAndFooter(s, index)

	out := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}
	out = le32(out, crc32.ChecksumIEEE([]byte{0, 0}))
	out = append(out, header(0)...) // a 4 KiB dictionary
	c := 6 + len(s)
	if c > 1<<16 {
		panic("SmuggledXZ: the hidden text does not fit in one chunk")
	}
	// LZMA chunk, dictionary and state reset, new properties (lc 3, lp
	// 0, pb 2): 1 byte out of c in.
	out = append(out, 0xe0, 0, 0, byte((c-1)>>8), byte(c-1), 0x5d)
	out = append(out, make([]byte, 6)...)
	out = append(out, s...)
	// The end marker, padding, an empty index and a footer to a reader
	// that skips the chunk's bytes: zeros it does not check, and a
	// multiple of four.
	z := 21 + (4-(7+c)%4)%4
	return append(out, make([]byte, z+(4-z%4)%4)...)
}

// ChunksXZ is an xz stream (no integrity check) of one block of n LZMA2
// chunks, each decompressing to one zero byte from six zero bytes, each
// after the first resetting the decoder's state with the properties byte
// props ((pb*5+lp)*9+lc; LZMA2 allows lc+lp up to 4: 0x2c is lc 8, lp 4,
// whose state of 0x300<<12 probabilities the library's decoder allocates
// anew, 6 MiB, for every chunk). xz -t accepts it with lc+lp at most 4.
func ChunksXZ(n int, props byte) []byte {
	out := []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}
	out = le32(out, crc32.ChecksumIEEE([]byte{0, 0}))
	h := []byte{2, 0, 0x21, 1, 0, 0, 0, 0} // a 4 KiB dictionary
	out = le32(append(out, h...), crc32.ChecksumIEEE(h))
	start := len(out)
	for i := range n {
		// LZMA, 1 byte out of 6; the first resets the dictionary too
		// and has the usual properties (lc 3, lp 0, pb 2).
		if i == 0 {
			out = append(out, 0xe0, 0, 0, 0, 5, 0x5d)
		} else {
			out = append(out, 0xc0, 0, 0, 0, 5, props)
		}
		out = append(out, make([]byte, 6)...)
	}
	out = append(out, 0)
	data := len(out) - start
	for (len(out)-start)%4 != 0 {
		out = append(out, 0)
	}
	index := []byte{0, 1}
	index = binary.AppendUvarint(index, uint64(12+data))
	index = binary.AppendUvarint(index, uint64(n))
	return indexAndFooter(out, index)
}

// indexAndFooter appends to out an xz stream's index (its records, index,
// padded and with its CRC32) and the stream footer of a stream with no
// integrity check.
func indexAndFooter(out, index []byte) []byte {
	for len(index)%4 != 0 {
		index = append(index, 0)
	}
	index = le32(index, crc32.ChecksumIEEE(index))
	out = append(out, index...)
	foot := le32(nil, uint32(len(index)/4-1))
	foot = append(foot, 0, 0)
	out = le32(out, crc32.ChecksumIEEE(foot))
	return append(append(out, foot...), 'Y', 'Z')
}

// le32 appends v to b, little-endian, as xz writes its numbers.
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
