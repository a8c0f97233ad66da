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
// them by comparison: a window closing is about O(n).

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

// radixMin is the window size from which radix sort beats pdqsort.
const radixMin = 256

// sortRecords sorts items by key, then by compareEntries among equal keys.
// It uses t.sortTmp as scratch and returns the sorted slice, which is items
// or the scratch (t.order and t.sortTmp swap roles then).
func (t *Table) sortRecords(items []sortItem) []sortItem {
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
		return items
	}
	t.sortTmp = slices.Grow(t.sortTmp[:0], len(items))[:len(items)]
	sorted, spare := t.bucketSort(items, t.sortTmp)
	t.order, t.sortTmp = sorted[:0], spare[:0]

	// The radix sort orders by hi only; runs of equal hi (records of one
	// source, interface and start second) are ordered by lo, then in full.
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].hi == sorted[i].hi {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(sorted[i:j], func(a, b sortItem) int {
				if c := cmp.Compare(a.lo, b.lo); c != 0 {
					return c
				}
				return compareEntries(t.at(a.id), t.at(b.id))
			})
		}
		i = j
	}
	return sorted
}

// bucketBits is how many top bits of the key's hi word bucketSort
// distributes by: the start offset (10 bits) and the interface rank's
// first 2.
const bucketBits = 12

// bucketSort sorts by the keys' hi word: one pass distributes the items
// into tmp by the top bucketBits bits (for one interface, by start
// second), then each bucket is sorted on its own, by radix while it is
// in the cache. An LSD radix sort over the whole window made seven passes
// over memory. It returns the sorted slice (tmp) and the other one.
func (t *Table) bucketSort(a, tmp []sortItem) (sorted, spare []sortItem) {
	if t.bucketCounts == nil {
		t.bucketCounts = new([1 << bucketBits]uint32)
	}
	counts := t.bucketCounts
	clear(counts[:])
	for i := range a {
		counts[a[i].hi>>(64-bucketBits)]++
	}
	var sum uint32
	for i, n := range counts {
		counts[i] = sum
		sum += n
	}
	for i := range a {
		b := a[i].hi >> (64 - bucketBits)
		tmp[counts[b]] = a[i]
		counts[b]++
	}
	// counts[b] is now the end of bucket b.
	start := uint32(0)
	for _, end := range counts {
		if end-start > 1 {
			bucket, scratch := tmp[start:end], a[start:end]
			if len(bucket) < radixMin {
				slices.SortFunc(bucket, func(x, y sortItem) int { return cmp.Compare(x.hi, y.hi) })
			} else if got, _ := t.radixSort(bucket, scratch, 8-bucketBits/8); &got[0] != &bucket[0] {
				copy(bucket, got)
			}
		}
		start = end
	}
	return tmp, a
}

// radixSort is an LSD radix sort on the low bytes bytes of the keys' hi
// word, skipping bytes that are the same in every item. It returns the
// sorted slice and the other one.
func (t *Table) radixSort(a, tmp []sortItem, bytes int) (sorted, spare []sortItem) {
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
	return src, dst
}
