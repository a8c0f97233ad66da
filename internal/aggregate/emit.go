package aggregate

import (
	"cmp"
	"math"
	"slices"
	"unsafe"

	"github.com/flowlog/flowlog/flow"
)

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
			t.forgetRemoved(ws.start)
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
	if len(t.ifaces) > 0 && t.runEmit != nil && len(t.removals) == 0 {
		// The whole gap in one call: its records differ only in their
		// times, and the known interfaces cannot change during it.
		n := (until - t.emitFrom + t.interval - 1) / t.interval
		t.stats.NoDataRecords += uint64(n) * uint64(len(t.ifaces))
		t.stats.Windows += uint64(n)
		t.runEmit(t.emitFrom, n, t.ifaces)
	} else if len(t.ifaces) > 0 {
		for w := t.emitFrom; w < until; w += t.interval {
			b := slices.Grow(t.batch[:0], t.batchCap(len(t.ifaces)))
			for _, iface := range t.ifaces {
				if b = append(b, t.statusRecord(iface, w, flow.LogStatusNoData)); len(b) == t.chunk {
					b = t.handOver(w, b)
				}
			}
			t.stats.NoDataRecords += uint64(len(t.ifaces))
			t.stats.Windows++
			t.deliver(w, b)
			t.forgetRemoved(w)
		}
	}
	t.forgetRemoved(until - 1)
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

	// Sort the records, making their interfaces known on the way (they get
	// no NODATA here: they have records) and marking them as seen.
	for _, sk := range ws.skips {
		t.interfaceIndex(sk.iface)
	}
	t.gen++
	order := t.collectRecords(ws)
	t.sortRecords(order)

	// SKIPDATA and NODATA records, by interface.
	// Every interface with skipped packets is known by now, and skips are
	// sorted by interface like t.ifaces.
	status := t.status[:0]
	skips := ws.skips
	s := 0
	for i, iface := range t.ifaces {
		if s < len(skips) && skips[s].iface == iface {
			status = append(status, t.statusRecord(iface, w, flow.LogStatusSkipData))
			s++
			continue
		}
		if !ws.late && t.ifaceSeen[i] != t.gen {
			status = append(status, t.statusRecord(iface, w, flow.LogStatusNoData))
		}
	}
	t.status = status

	// Merge: a status record (start = window start) goes before an OK
	// record that starts later or is on the same or a later interface.
	// The batch is sized once: grown by append, a window of 400 k records
	// was reallocated and copied some 50 times (25 ns per packet).
	b := slices.Grow(t.batch[:0], t.batchCap(len(order)+len(status)))
	s = 0
	for i, it := range order {
		// Sorted, the entries are visited in random order: fetch ahead.
		if j := i + lookAhead; j < len(order) {
			prefetch(unsafe.Pointer(t.at(order[j].id)))
		}
		e := t.at(it.id)
		for ; s < len(status) && (e.first > 0 || status[s].Key.Interface <= e.iface()); s++ {
			if b = append(b, status[s]); len(b) == t.chunk {
				b = t.handOver(w, b)
			}
		}
		if b = append(b, t.record(it.id, e, w)); len(b) == t.chunk {
			b = t.handOver(w, b)
		}
	}
	for ; s < len(status); s++ {
		if b = append(b, status[s]); len(b) == t.chunk {
			b = t.handOver(w, b)
		}
	}

	for _, r := range status {
		if r.Status == flow.LogStatusNoData {
			t.stats.NoDataRecords++
		} else {
			t.stats.SkipDataRecords++
		}
	}
	t.stats.Records += uint64(len(order))
	t.stats.Windows++
	t.deliver(w, b)
}

// EmitChunks makes the table hand each window's batch to emit in pieces
// of at most n records, in order, instead of to the emit given to New:
// done is set on the last piece of a window (which may be empty). The
// records are the same; a window of many records is then closed in a
// buffer of n records instead of one as large as the window, which is
// not only memory: filling 120 bytes of fresh memory per record took
// more page faults than the rest of closing the window. Call it before
// the first packet.
func (t *Table) EmitChunks(n int, emit func(window int64, chunk []Closed, done bool)) {
	t.chunk, t.chunkEmit = max(n, 1), emit
}

// EmitNoDataRuns makes the table hand each run of consecutive windows
// without any packet to emit in one call, instead of one batch of NODATA
// records per window: the windows are from, from+interval, … (windows of
// them), and each has one NODATA record per interface in ifaces, in that
// order (the slice is the table's: read it during the call only). The
// run comes exactly where its batches would have; Stats counts the same.
// A capture whose timestamps jump by years has millions of such windows,
// and handing them over one by one cost far more than writing them.
// Runs are not used while interfaces are being removed (RemoveInterface
// takes effect at window boundaries inside a run). Call it before the
// first packet.
func (t *Table) EmitNoDataRuns(emit func(from, windows int64, ifaces []uint32)) {
	t.runEmit = emit
}

// batchCap is the capacity a batch of n records needs.
func (t *Table) batchCap(n int) int { return min(n, t.chunk) }

// handOver hands a full chunk of window w's batch to the EmitChunks
// function (t.chunk is MaxInt without one) and returns the emptied batch.
func (t *Table) handOver(w int64, b []Closed) []Closed {
	t.chunkEmit(w, b, false)
	return b[:0]
}

// deliver hands over the batch (or its last chunk) of window w.
func (t *Table) deliver(w int64, b []Closed) {
	t.batch = b[:0]
	if t.chunkEmit != nil {
		t.chunkEmit(w, b, true)
		return
	}
	t.emit(w, b)
}

// record is the OK record of entry id (at e) of window w. It is called
// once per entry, as the entry's window is emitted.
func (t *Table) record(id uint32, e *entry, w int64) Closed {
	packets, bytes := t.counts(id, e)
	return Closed{
		Key: flow.Key{
			Interface: e.iface(),
			Src:       addrFrom(e.src, e.fam&3),
			Dst:       addrFrom(e.dst, e.fam>>2),
			SrcPort:   e.srcPort(),
			DstPort:   e.dstPort(),
			Protocol:  e.protocol(),
			Action:    e.action(),
		},
		Counts: flow.Counts{
			Packets:   packets,
			Bytes:     bytes,
			Start:     w + int64(e.first),
			End:       w + int64(e.last),
			TCPFlags:  e.flags,
			Direction: e.dir,
		},
		Status: flow.LogStatusOK,
		Window: w,
	}
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
	if c := compareAddr(a.src, a.fam&3, b.src, b.fam&3); c != 0 {
		return c
	}
	if c := compareAddr(a.dst, a.fam>>2, b.dst, b.fam>>2); c != 0 {
		return c
	}
	if c := cmp.Compare(uint64(uint32(a.ports)), uint64(uint32(b.ports))); c != 0 {
		return c
	}
	return cmp.Compare(uint64(a.meta&0xFFFF), uint64(b.meta&0xFFFF))
}

func compareAddr(a addr128, af uint8, b addr128, bf uint8) int {
	if c := cmp.Compare(af, bf); c != 0 {
		return c
	}
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}
