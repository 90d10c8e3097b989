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
