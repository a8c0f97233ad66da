// Package aggregate owns the flow table: it turns packets into flow records
// (one per flow key and aggregation window), closes windows as the capture's
// time passes, and reports interfaces without traffic (NODATA) and records
// lost to the table's capacity (SKIPDATA). It implements spec §2 and the
// offline rules 7 (windows, start/end), 12 (NODATA) and 13 (record order).
//
// The table is fed one call per packet and is the hot path of the read
// pipeline: Add does not allocate once the table has grown to its working
// size, and a flow held costs 75 to 81 bytes (see Table).
package aggregate

import (
	"cmp"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unsafe"

	"github.com/flowlog/flowlog/flow"
)

// Closed is one record of a closed window.
type Closed struct {
	// Key is the flow's key; for NODATA and SKIPDATA only Interface is set.
	Key flow.Key
	// Counts are the flow's counts in the window; for NODATA and SKIPDATA
	// only Start (the window start) and End (window start + interval).
	Counts flow.Counts
	Status flow.LogStatus
	Window int64 // window start, Unix seconds
}

// Stats are the table's counters since New.
type Stats struct {
	Packets        uint64 // packets given to Add
	Flows          uint64 // flow records started (one key in one window)
	Active         int    // flow records held now
	PeakFlows      int    // most flow records held at once
	SkippedPackets uint64 // packets not counted because the table was full
	// SkippedFlows estimates how many flow records (key and window) the
	// skipped packets belonged to. Counting them exactly would need memory
	// per lost flow, so it is a HyperLogLog estimate (4096 registers, 4 KiB,
	// standard error 1.6%; near exact for a few hundred flows).
	SkippedFlows    uint64
	LatePackets     uint64 // packets whose window had already been emitted
	LostPackets     uint64 // packets a live source lost before the table (AddLost)
	Windows         uint64 // batches emitted (one per closed window, plus late batches)
	Records         uint64 // OK records emitted
	NoDataRecords   uint64
	SkipDataRecords uint64
	Interfaces      int // interfaces known (added, or seen in a closed window)
}

// Table aggregates packets into flow records window by window.
//
// Time is the capture's: the watermark is the largest packet second seen.
// A window [w, w+interval) closes when the watermark reaches
// w + interval + lateness, or at Flush; windows close in time order and
// each closed window is handed to emit as one batch sorted per rule 13
// (or in pieces of that batch, see EmitChunks).
// From the window of the first packet to the window of the last one, every
// window is emitted, with NODATA for each known interface that had no
// packet in it — also when no interface had any (a gap), so a capture that
// spans years emits one NODATA batch per empty window without storing them.
// (Time is taken as given: a capture with a bogus timestamp a million years
// off gets NODATA for every window in between; seconds are clamped to
// ±2^62 only so that window arithmetic cannot overflow.)
//
// A packet whose window has already closed (the window ended more than the
// lateness before the newest packet) is not dropped: it starts a fresh record
// for its window, held until the next batch is emitted (or Flush) and then
// emitted as a batch of its own, just before the regular ones. Such a late
// batch has the window's OK and SKIPDATA records but no NODATA (that window
// already had its NODATA records), and it does not move the NODATA range.
// Stats.LatePackets counts these packets.
//
// Capacity: at most MaxFlows records are held across all open windows. A
// packet of a new key beyond that is not stored; it is counted per
// interface and window, and that window's batch gets one SKIPDATA record
// for the interface (an interface that only had skipped packets gets
// SKIPDATA, not NODATA). Packets of records already held keep counting.
//
// Memory: a record takes a 64-byte entry (in chunks of 1024) plus 8 to 16
// bytes of index (uint32 slots, at most half full); entries of closed windows
// are reused, and the table keeps its peak size. Closing a window also uses
// buffers sized by its record count, reused from window to window: the
// batch handed to emit (120 bytes per record; with EmitChunks, per record
// of a chunk) and the sort (24, and at most 1.5 MiB of scratch). Measured
// live heap per flow held: 74.9 bytes at 100 k flows, 80.8 at 1 M; closing
// a window of 400 k records adds 27 bytes per record (TestMemoryAtClose).
//
// A Table is not safe for concurrent use; emit runs inside Add or Flush and
// must not call back into the table.
type Table struct {
	interval int64
	lateness int64
	maxFlows int
	emit     func(window int64, batch []Closed)

	// index (index.go)
	seed      [6]uint64
	slots     []uint32
	slotMask  uint32
	used      int // non-empty slots, tombstones included
	chunks    []*[chunkSize]entry
	highWater uint32 // entries ever allocated
	free      uint32 // free entry list
	live      int    // entries held

	// time
	watermark    int64 // largest packet second seen
	closeAt      int64 // watermark at which the oldest open window closes
	closedBefore int64 // every window before it is closed
	emitFrom     int64 // next window of the regular sequence to emit
	started      bool  // a packet has opened a window in the regular sequence

	// windows with records or skipped packets, by start; late ones first
	states   []*window
	spare    []*window // closed window states for reuse
	freeIDs  []uint16
	nextID   int
	cur      *window // window of the last packet
	curStart int64   // cur's bounds, or an empty range
	curEnd   int64

	// interfaces known, sorted, with the batch generation they were last seen in
	ifaces    []uint32
	ifaceSeen []uint64
	gen       uint64
	removals  []removal // interfaces to forget once a window is emitted (live.go)

	carries map[uint32]carry // overflow of entries' 32-bit counters, by entry

	batch        []Closed
	chunk        int                                           // EmitChunks; MaxInt without
	chunkEmit    func(window int64, chunk []Closed, done bool) // EmitChunks
	runEmit      func(from, windows int64, ifaces []uint32)    // EmitNoDataRuns
	status       []Closed
	order        []sortItem
	sortTmp      []sortItem
	radixCounts  [8][256]uint32
	bucketCounts *[1 << bucketBits]uint32

	skipRegs  [numSkipRegs]uint8 // HyperLogLog registers over skipped records
	skipAny   bool
	skipTotal float64

	stats Stats
}

