package aggregate

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"unsafe"

	"github.com/flowlog/flowlog/flow"
)

// The table stores flows as compact entries in fixed-size chunks and finds
// them through an open-addressing index of uint32 slots with linear probing.
// A flow.Key holds two netip.Addr (24 bytes each, with a pointer for the
// zone); an entry holds the addresses as 16 bytes each plus a family code,
// and the window as the 16-bit id of its window state instead of a time, so
// the whole record fits in 64 bytes and the index adds 4 bytes per slot.
//
// Slot layout: the top 8 bits are a tag taken from the hash (probes skip
// entries whose tag differs without touching them), the low 24 bits are the
// entry number plus one; 0 is an empty slot and a tag-only value is a
// tombstone left by a deleted entry.
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1

	slotIDBits  = 24
	slotIDMask  = 1<<slotIDBits - 1
	slotTagMask = ^uint32(slotIDMask)
	tombstone   = slotTagMask

	minSlots = 1 << 10

	// noEntry ends the entry lists of windows and the free list.
	noEntry = ^uint32(0)
)

// Address family codes of an entry (two bits per address). They order like
// netip.Addr.BitLen, which Addr.Compare sorts by first.
const (
	famInvalid uint8 = 0
	famV4      uint8 = 1
	famV6      uint8 = 2
)

// entry is one flow record in the making: one key in one window. The key
// part is src, dst, ports, meta and fam; the rest are its counts.
//
// It is 64 bytes, one cache line (chunks are page-aligned), so a lookup
// that misses the cache costs one miss for the entry, not two. The
// counters are 32 bits: what overflows them (a flow of 4 Gi packets or
// 4 GiB in one window) is carried exactly in Table.carries, and the
// carried flag sends record and AddCounts there.
type entry struct {
	src, dst addr128
	ports    uint64 // interface<<32 | srcport<<16 | dstport
	meta     uint32 // window id<<16 | protocol<<8 | action
	next     uint32 // next entry of the same window, or of the free list
	packets  uint32 // low 32 bits of the packet count
	bytes    uint32 // low 32 bits of the byte count
	first    uint16 // first and last packet second, relative to the window start
	last     uint16
	flags    uint8 // OR of flow.ReportedTCPFlags
	dir      flow.Direction
	fam      uint8 // source family | destination family<<2
	carried  bool  // Table.carries holds the counts' high parts
}

// carry is what an entry's 32-bit counters overflowed by: multiples of
// 1<<32 packets and bytes.
type carry struct{ packets, bytes uint64 }

// counterMask keeps the bits an entry's counters hold.
const counterMask = 1<<32 - 1

// addCounts adds packets and bytes to entry id, carrying what its 32-bit
// counters overflow by into t.carries (it allocates only then).
func (t *Table) addCounts(id uint32, e *entry, packets, bytes uint64) {
	p := uint64(e.packets) + packets
	b := uint64(e.bytes) + bytes
	e.packets, e.bytes = uint32(p), uint32(b)
	if (p|b)&^counterMask != 0 {
		t.addCarry(id, e, p&^counterMask, b&^counterMask)
	}
}

func (t *Table) addCarry(id uint32, e *entry, packets, bytes uint64) {
	if t.carries == nil {
		t.carries = make(map[uint32]carry)
	}
	c := t.carries[id]
	c.packets += packets
	c.bytes += bytes
	t.carries[id] = c
	e.carried = true
}

// counts returns entry id's full packet and byte counts and forgets its
// carry: it is called once, when the entry's record is emitted.
func (t *Table) counts(id uint32, e *entry) (packets, bytes uint64) {
	packets, bytes = uint64(e.packets), uint64(e.bytes)
	if e.carried {
		c := t.carries[id]
		delete(t.carries, id)
		packets += c.packets
		bytes += c.bytes
	}
	return packets, bytes
}

// ckey is the key part of an entry, built once per packet.
type ckey struct {
	src, dst addr128
	ports    uint64
	meta     uint32
	fam      uint8
}

