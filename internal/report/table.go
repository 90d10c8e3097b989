package report

import (
	"crypto/rand"
	"encoding/binary"
)

// addrTable finds a client's position by its address's 128 bits and
// family: open addressing with linear probing in one array of 8-byte
// slots, each a position and the top 32 bits of its key's hash. A new
// address costs one cache miss (a Go map of a wave's clients costs two or
// three, in a table three times the size); a known one a second, in the
// client's record that is then counted anyway. Growing reads the hashes
// from the slots, in order: no client is looked at.
//
// Attackers choose their addresses (an IPv6 /64 is theirs to fill), so
// the hash is keyed with a secret drawn at start: without it they cannot
// make addresses collide and the probing long.
type addrTable struct {
	slots []slot // len a power of two, at most 2^32; free slots have i == 0
	n     int    // slots in use
	bits  uint   // log2(len(slots))
	seed  uint64
}

type slot struct {
	tag uint32 // the hash's top 32 bits: the home slot is its top bits
	i   int32  // position + 1
}

func (t *addrTable) hash(hi, lo uint64, fam uint8) uint32 {
	return uint32(mix(mix(hi^t.seed)^lo^uint64(fam)<<56) >> 32)
}

// mix is splitmix64's finaliser: every input bit moves every output bit.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// find returns the position of the key, or (next, false) after storing
// next as the position of a new key; same(i) reports whether the client
// at position i has the key.
func (t *addrTable) find(hi, lo uint64, fam uint8, next int32, same func(i int32) bool) (int32, bool) {
	if 10*(t.n+1) > 7*len(t.slots) { // at most 70% full
		t.resize(max(1024, 2*len(t.slots)))
	}
	tag := t.hash(hi, lo, fam)
	mask := uint32(len(t.slots) - 1)
	for j := tag >> (32 - t.bits); ; j = (j + 1) & mask {
		s := &t.slots[j]
		if s.i == 0 {
			*s = slot{tag: tag, i: next + 1}
			t.n++
			return next, false
		}
		if s.tag == tag && same(s.i-1) {
			return s.i - 1, true
		}
	}
}

// resize makes the table size slots (a power of two) and puts the keys
// back: their home slots keep their order, so the writes go forward.
func (t *addrTable) resize(size int) {
	if t.seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		t.seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	old := t.slots
	t.slots = make([]slot, size)
	t.bits = 0
	for 1<<t.bits < size {
		t.bits++
	}
	mask := uint32(size - 1)
	for _, s := range old {
		if s.i == 0 {
			continue
		}
		j := s.tag >> (32 - t.bits)
		for t.slots[j].i != 0 {
			j = (j + 1) & mask
		}
		t.slots[j] = s
	}
}
