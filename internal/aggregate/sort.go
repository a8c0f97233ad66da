package aggregate

import (
	"cmp"
	"slices"
)

// Records of a window are sorted per rule 13 by a 128-bit key that holds
// the leading sort fields as one big-endian bit string:
//
//	start offset (10 bits) | interface rank (16) | source family (2) |
//	source (0, 32 or 128) | destination family (2) | destination |
//	source port (16) | destination port (16) | protocol (8) | action (8)
//
// cut to its first 128 bits. A family code fixes the length of the address
// after it, so comparing these strings compares the fields in order; keys
// that tie after the cut (same start, interface and IPv6 source, for
// example) are put in order by compareEntries. The interface rank is its
// index among the known interfaces, which are sorted. An IPv4 flow's key
// holds everything but the protocol's low bits and the action, so ties are
// rare. Large windows are sorted by radix on the key's first 64 bits (start,
// interface, source family and 36 source bits), then each run that shares
// them by comparison: a window closing is about O(n), and its sort needs
// no memory per record beyond the 24-byte item (see collectRecords).

// sortItem is one record of the window being emitted.
type sortItem struct {
	hi, lo uint64 // the key
	id     uint32 // entry
}

// keyBits accumulates the bit string of a key.
type keyBits struct {
	hi, lo uint64
	n      uint // bits written
}

// put appends the low width bits of v (v < 1<<width), dropping what goes
// past 128 bits.
func (b *keyBits) put(v uint64, width uint) {
	if b.n+width > 128 {
		if b.n >= 128 {
			return
		}
		v >>= b.n + width - 128
		width = 128 - b.n
	}
	if width == 64 {
		b.hi, b.lo = b.lo, v
	} else {
		b.hi = b.hi<<width | b.lo>>(64-width)
		b.lo = b.lo<<width | v
	}
	b.n += width
}

func (b *keyBits) putAddr(a addr128, fam uint8) {
	b.put(uint64(fam), 2)
	switch fam {
	case famV4:
		b.put(a.lo&0xFFFFFFFF, 32)
	case famV6:
		b.put(a.hi, 64)
		b.put(a.lo, 64)
	}
}

// sortKey returns the key of entry e whose interface has the given rank.
func sortKey(e *entry, rank uint16) (hi, lo uint64) {
	var b keyBits
	b.put(uint64(e.first), 10)
	b.put(uint64(rank), 16)
	b.putAddr(e.src, e.fam&3)
	b.putAddr(e.dst, e.fam>>2)
	b.put(uint64(uint32(e.ports)), 32)
	b.put(uint64(e.meta&0xFFFF), 16)
	if b.n < 128 {
		b.put(0, 128-b.n)
	}
	return b.hi, b.lo
}

// bucketOf returns the top bucketBits bits of sortKey(e, rank).
func bucketOf(e *entry, rank uint16) uint64 {
	return uint64(e.first)<<(bucketBits-10) | uint64(rank)>>(16-(bucketBits-10))
}

// radixMin is the size from which radix sort beats pdqsort.
const radixMin = 256

// bucketBits is how many top bits of the key's hi word collectRecords
// distributes by: the start offset (10 bits) and the interface rank's
// first 2 (for one interface, the start second).
const bucketBits = 12

// maxScratch bounds, in items, the scratch the radix sort copies through
// (1.5 MiB). Larger buckets are first split in place, by their next byte.
const maxScratch = 1 << 16

// collectRecords returns window ws's records with their keys, already
// distributed by the keys' top bucketBits bits (t.bucketCounts holds the
// end of each bucket): a first pass over the window's entries counts the
// buckets, the second puts each item in its place. Distributing out of an
// array of the unsorted items would need a second array of them: 24 more
// bytes per record of the window while it closes.
//
// The first pass also makes the records' interfaces known and marks them
// seen. A new interface shifts the ranks after it, so that pass starts over
// then (only in the first windows an interface appears in). Ranks are 16
// bits in the key: with more interfaces than that, every key is zero and
// compareEntries does all the work.
func (t *Table) collectRecords(ws *window) []sortItem {
	if t.bucketCounts == nil {
		t.bucketCounts = new([1 << bucketBits]uint32)
	}
	counts := t.bucketCounts
	var ranked bool
	for {
		known := len(t.ifaces)
		ranked = known <= 1<<16
		clear(counts[:])
		lastIface, rank := uint32(0), -1
		for id := ws.head; id != noEntry; {
			e := t.at(id)
			if iface := e.iface(); rank < 0 || iface != lastIface {
				lastIface, rank = iface, t.interfaceIndex(iface)
				t.ifaceSeen[rank] = t.gen
			}
			if ranked {
				counts[bucketOf(e, uint16(rank))]++
			}
			id = e.next
		}
		if len(t.ifaces) == known {
			break
		}
	}
	if !ranked {
		counts[0] = uint32(ws.count)
	}
	var sum uint32
	for i, n := range counts {
		counts[i] = sum
		sum += n
	}

	order := slices.Grow(t.order[:0], ws.count)[:ws.count]
	lastIface, rank := uint32(0), -1
	for id := ws.head; id != noEntry; {
		e := t.at(id)
		it := sortItem{id: id}
		if ranked {
			if iface := e.iface(); rank < 0 || iface != lastIface {
				lastIface, rank = iface, t.interfaceIndex(iface)
			}
			it.hi, it.lo = sortKey(e, uint16(rank))
		}
		b := it.hi >> (64 - bucketBits)
		order[counts[b]] = it
		counts[b]++
		id = e.next
	}
	t.order = order
	// counts[b] is now the end of bucket b.
	return order
}