// window is the state of one window that has records or skipped packets.
type window struct {
	start int64
	id    uint16 // in the entries' keys while the window is held
	late  bool   // it was emitted before: no NODATA, not part of the NODATA range
	head  uint32 // entries of this window, newest first
	tail  uint32
	count int
	skips []skipCount // sorted by interface
}

type skipCount struct {
	iface   uint32
	packets uint64
}

const (
	// maxWindows bounds the window states held at once (their id is 16
	// bits). Regular windows are at most MaxLateness/60 + 2; when late
	// windows would exceed the bound they are emitted early.
	maxWindows = 1<<16 - 1

	// timeLimit bounds packet seconds so window arithmetic cannot overflow
	// (±146 billion years).
	timeLimit = 1 << 62

	skipRegBits = 12
	numSkipRegs = 1 << skipRegBits
)

// New returns an empty table that hands each closed window to emit.
func New(cfg Config, emit func(window int64, batch []Closed)) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if emit == nil {
		return nil, errors.New("invalid emit: nil")
	}
	t := &Table{
		interval:     cfg.Interval,
		lateness:     cfg.lateness(),
		maxFlows:     cfg.maxFlows(),
		emit:         emit,
		chunk:        math.MaxInt,
		slots:        make([]uint32, minSlots),
		slotMask:     minSlots - 1,
		free:         noEntry,
		watermark:    math.MinInt64,
		closeAt:      math.MaxInt64,
		closedBefore: math.MinInt64,
		curStart:     math.MaxInt64,
		curEnd:       math.MinInt64,
	}
	for i := range t.seed {
		t.seed[i] = rand.Uint64()
	}
	return t, nil
}

// AddInterface makes iface known, so that it gets NODATA records for the
// windows it has no packet in. It applies to every window not closed yet;
// adding an interface twice has no effect. An interface that was never
// added becomes known when the first window it has packets in closes.
// It cancels a pending RemoveInterface.
func (t *Table) AddInterface(iface uint32) {
	if len(t.removals) > 0 {
		t.removals = slices.DeleteFunc(t.removals, func(r removal) bool { return r.iface == iface })
	}
	t.interfaceIndex(iface)
}

