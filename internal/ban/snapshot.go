package ban

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

// A Window's snapshot is what it counted, written at a daemon's stop and
// read at its next start, so that a restart (an upgrade, a reboot) does
// not forget the attempts of the short window and the horizons: a slow
// attacker's days of guesses go on counting. Its memory is written as it
// is, a block at a time (tens of MB for a million keys, in well under a
// second); the key index and the least-recently-seen order are rebuilt
// from it. A snapshot is taken only by a Window of the same shape (events
// per key, horizons' buckets, MaxTracked); another is refused whole, and
// the caller starts afresh.

// snapshotMagic opens a snapshot; its last byte is the format's version.
var snapshotMagic = [8]byte{'s', 'g', 'w', 'i', 'n', 'd', 'o', 1}

// snapshotHead is a snapshot's fixed header: the shape, then the state.
type snapshotHead struct {
	Magic    [8]byte
	Slots    uint32
	Max      uint64
	Horizons uint32
	Buckets  [MaxHorizons]int64 // each horizon's bucket length, seconds
	Base     int64
	N        uint32 // entries allocated, the sentinel included
	Free     uint32 // how many of them are free
	Entry    uint32 // the size of an entry in memory (a build with another layout refuses it)
}

// ErrSnapshotShape is Load's error for a snapshot of a Window of another
// shape (the configuration changed between the runs).
var ErrSnapshotShape = errors.New("counted by a window of another shape (threshold, weights, horizons or max_tracked changed)")

// Fresh returns an empty Window of w's shape and limits.
func (w *Window) Fresh() *Window {
	nw := &Window{window: w.window, threshold: w.threshold, slots: w.slots, max: w.max, horizons: w.horizons, index: map[key]uint32{}, n: 1}
	nw.grow()
	return nw
}

func (w *Window) head() snapshotHead {
	h := snapshotHead{Magic: snapshotMagic, Slots: uint32(w.slots), Max: uint64(w.max), Horizons: uint32(len(w.horizons)),
		Base: w.base, N: w.n, Free: uint32(len(w.free)), Entry: uint32(unsafe.Sizeof(entry{}))}
	for i, hz := range w.horizons {
		h.Buckets[i] = hz.bucket
	}
	return h
}

// Save writes w's state to out.
func (w *Window) Save(out io.Writer) error {
	bw := bufio.NewWriterSize(out, 1<<20)
	h := w.head()
	if err := binary.Write(bw, binary.LittleEndian, &h); err != nil {
		return err
	}
	if err := binary.Write(bw, binary.LittleEndian, w.free); err != nil {
		return err
	}
	for _, c := range w.chunks {
		for _, b := range c.raw() {
			if _, err := bw.Write(b); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// Load replaces w's state with the snapshot in in, written by Save of a
// Window of the same shape (else ErrSnapshotShape, w unchanged). Its
// window and thresholds stay w's own.
// A *bufio.Reader is read no further than the snapshot (others may be
// read past it): snapshots one after another are read through one.
func (w *Window) Load(in io.Reader) error {
	br, ok := in.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(in, 1<<20)
	}
	var h snapshotHead
	if err := binary.Read(br, binary.LittleEndian, &h); err != nil {
		return fmt.Errorf("snapshot header: %w", err)
	}
	if h.Magic != snapshotMagic {
		return errors.New("not a snapshot of this version")
	}
	mine := w.head()
	if h.Slots != mine.Slots || h.Max != mine.Max || h.Horizons != mine.Horizons || h.Buckets != mine.Buckets || h.Entry != mine.Entry {
		return ErrSnapshotShape
	}
	if h.N < 1 || h.Free > h.N || uint64(h.N) > uint64(w.max)+blockSize+1 {
		return fmt.Errorf("snapshot of %d entries (%d free) for at most %d", h.N, h.Free, w.max)
	}
	free := make([]uint32, h.Free)
	if err := binary.Read(br, binary.LittleEndian, free); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	nw := &Window{window: w.window, threshold: w.threshold, slots: w.slots, max: w.max, horizons: w.horizons,
		base: h.Base, index: make(map[key]uint32, h.N), n: h.N, free: free}
	for uint32(len(nw.chunks))*blockSize < h.N || len(nw.chunks) == 0 {
		nw.grow()
		for _, b := range nw.chunks[len(nw.chunks)-1].raw() {
			if _, err := io.ReadFull(br, b); err != nil {
				return fmt.Errorf("snapshot: %w", err)
			}
		}
	}
	// The index and the order from the entries: every entry linked from
	// the sentinel is a key; each must be one the index does not hold yet,
	// allocated, not free, and the list must end at the sentinel.
	isFree := make(map[uint32]bool, len(free))
	for _, i := range free {
		if i == 0 || i >= h.N || isFree[i] {
			return errors.New("snapshot: a free entry out of range or twice")
		}
		isFree[i] = true
	}
	for i, steps := nw.ent(0).next, uint32(0); i != 0; i, steps = nw.ent(i).next, steps+1 {
		if i >= h.N || isFree[i] || steps >= h.N {
			return errors.New("snapshot: its order does not hold")
		}
		e := nw.ent(i)
		if _, twice := nw.index[e.k]; twice || nw.ent(e.next).prev != i || int(e.n) > nw.slots || int(e.head) >= max(nw.slots, 1) {
			return errors.New("snapshot: its order does not hold")
		}
		nw.index[e.k] = i
	}
	if len(nw.index)+len(free) != int(h.N)-1 {
		return fmt.Errorf("snapshot: %d keys and %d free of %d entries", len(nw.index), len(free), h.N-1)
	}
	*w = *nw
	return nil
}

// raw is c's memory as bytes (no pointers in it), in the machine's order:
// a snapshot is read where it was written.
func (c *block) raw() [][]byte {
	return [][]byte{
		unsafe.Slice((*byte)(unsafe.Pointer(&c.ents[0])), int(unsafe.Sizeof(c.ents))),
		bytesOf(c.times), c.wts, bytesOf(c.hnew), c.hb,
	}
}

func bytesOf(s []uint32) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*4)
}