// sortRecords sorts the items of collectRecords in place by key, then by
// compareEntries among equal keys.
func (t *Table) sortRecords(items []sortItem) {
	if len(items) < radixMin {
		slices.SortFunc(items, func(a, b sortItem) int {
			if c := cmp.Compare(a.hi, b.hi); c != 0 {
				return c
			}
			if c := cmp.Compare(a.lo, b.lo); c != 0 {
				return c
			}
			return compareEntries(t.at(a.id), t.at(b.id))
		})
		return
	}
	start := uint32(0)
	for _, end := range t.bucketCounts {
		if end-start > 1 {
			t.sortHi(items[start:end], 8-bucketBits/8)
		}
		start = end
	}

	// The radix sort orders by hi only; runs of equal hi (records of one
	// source, interface and start second) are ordered by lo, then in full.
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j].hi == items[i].hi {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(items[i:j], func(a, b sortItem) int {
				if c := cmp.Compare(a.lo, b.lo); c != 0 {
					return c
				}
				return compareEntries(t.at(a.id), t.at(b.id))
			})
		}
		i = j
	}
}

// sortHi sorts a by the low bytes bytes of the keys' hi word (the bytes
// above are the same in every item): by pdqsort when small, by radix
// through t.sortTmp up to maxScratch items, and beyond that by splitting
// it in place on its top byte first.
func (t *Table) sortHi(a []sortItem, bytes int) {
	switch {
	case bytes == 0:
	case len(a) < radixMin:
		slices.SortFunc(a, func(x, y sortItem) int { return cmp.Compare(x.hi, y.hi) })
	case len(a) <= maxScratch:
		t.sortTmp = slices.Grow(t.sortTmp[:0], len(a))[:len(a)]
		if got := t.radixSort(a, t.sortTmp, bytes); &got[0] != &a[0] {
			copy(a, got)
		}
	default:
		t.splitHi(a, bytes)
	}
}

// splitHi sorts a in place by the highest of its low bytes bytes that is
// not the same in every item (American flag sort: each item is swapped
// straight into its bucket's next free place), then each bucket by the
// bytes below it.
func (t *Table) splitHi(a []sortItem, bytes int) {
	or, and := uint64(0), ^uint64(0)
	for i := range a {
		or |= a[i].hi
		and &= a[i].hi
	}
	for bytes > 0 && byte((or^and)>>(8*(bytes-1))) == 0 {
		bytes--
	}
	if bytes == 0 {
		return
	}
	shift := 8 * uint(bytes-1)
	var next, end [256]int
	for i := range a {
		end[byte(a[i].hi>>shift)]++
	}
	sum := 0
	for d, n := range end {
		next[d] = sum
		sum += n
		end[d] = sum
	}
	for d := range next {
		for next[d] < end[d] {
			it := a[next[d]]
			for to := byte(it.hi >> shift); int(to) != d; to = byte(it.hi >> shift) {
				a[next[to]], it = it, a[next[to]]
				next[to]++
			}
			a[next[d]] = it
			next[d]++
		}
	}
	start := 0
	for _, e := range end {
		if e-start > 1 {
			t.sortHi(a[start:e], bytes-1)
		}
		start = e
	}
}

// radixSort is an LSD radix sort on the low bytes bytes of the keys' hi
// word, skipping bytes that are the same in every item. It returns the
// sorted slice: a or tmp.
func (t *Table) radixSort(a, tmp []sortItem, bytes int) []sortItem {
	counts := &t.radixCounts
	*counts = [8][256]uint32{}
	for i := range a {
		hi := a[i].hi
		for d := range bytes {
			counts[d][byte(hi>>(8*d))]++
		}
	}
	src, dst := a, tmp
	for d := range bytes {
		c := &counts[d]
		shift := 8 * d
		if c[byte(src[0].hi>>shift)] == uint32(len(src)) {
			continue
		}
		var sum uint32
		for i, n := range c {
			c[i] = sum
			sum += n
		}
		for i := range src {
			b := byte(src[i].hi >> shift)
			dst[c[b]] = src[i]
			c[b]++
		}
		src, dst = dst, src
	}
	return src
}