// interfaceIndex returns the index of iface in the known interfaces,
// adding it if needed.
func (t *Table) interfaceIndex(iface uint32) int {
	i, found := slices.BinarySearch(t.ifaces, iface)
	if !found {
		t.ifaces = slices.Insert(t.ifaces, i, iface)
		t.ifaceSeen = slices.Insert(t.ifaceSeen, i, 0)
	}
	return i
}

// Add counts one packet of flow k at Unix second ts: length is its IP
// length (bytes), rawTCPFlags the TCP flags byte as captured (0 for other
// protocols; only the reported bits are kept, see flow.ReportedTCPFlags),
// dir its direction if known. A record takes the direction of its first
// packet with a known one. Address zones are not kept. Seconds beyond
// ±2^62 are clamped.
func (t *Table) Add(k flow.Key, ts int64, length uint32, rawTCPFlags uint8, dir flow.Direction) {
	var key ckey
	t.keyOf(&k, &key)
	t.add(&key, 0, noWindow, k.Interface, ts, length, rawTCPFlags, dir)
}

// Packet holds the arguments of one Add call, for AddBatch.
type Packet struct {
	Key         flow.Key
	Sec         int64 // Unix second
	Length      uint32
	RawTCPFlags uint8
	Dir         flow.Direction
}

// AddBatch adds the packets in order and gives the same result as calling
// Add for each. It is faster on a table much bigger than the CPU cache:
// the lookups are software-pipelined, the index slot of a packet is
// fetched lookAhead packets before its entry and its entry lookAhead
// packets before it is counted, so that the cache misses of many packets
// overlap instead of stalling the CPU one after the other.
func (t *Table) AddBatch(pkts []Packet) {
	var keys [addChunk]ckey
	var hs [addChunk]uint64
	var wids [addChunk]uint32
	for len(pkts) > 0 {
		n := min(len(pkts), addChunk)
		for i := 0; i < n+2*lookAhead; i++ {
			if i < n {
				// A key's hash includes its window, which the packets
				// ahead of it may still open or close: the hash is made
				// for the window the packet falls in now, and made again
				// by add if that changed.
				hs[i], wids[i] = t.prepare(&pkts[i], &keys[i])
				if wids[i] != noWindow {
					prefetch(unsafe.Pointer(&t.slots[uint32(hs[i])&t.slotMask]))
				}
			}
			if j := i - lookAhead; j >= 0 && j < n && wids[j] != noWindow {
				h := hs[j]
				if s := t.slots[uint32(h)&t.slotMask]; s&slotTagMask == tagOf(h) && s != tombstone && s != 0 {
					prefetch(unsafe.Pointer(t.at(s&slotIDMask - 1)))
				}
			}
			if j := i - 2*lookAhead; j >= 0 {
				p := &pkts[j]
				t.add(&keys[j], hs[j], wids[j], p.Key.Interface, p.Sec, p.Length, p.RawTCPFlags, p.Dir)
			}
		}
		pkts = pkts[n:]
	}
}

const (
	// lookAhead is the distance in packets between the stages of
	// AddBatch: enough work to cover a miss to memory.
	lookAhead = 8
	// addChunk bounds the packets AddBatch prepares at once (its stack).
	addChunk = 128
)

// prepare is keyOf for p, and, if p falls in the current window, adds
// that window to the key and returns the key's hash and the window's id
// (else noWindow). It is keyOf, addrWords and hash written out in one
// function: as calls (too big to inline) they were a sixth of AddBatch.
// TestPrepare holds it to them.
func (t *Table) prepare(p *Packet, key *ckey) (h uint64, wid uint32) {
	if !netipWords {
		t.keyOf(&p.Key, key)
	} else {
		k := &p.Key
		key.src = *(*addr128)(unsafe.Pointer(&k.Src))
		key.dst = *(*addr128)(unsafe.Pointer(&k.Dst))
		key.fam = famOf(k.Src) | famOf(k.Dst)<<2
		key.ports = uint64(k.Interface)<<32 | uint64(k.SrcPort)<<16 | uint64(k.DstPort)
		key.meta = packMeta(0, k.Protocol, k.Action)
	}
	if p.Sec < t.curStart || p.Sec >= t.curEnd {
		return 0, noWindow
	}
	wid = uint32(t.cur.id)
	key.meta |= wid << 16
	s := &t.seed
	h = mix(key.src.hi^s[0], key.src.lo^s[1])
	h ^= mix(key.dst.hi^s[2], key.dst.lo^s[3])
	h ^= mix(key.ports^s[4], (uint64(key.meta)<<8|uint64(key.fam))^s[5])
	return h, wid
}

