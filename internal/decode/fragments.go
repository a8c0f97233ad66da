package decode

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// Fragments remembers the ports of first fragments so that later fragments
// of the same datagram join its flow (matched by source, destination,
// protocol and IPv4 identification / IPv6 fragment identification). It holds
// at most its capacity of datagrams; when full, the oldest remembered first
// fragment is forgotten. Its memory is allocated once by NewFragments, so
// Resolve never allocates.
//
// A Fragments is not safe for concurrent use; use one per packet stream.
type Fragments struct {
	// entries is a ring in insertion order: once full, next is the oldest.
	entries []fragEntry
	next    int
	used    int
	// index is an open-addressing (linear probing) hash table of positions
	// in entries plus one; 0 marks an empty slot. It has at least twice as
	// many slots as entries, so probe sequences stay short.
	index []int32
	mask  uint64
	seed  uint64
}

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	protocol uint8
}

type fragEntry struct {
	key              fragKey
	hash             uint64
	srcPort, dstPort uint16
}

// NewFragments returns a table that remembers up to capacity datagrams
// (at least 1).
func NewFragments(capacity int) *Fragments {
	capacity = max(capacity, 1)
	slots := 2
	for slots < 2*capacity {
		slots *= 2
	}
	return &Fragments{
		entries: make([]fragEntry, capacity),
		index:   make([]int32, slots),
		mask:    uint64(slots - 1),
		// A per-table seed keeps crafted fragment ids from colliding on
		// purpose.
		seed: rand.Uint64(),
	}
}

// Resolve applies fragment matching to a decoded packet: a first fragment's
// ports are remembered; a later fragment gets the ports of its first
// fragment if that was seen before it, else 0 0, and never carries TCP
// flags. Other packets are left alone.
func (f *Fragments) Resolve(p *Packet) {
	switch p.Fragment {
	case FragmentFirst:
		if !hasPorts(p.Protocol) {
			return // nothing to hand on; don't take a slot
		}
		f.remember(fragKey{src: p.Src, dst: p.Dst, id: p.FragID, protocol: p.Protocol}, p.SrcPort, p.DstPort)
	case FragmentLater:
		p.TCPFlags = 0
		p.SrcPort, p.DstPort = 0, 0
		if !hasPorts(p.Protocol) {
			return
		}
		key := fragKey{src: p.Src, dst: p.Dst, id: p.FragID, protocol: p.Protocol}
		if slot, ok := f.find(&key, f.hash(&key)); ok {
			e := &f.entries[f.index[slot]-1]
			p.SrcPort, p.DstPort = e.srcPort, e.dstPort
		}
	}
}

func hasPorts(protocol uint8) bool {
	return protocol == protoTCP || protocol == protoUDP || protocol == protoSCTP
}

// Len reports how many first fragments are remembered.
func (f *Fragments) Len() int { return f.used }

func (f *Fragments) remember(key fragKey, srcPort, dstPort uint16) {
	h := f.hash(&key)
	if slot, ok := f.find(&key, h); ok {
		e := &f.entries[f.index[slot]-1]
		e.srcPort, e.dstPort = srcPort, dstPort
		return
	}
	if f.used == len(f.entries) {
		old := &f.entries[f.next]
		if slot, ok := f.find(&old.key, old.hash); ok {
			f.deleteSlot(slot)
		}
	} else {
		f.used++
	}
	f.entries[f.next] = fragEntry{key: key, hash: h, srcPort: srcPort, dstPort: dstPort}
	slot := h & f.mask
	for f.index[slot] != 0 {
		slot = (slot + 1) & f.mask
	}
	f.index[slot] = int32(f.next + 1)
	f.next++
	if f.next == len(f.entries) {
		f.next = 0
	}
}

// find returns the index slot holding key. The table is never full (twice
// as many slots as entries), so the probe meets an empty slot.
func (f *Fragments) find(key *fragKey, h uint64) (uint64, bool) {
	slot := h & f.mask
	for {
		pos := f.index[slot]
		if pos == 0 {
			return 0, false
		}
		if e := &f.entries[pos-1]; e.hash == h && e.key == *key {
			return slot, true
		}
		slot = (slot + 1) & f.mask
	}
}

// deleteSlot empties slot and shifts later members of its probe run back, so
// that every remaining key stays reachable from its home slot without
// tombstones.
func (f *Fragments) deleteSlot(slot uint64) {
	hole := slot
	for j := (hole + 1) & f.mask; f.index[j] != 0; j = (j + 1) & f.mask {
		home := f.entries[f.index[j]-1].hash & f.mask
		// Move j into the hole unless its home lies cyclically in (hole, j].
		if (j-home)&f.mask >= (j-hole)&f.mask {
			f.index[hole] = f.index[j]
			hole = j
		}
	}
	f.index[hole] = 0
}

func (f *Fragments) hash(k *fragKey) uint64 {
	s, d := k.src.As16(), k.dst.As16()
	h := f.seed ^ uint64(k.id)<<8 ^ uint64(k.protocol)
	h = mix64(h ^ binary.LittleEndian.Uint64(s[0:8]))
	h = mix64(h ^ binary.LittleEndian.Uint64(s[8:16]))
	h = mix64(h ^ binary.LittleEndian.Uint64(d[0:8]))
	h = mix64(h ^ binary.LittleEndian.Uint64(d[8:16]))
	return h
}

// mix64 is the MurmurHash3 finalizer: every input bit affects every output
// bit, which linear probing needs.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
