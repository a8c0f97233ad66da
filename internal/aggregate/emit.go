package aggregate

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"

	"github.com/flowlog/flowlog/flow"
)

// sortItem orders the records of one window: key packs the leading sort
// fields (start, interface, source family and top 20 address bits), equal
// keys fall back to comparing the entries in full.
type sortItem struct {
	key uint64
	id  uint32
}

// closeBefore closes every window that starts before newFrom.
func (t *Table) closeBefore(newFrom int64) {
	n := 0
	for n < len(t.states) && t.states[n].start < newFrom {
		n++
	}
	t.closeStates(n, newFrom)
}

// closeLate emits the pending late windows now, to free window ids. They
// sort before every regular window, so they are a prefix of states.
func (t *Table) closeLate() {
	n := 0
	for n < len(t.states) && t.states[n].late {
		n++
	}
	t.closeStates(n, math.MinInt64)
}

// closeStates emits the first n window states in order, with NODATA
// batches for the empty windows of the regular sequence before until, and
// then frees their entries: by rebuilding the index when they were at least
// half of the table (the usual case, a window closing), else by burying
// each in the index.
func (t *Table) closeStates(n int, until int64) {
	head, tail := noEntry, noEntry
	removed := 0
	for _, ws := range t.states[:n] {
		if !ws.late {
			t.emitGaps(ws.start)
		}
		t.emitWindow(ws)
		if !ws.late {
			t.emitFrom = ws.start + t.interval
		}
		if ws.count > 0 {
			if head == noEntry {
				head = ws.head
			} else {
				t.at(tail).next = ws.head
			}
			tail = ws.tail
			removed += ws.count
		}
	}
	t.emitGaps(until)

	for _, ws := range t.states[:n] {
		t.freeIDs = append(t.freeIDs, ws.id)
		t.spare = append(t.spare, ws)
	}
	rest := copy(t.states, t.states[n:])
	clear(t.states[rest:])
	t.states = t.states[:rest]

	if removed > 0 {
		if removed*2 >= t.live {
			t.live -= removed
			t.reindex()
		} else {
			for id := head; id != noEntry; id = t.at(id).next {
				t.bury(id)
			}
			t.live -= removed
		}
		t.at(tail).next = t.free
		t.free = head
	}

	if until > t.closedBefore {
		t.closedBefore = until
	}
	if t.started {
		t.closeAt = t.emitFrom + t.interval + t.lateness
	}
	t.cur, t.curStart, t.curEnd = nil, math.MaxInt64, math.MinInt64
	if t.skipAny {
		t.foldSkipEstimate()
	}
}

// emitGaps emits a NODATA batch for every window of the regular sequence
// from emitFrom up to until (windows without any packet). Nothing is stored
// per window, so huge gaps cost time per window and interface only.
func (t *Table) emitGaps(until int64) {
	if !t.started || t.emitFrom >= until {
		return
	}
	if len(t.ifaces) > 0 {
		for w := t.emitFrom; w < until; w += t.interval {
			b := t.batch[:0]
			for _, iface := range t.ifaces {
				b = append(b, t.statusRecord(iface, w, flow.LogStatusNoData))
			}
			t.batch = b
			t.stats.NoDataRecords += uint64(len(b))
			t.stats.Windows++
			t.emit(w, b)
		}
	}
	t.emitFrom = until
}

func (t *Table) statusRecord(iface uint32, w int64, status flow.LogStatus) Closed {
	return Closed{
		Key:    flow.Key{Interface: iface},
		Counts: flow.Counts{Start: w, End: w + t.interval},
		Status: status,
		Window: w,
	}
}