func (e *entry) iface() uint32       { return uint32(e.ports >> 32) }
func (e *entry) protocol() uint8     { return uint8(e.meta >> 8) }
func (e *entry) action() flow.Action { return flow.Action(e.meta) }
func (e *entry) srcPort() uint16     { return uint16(e.ports >> 16) }
func (e *entry) dstPort() uint16     { return uint16(e.ports) }
func (e *entry) key() ckey           { return ckey{e.src, e.dst, e.ports, e.meta, e.fam} }
func (e *entry) matches(k *ckey) bool {
	return e.src == k.src && e.dst == k.dst && e.ports == k.ports && e.meta == k.meta && e.fam == k.fam
}
func packMeta(window uint16, protocol uint8, action flow.Action) uint32 {
	return uint32(window)<<16 | uint32(protocol)<<8 | uint32(action)
}

// addr128 is an address as the two big-endian halves of netip.Addr.As16
// (IPv4 as ::ffff:a.b.c.d): comparing hi, then lo, is byte order.
type addr128 struct{ hi, lo uint64 }

// addrWords splits an address into its words and family code. Zones are
// dropped: addresses decoded from packets have none.
func addrWords(a netip.Addr) (addr128, uint8) {
	fam := famOf(a)
	if fam == famInvalid {
		return addr128{}, famInvalid
	}
	if netipWords {
		return *(*addr128)(unsafe.Pointer(&a)), fam
	}
	return addrWordsSafe(a, fam), fam
}

// famOf is the family code of a.
func famOf(a netip.Addr) uint8 {
	switch a.BitLen() {
	case 32:
		return famV4
	case 128:
		return famV6
	}
	return famInvalid
}

// netipWords is whether netip.Addr begins with the address as two
// uint64, high half first, IPv4 as ::ffff:a.b.c.d: our addr128. It has
// since Go 1.18 (its field addr uint128), and reading them is nearly free,
// whereas the API's As16 stores the words to an array that must be
// loaded back, a store-forwarding stall of about 5 ns per IPv6 address on
// the hot path (As4 costs less, but still more than a load). It is
// checked once, on sample addresses, so that a different layout in a
// future Go falls back to addrWordsSafe (TestAddrWords fails then, to
// say so).
var netipWords = func() bool {
	if unsafe.Sizeof(netip.Addr{}) < unsafe.Sizeof(addr128{}) {
		return false
	}
	for _, s := range []string{"192.0.2.1", "255.255.255.255", "2001:db8::1:2", "::ffff:10.1.2.3", "fe80::1%eth0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"} {
		a := netip.MustParseAddr(s)
		fam := famV6
		if a.Is4() {
			fam = famV4
		}
		if *(*addr128)(unsafe.Pointer(&a)) != addrWordsSafe(a, fam) {
			return false
		}
	}
	return true
}()