// noWindow is a window id no window has: key and hash are not made yet.
const noWindow = ^uint32(0)

// keyOf fills key with the compact key of k, with window id 0.
func (t *Table) keyOf(k *flow.Key, key *ckey) {
	var srcFam, dstFam uint8
	key.src, srcFam = addrWords(k.Src)
	key.dst, dstFam = addrWords(k.Dst)
	key.fam = srcFam | dstFam<<2
	key.ports = uint64(k.Interface)<<32 | uint64(k.SrcPort)<<16 | uint64(k.DstPort)
	key.meta = packMeta(0, k.Protocol, k.Action)
}

// add is Add for a key made by keyOf: if wid is its window's id, key has
// it and h is its hash, else both are completed here.
func (t *Table) add(key *ckey, h uint64, wid uint32, iface uint32, ts int64, length uint32, rawTCPFlags uint8, dir flow.Direction) {
	if uint64(ts+timeLimit) > 2*timeLimit {
		ts = clampTime(ts)
	}
	t.stats.Packets++
	if ts > t.watermark {
		t.watermark = ts
		if ts >= t.closeAt {
			t.closeBefore(t.openFrom(ts))
		}
	}
	ws := t.cur
	if ts < t.curStart || ts >= t.curEnd {
		ws = t.windowOf(ts)
	}
	if ws.late {
		t.stats.LatePackets++
	}
	if uint32(ws.id) != wid {
		key.meta = key.meta&0xFFFF | uint32(ws.id)<<16
		h = t.hash(key)
	}
	off := uint16(ts - ws.start)
	flags := flow.ReportedTCPFlags(rawTCPFlags)

	// The counts follow flow.Counts.Add, kept in 22 bytes instead of its 40
	// (start and end as offsets in the window); the tests hold them to a
	// reference table that uses flow.Counts.
	id, pos, found := t.find(key, h)
	if found {
		e := t.at(id)
		e.packets++
		nb := e.bytes + length
		if e.packets == 0 || nb < e.bytes {
			t.carryAdd(id, e, nb < e.bytes)
		}
		e.bytes = nb
		if off < e.first {
			e.first = off
		}
		if off > e.last {
			e.last = off
		}
		e.flags |= flags
		if e.dir == flow.DirectionUnknown {
			e.dir = dir
		}
		return
	}
	if t.live >= t.maxFlows {
		t.skip(ws, iface, h, 1)
		return
	}
	id = t.alloc()
	*t.at(id) = entry{
		src: key.src, dst: key.dst,
		packets: 1, bytes: length,
		ports: key.ports, meta: key.meta, fam: key.fam,
		next:  ws.head,
		first: off, last: off,
		flags: flags, dir: dir,
	}
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

// carryAdd records the overflow of Add's 32-bit counters: of the packet
// count if it wrapped to 0, of the byte count if bytesWrapped.
func (t *Table) carryAdd(id uint32, e *entry, bytesWrapped bool) {
	var packets, bytes uint64
	if e.packets == 0 {
		packets = 1 << 32
	}
	if bytesWrapped {
		bytes = 1 << 32
	}
	t.addCarry(id, e, packets, bytes)
}

// Flush closes every window (end of input): all records are emitted, and
// NODATA up to the window of the newest packet. The table stays usable and
// continues the same timeline: later packets of emitted windows are late.
func (t *Table) Flush() {
	if len(t.states) == 0 && !t.started {
		return
	}
	t.closeBefore(floorDiv(t.watermark, t.interval)*t.interval + t.interval)
}

// Stats returns the counters.
func (t *Table) Stats() Stats {
	s := t.stats
	s.Active = t.live
	s.Interfaces = len(t.ifaces)
	// Each skipped packet belongs to one flow: the estimate cannot be more.
	s.SkippedFlows = min(uint64(math.Round(t.skipTotal+t.skipEstimate())), s.SkippedPackets)
	return s
}

func clampTime(ts int64) int64 {
	if ts < -timeLimit {
		return -timeLimit
	}
	return timeLimit
}

// floorDiv is a / b rounded down (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// openFrom is the first window still open at watermark wm: the smallest w
// with w + interval + lateness > wm.
func (t *Table) openFrom(wm int64) int64 {
	return floorDiv(wm-t.interval-t.lateness, t.interval)*t.interval + t.interval
}

// windowOf returns the state of the window of second ts, creating it.
func (t *Table) windowOf(ts int64) *window {
	w := floorDiv(ts, t.interval) * t.interval
	i, found := slices.BinarySearchFunc(t.states, w, func(ws *window, w int64) int {
		return cmp.Compare(ws.start, w)
	})
	var ws *window
	if found {
		ws = t.states[i]
	} else {
		late := w < t.closedBefore || w < t.openFrom(t.watermark)
		if len(t.states) >= maxWindows {
			t.closeLate()
			i, _ = slices.BinarySearchFunc(t.states, w, func(ws *window, w int64) int {
				return cmp.Compare(ws.start, w)
			})
		}
		ws = t.newWindow(w, late)
		t.states = slices.Insert(t.states, i, ws)
		if !late && (!t.started || w < t.emitFrom) {
			t.started = true
			t.emitFrom = w
			t.closeAt = w + t.interval + t.lateness
		}
	}
	t.cur, t.curStart, t.curEnd = ws, w, w+t.interval
	return ws
}

func (t *Table) newWindow(start int64, late bool) *window {
	var ws *window
	if n := len(t.spare); n > 0 {
		ws = t.spare[n-1]
		t.spare = t.spare[:n-1]
	} else {
		ws = new(window)
	}
	var id uint16
	if n := len(t.freeIDs); n > 0 {
		id = t.freeIDs[n-1]
		t.freeIDs = t.freeIDs[:n-1]
	} else {
		id = uint16(t.nextID)
		t.nextID++
	}
	*ws = window{start: start, id: id, late: late, head: noEntry, tail: noEntry, skips: ws.skips[:0]}
	return ws
}

// skip counts packets of one flow that found the table full.
func (t *Table) skip(ws *window, iface uint32, h uint64, packets uint64) {
	t.stats.SkippedPackets += packets
	ws.addSkip(iface, packets)

	// HyperLogLog register update: the top bits pick the register, the
	// rank is the position of the first 1 bit in the rest.
	reg := h >> (64 - skipRegBits)
	rank := uint8(bits.LeadingZeros64(h<<skipRegBits|1<<(skipRegBits-1))) + 1
	if rank > t.skipRegs[reg] {
		t.skipRegs[reg] = rank
	}
	t.skipAny = true
}

// addSkip counts packets of iface that are missing from the window's
// records, which makes the window's batch carry SKIPDATA for iface.
func (ws *window) addSkip(iface uint32, packets uint64) {
	i, found := slices.BinarySearchFunc(ws.skips, iface, func(s skipCount, iface uint32) int {
		return cmp.Compare(s.iface, iface)
	})
	if !found {
		ws.skips = slices.Insert(ws.skips, i, skipCount{iface: iface})
	}
	ws.skips[i].packets += packets
}

// skipEstimate is the HyperLogLog estimate of the distinct skipped records
// since the last fold, with linear counting for small numbers.
func (t *Table) skipEstimate() float64 {
	if !t.skipAny {
		return 0
	}
	const m = float64(numSkipRegs)
	sum, zeros := 0.0, 0
	for _, r := range t.skipRegs {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros))
	}
	return e
}

// foldSkipEstimate adds the estimate to the total and clears the
// registers when windows close: the next window's flows are new records.
func (t *Table) foldSkipEstimate() {
	t.skipTotal += t.skipEstimate()
	clear(t.skipRegs[:])
	t.skipAny = false
}