// emitWindow emits the batch of one window: its OK records, SKIPDATA for
// the interfaces with skipped packets and, unless the window is late,
// NODATA for the known interfaces without either, sorted per rule 13.
func (t *Table) emitWindow(ws *window) {
	w := ws.start
	order := t.order[:0]
	for id := ws.head; id != noEntry; {
		e := t.at(id)
		order = append(order, sortItem{key: sortPrefix(e), id: id})
		id = e.next
	}
	slices.SortFunc(order, func(a, b sortItem) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		return compareEntries(t.at(a.id), t.at(b.id))
	})
	t.order = order

	// Mark the interfaces that have records in this window.
	t.gen++
	t.unknown = t.unknown[:0]
	lastIface, haveLast := uint32(0), false
	for _, it := range order {
		iface := t.at(it.id).iface()
		if haveLast && iface == lastIface {
			continue
		}
		lastIface, haveLast = iface, true
		if i, found := slices.BinarySearch(t.ifaces, iface); found {
			t.ifaceSeen[i] = t.gen
		} else {
			t.unknown = append(t.unknown, iface)
		}
	}

	// SKIPDATA and NODATA records, by interface.
	status := t.status[:0]
	skips := ws.skips
	s := 0
	for i, iface := range t.ifaces {
		for ; s < len(skips) && skips[s].iface < iface; s++ {
			status = append(status, t.statusRecord(skips[s].iface, w, flow.LogStatusSkipData))
			t.unknown = append(t.unknown, skips[s].iface)
		}
		if s < len(skips) && skips[s].iface == iface {
			status = append(status, t.statusRecord(iface, w, flow.LogStatusSkipData))
			s++
			continue
		}
		if !ws.late && t.ifaceSeen[i] != t.gen {
			status = append(status, t.statusRecord(iface, w, flow.LogStatusNoData))
		}
	}
	for ; s < len(skips); s++ {
		status = append(status, t.statusRecord(skips[s].iface, w, flow.LogStatusSkipData))
		t.unknown = append(t.unknown, skips[s].iface)
	}
	t.status = status
	for _, iface := range t.unknown {
		t.AddInterface(iface)
	}

	// Merge: a status record (start = window start) goes before an OK
	// record that starts later or is on the same or a later interface.
	b := t.batch[:0]
	s = 0
	for _, it := range order {
		e := t.at(it.id)
		for ; s < len(status) && (e.first > 0 || status[s].Key.Interface <= e.iface()); s++ {
			b = append(b, status[s])
		}
		b = append(b, t.record(e, w))
	}
	b = append(b, status[s:]...)
	t.batch = b

	for _, r := range status {
		if r.Status == flow.LogStatusNoData {
			t.stats.NoDataRecords++
		} else {
			t.stats.SkipDataRecords++
		}
	}
	t.stats.Records += uint64(len(order))
	t.stats.Windows++
	t.emit(w, b)
}

// record is the OK record of entry e of window w.
func (t *Table) record(e *entry, w int64) Closed {
	return Closed{
		Key: flow.Key{
			Interface: e.iface(),
			Src:       addrFrom(&e.src, e.fam&3),
			Dst:       addrFrom(&e.dst, e.fam>>2),
			SrcPort:   e.srcPort(),
			DstPort:   e.dstPort(),
			Protocol:  e.protocol(),
			Action:    e.action(),
		},
		Counts: flow.Counts{
			Packets:   e.packets,
			Bytes:     e.bytes,
			Start:     w + int64(e.first),
			End:       w + int64(e.last),
			TCPFlags:  e.flags,
			Direction: e.dir,
		},
		Status: flow.LogStatusOK,
		Window: w,
	}
}

// sortPrefix packs start offset (10 bits, < 600), interface (32), source
// family (2) and the top 20 bits of the source address, in sort order.
func sortPrefix(e *entry) uint64 {
	var top uint64
	switch e.fam & 3 {
	case famV4:
		top = uint64(binary.BigEndian.Uint32(e.src[12:])) >> 12
	case famV6:
		top = uint64(binary.BigEndian.Uint32(e.src[:4])) >> 12
	}
	return uint64(e.first)<<54 | uint64(e.iface())<<22 | uint64(e.fam&3)<<20 | top
}

// compareEntries orders two records of one window per rule 13: start,
// interface, source, destination (netip.Addr.Compare order: family, then
// address), source port, destination port, protocol, action.
func compareEntries(a, b *entry) int {
	if c := cmp.Compare(uint64(a.first), uint64(b.first)); c != 0 {
		return c
	}
	if c := cmp.Compare(uint64(a.iface()), uint64(b.iface())); c != 0 {
		return c
	}
	if c := compareAddr(&a.src, a.fam&3, &b.src, b.fam&3); c != 0 {
		return c
	}
	if c := compareAddr(&a.dst, a.fam>>2, &b.dst, b.fam>>2); c != 0 {
		return c
	}
	if c := cmp.Compare(uint64(uint32(a.ports)), uint64(uint32(b.ports))); c != 0 {
		return c
	}
	return cmp.Compare(uint64(a.meta&0xFFFF), uint64(b.meta&0xFFFF))
}

func compareAddr(a *[16]byte, af uint8, b *[16]byte, bf uint8) int {
	if c := cmp.Compare(uint64(af), uint64(bf)); c != 0 {
		return c
	}
	if c := cmp.Compare(binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])); c != 0 {
		return c
	}
	return cmp.Compare(binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:]))
}