// addrWordsSafe is addrWords through the netip API.
func addrWordsSafe(a netip.Addr, fam uint8) addr128 {
	if fam == famV4 {
		b := a.As4()
		return addr128{0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return addr128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// addrFrom is the inverse of addrWords.
func addrFrom(a addr128, fam uint8) netip.Addr {
	switch fam {
	case famV4:
		return netip.AddrFrom4([4]byte{byte(a.lo >> 24), byte(a.lo >> 16), byte(a.lo >> 8), byte(a.lo)})
	case famV6:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], a.hi)
		binary.BigEndian.PutUint64(b[8:], a.lo)
		return netip.AddrFrom16(b)
	}
	return netip.Addr{}
}

// mix is the wyhash "mum" step: the two halves of the 128-bit product,
// folded. Every output bit depends on every input bit of a and b.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// hash hashes a compact key with the table's random seed (so traffic cannot
// be crafted to collide, the live agent sees hostile packets). The window
// id is part of it: one key held in thousands of late windows must not
// make one probe path thousands of slots long.
func (t *Table) hash(k *ckey) uint64 {
	s := &t.seed
	h := mix(k.src.hi^s[0], k.src.lo^s[1])
	h ^= mix(k.dst.hi^s[2], k.dst.lo^s[3])
	h ^= mix(k.ports^s[4], (uint64(k.meta)<<8|uint64(k.fam))^s[5])
	return h
}

// tagOf is the tag part of the index slot of hash h.
func tagOf(h uint64) uint32 { return uint32(h>>56) << slotIDBits }

// at returns entry id. Ids are dense from 0; chunks never move, so the
// pointer stays valid while the table grows.
func (t *Table) at(id uint32) *entry {
	return &t.chunks[id>>chunkBits][id&chunkMask]
}

// find looks k up. When it is absent, pos is the slot to insert it at (the
// first tombstone on the probe path, else the empty slot that ended it).
func (t *Table) find(k *ckey, h uint64) (id, pos uint32, found bool) {
	tag := uint32(h>>56) << slotIDBits
	slots := t.slots
	mask := t.slotMask
	p := uint32(h) & mask
	ins := noEntry
	for {
		s := slots[p]
		switch {
		case s == 0:
			if ins == noEntry {
				ins = p
			}
			return 0, ins, false
		case s == tombstone:
			if ins == noEntry {
				ins = p
			}
		case s&slotTagMask == tag:
			if e := t.at(s&slotIDMask - 1); e.matches(k) {
				return s&slotIDMask - 1, p, true
			}
		}
		p = (p + 1) & mask
	}
}

// insertAt stores entry id with hash h at slot pos found by find.
func (t *Table) insertAt(pos uint32, h uint64, id uint32) {
	if t.slots[pos] == 0 {
		t.used++
	}
	t.slots[pos] = uint32(h>>56)<<slotIDBits | (id + 1)
	// At most half full: probes stay short (at 3/4, a third of the
	// lookups of the benchmark capture went past their first slot, and
	// the read path ran 10% slower), for 8 to 16 bytes of index per flow.
	if t.used > len(t.slots)/2 {
		t.reindex()
	}
}

// place puts entry id with hash h, known to be absent, into the first free
// slot of its probe path (rebuilding the index).
func (t *Table) place(id uint32, h uint64) {
	mask := t.slotMask
	p := uint32(h) & mask
	for t.slots[p] != 0 {
		p = (p + 1) & mask
	}
	t.slots[p] = uint32(h>>56)<<slotIDBits | (id + 1)
	t.used++
}

// bury replaces the slot of entry id with a tombstone.
func (t *Table) bury(id uint32) {
	e := t.at(id)
	k := e.key()
	h := t.hash(&k)
	mask := t.slotMask
	want := id + 1
	for p := uint32(h) & mask; ; p = (p + 1) & mask {
		if s := t.slots[p]; s != tombstone && s&slotIDMask == want {
			t.slots[p] = tombstone
			return
		}
	}
}

// reindex rebuilds the index from the entries held, growing it so that it
// is at most a quarter full afterwards. It also clears tombstones.
func (t *Table) reindex() {
	size := len(t.slots)
	for size < minSlots || size < 4*t.live {
		size *= 2
	}
	if size != len(t.slots) {
		t.slots = make([]uint32, size)
		t.slotMask = uint32(size - 1)
	} else {
		clear(t.slots)
	}
	t.used = 0
	// In batches: hash a batch of entries and prefetch their slots, then
	// place them, so the slots' cache misses overlap.
	var batch [lookupBatch]struct {
		id uint32
		h  uint64
	}
	n := 0
	for _, ws := range t.states {
		for id := ws.head; id != noEntry; {
			e := t.at(id)
			k := e.key()
			h := t.hash(&k)
			prefetch(unsafe.Pointer(&t.slots[uint32(h)&t.slotMask]))
			batch[n].id, batch[n].h = id, h
			if n++; n == len(batch) {
				for _, b := range batch {
					t.place(b.id, b.h)
				}
				n = 0
			}
			id = e.next
		}
	}
	for _, b := range batch[:n] {
		t.place(b.id, b.h)
	}
}

// lookupBatch is how many index lookups are prepared (hashed and
// prefetched) before any of them is done.
const lookupBatch = 16

// alloc returns a free entry id, reusing entries of closed windows first.
func (t *Table) alloc() uint32 {
	if id := t.free; id != noEntry {
		t.free = t.at(id).next
		return id
	}
	if t.highWater == uint32(len(t.chunks))*chunkSize {
		t.chunks = append(t.chunks, new([chunkSize]entry))
	}
	id := t.highWater
	t.highWater++
	return id
}
