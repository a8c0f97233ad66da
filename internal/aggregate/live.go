package aggregate

import (
	"slices"

	"github.com/flowlog/flowlog/flow"
)

// This file holds what a live source needs beyond Add: counts that were
// aggregated before they reach the table (a kernel map, a capture ring
// drained once a second), packets lost before the table, windows that
// close on the wall clock when no packet arrives, and interfaces that go
// away.

// removal is an interface to forget once the window it was removed in
// has been emitted.
type removal struct {
	iface  uint32
	window int64
}

// AddCounts counts packets of flow k that a source has already
// aggregated: packets packets of bytes IP-layer bytes in total, the first
// at Unix second first and the last at last, flags the OR of their
// reported TCP flags (see flow.ReportedTCPFlags), dir their direction if
// known. It is Add for many packets at once and gives the same records as
// adding them one by one, provided they all lie in the window of first: a
// last beyond that window is taken as the window's last second (a source
// must cut its counts at window bounds). Seconds beyond ±2^62 are clamped;
// packets == 0 does nothing.
func (t *Table) AddCounts(k flow.Key, first, last int64, packets, bytes uint64, flags uint8, dir flow.Direction) {
	if packets == 0 {
		return
	}
	if uint64(first+timeLimit) > 2*timeLimit {
		first = clampTime(first)
	}
	if uint64(last+timeLimit) > 2*timeLimit {
		last = clampTime(last)
	}
	if last < first {
		last = first
	}
	t.stats.Packets += packets
	if last > t.watermark {
		t.watermark = last
		if last >= t.closeAt {
			t.closeBefore(t.openFrom(last))
		}
	}
	ws := t.cur
	if first < t.curStart || first >= t.curEnd {
		ws = t.windowOf(first)
	}
	if ws.late {
		t.stats.LatePackets += packets
	}
	if end := ws.start + t.interval - 1; last > end {
		last = end
	}

	var key ckey
	t.keyOf(&k, &key)
	key.meta |= uint32(ws.id) << 16
	h := t.hash(&key)
	lo, hi := uint16(first-ws.start), uint16(last-ws.start)
	flags = flow.ReportedTCPFlags(flags)

	id, pos, found := t.find(&key, h)
	if found {
		e := t.at(id)
		t.addCounts(id, e, packets, bytes)
		e.first = min(e.first, lo)
		e.last = max(e.last, hi)
		e.flags |= flags
		if e.dir == flow.DirectionUnknown {
			e.dir = dir
		}
		return
	}
	if t.live >= t.maxFlows {
		t.skip(ws, k.Interface, h, packets)
		return
	}
	id = t.alloc()
	e := t.at(id)
	*e = entry{
		src: key.src, dst: key.dst,
		ports: key.ports, meta: key.meta, fam: key.fam,
		next:  ws.head,
		first: lo, last: hi,
		flags: flags, dir: dir,
	}
	t.addCounts(id, e, packets, bytes)
	if ws.count == 0 {
		ws.tail = id
	}
	ws.head = id
	ws.count++
	t.live++
	t.stats.Flows++
	if t.live > t.stats.PeakFlows {
		t.stats.PeakFlows = t.live
	}
	t.insertAt(pos, h, id)
}

// AddLost reports that packets of interface iface were lost before they
// reached the table (a kernel map or capture ring overrun) around Unix
// second sec: the window of sec gets a SKIPDATA record for iface instead
// of NODATA. It does not move the table's time; a window already emitted
// gets a late batch with the SKIPDATA record. packets == 0 does nothing.
func (t *Table) AddLost(iface uint32, sec int64, packets uint64) {
	if packets == 0 {
		return
	}
	if uint64(sec+timeLimit) > 2*timeLimit {
		sec = clampTime(sec)
	}
	t.stats.LostPackets += packets
	ws := t.cur
	if sec < t.curStart || sec >= t.curEnd {
		ws = t.windowOf(sec)
	}
	ws.addSkip(iface, packets)
}

// Advance moves the table's time to Unix second now without a packet, as
// a live source does with the wall clock: every window that ends at least
// the lateness before now is emitted, with NODATA for the known
// interfaces that had no traffic, so records do not wait for the next
// packet. On a table that has not seen a packet yet, the first Advance
// starts the window sequence at the window of now: from then on every
// window is emitted, also when nothing at all arrives. Times before the
// table's time are ignored.
func (t *Table) Advance(now int64) {
	if uint64(now+timeLimit) > 2*timeLimit {
		now = clampTime(now)
	}
	if !t.started {
		w := floorDiv(now, t.interval) * t.interval
		if w >= t.closedBefore {
			t.started = true
			t.emitFrom = w
			t.closeAt = w + t.interval + t.lateness
		}
	}
	if now > t.watermark {
		t.watermark = now
		if now >= t.closeAt {
			t.closeBefore(t.openFrom(now))
		}
	}
}

// RemoveInterface forgets interface iface as of Unix second sec (a link
// that went away): it keeps its records and SKIPDATA, and its NODATA for
// the windows up to the one of sec, but gets no NODATA for later windows.
// Calling AddInterface for it afterwards cancels the removal.
func (t *Table) RemoveInterface(iface uint32, sec int64) {
	if uint64(sec+timeLimit) > 2*timeLimit {
		sec = clampTime(sec)
	}
	w := floorDiv(sec, t.interval) * t.interval
	t.removals = slices.DeleteFunc(t.removals, func(r removal) bool { return r.iface == iface })
	if !t.started || w < t.emitFrom {
		// The window of sec is already emitted (or none will be).
		t.dropInterface(iface)
		return
	}
	t.removals = append(t.removals, removal{iface: iface, window: w})
}

// forgetRemoved applies the removals of windows up to w, which has just
// been emitted.
func (t *Table) forgetRemoved(w int64) {
	if len(t.removals) == 0 {
		return
	}
	t.removals = slices.DeleteFunc(t.removals, func(r removal) bool {
		if r.window <= w {
			t.dropInterface(r.iface)
			return true
		}
		return false
	})
}

// dropInterface removes iface from the known interfaces.
func (t *Table) dropInterface(iface uint32) {
	if i, found := slices.BinarySearch(t.ifaces, iface); found {
		t.ifaces = slices.Delete(t.ifaces, i, i+1)
		t.ifaceSeen = slices.Delete(t.ifaceSeen, i, i+1)
	}
}
