package testkit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
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
	le32 := func(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }
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
