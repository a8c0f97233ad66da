package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	// Named: read_test.go has a helper called capture.
	livesrc "github.com/flowlog/flowlog/internal/capture"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/policy"
)

// This file is the live path of one flow log: counts drained from a live
// source (capture.Delta) → flow table → records → sink, with windows that
// close on the wall clock (Advance) rather than when packets arrive.

// LiveLateness is the grace period of live flow tables: a source is
// drained about once a second, so a window's last packets reach the table
// within about a second of its end; two seconds leave room for a slow
// drain. Later packets are not lost: they go out in a late batch.
const LiveLateness = 2

// DefaultQueueWindows is how many closed windows may wait for a slow sink
// before records are dropped (and reported as SKIPDATA).
const DefaultQueueWindows = 64

// LiveConfig configures one flow log on live traffic.
type LiveConfig struct {
	Format      *flow.Format
	Aggregate   aggregate.Config // Lateness 0 means LiveLateness
	TrafficType TrafficType
	Exclusions  policy.Exclusions
	// QueueWindows bounds the closed windows waiting for the sink; 0
	// means DefaultQueueWindows. Formatting, compression and upload run
	// in a goroutine of the sink's, off the path that drains the source.
	QueueWindows int
	// OnSinkError, if set, is called (from the sink goroutine) with each
	// error of the sink.
	OnSinkError func(error)
}

// Validate reports the first setting a LiveLog cannot use.
func (c LiveConfig) Validate() error {
	if c.Format == nil {
		return errors.New("format: not set")
	}
	if err := c.aggregate().Validate(); err != nil {
		return err
	}
	if _, err := ParseTrafficType(string(c.TrafficType)); err != nil {
		return err
	}
	if c.QueueWindows < 0 {
		return fmt.Errorf("queue-windows %d: must not be negative", c.QueueWindows)
	}
	return nil
}

func (c LiveConfig) aggregate() aggregate.Config {
	a := c.Aggregate
	if a.Lateness == 0 {
		a.Lateness = LiveLateness
	}
	return a
}

// NATLookup tells the packet-level addresses of flows the host
// translates (inventory.NATFollower).
type NATLookup interface {
	Lookup(t inventory.Tuple) (pktSrc, pktDst netip.Addr, ok bool)
}

// LiveStats are a LiveLog's counters.
type LiveStats struct {
	Table          aggregate.Stats
	Excluded       uint64 // packets of traffic AWS does not log
	BadTime        uint64 // packets stamped before 1970 or after 2242
	Records        uint64 // records handed to the sink (after the traffic-type filter)
	NoData         uint64
	SkipData       uint64
	DroppedWindows uint64 // windows whose records were dropped because the sink fell behind
	DroppedRecords uint64
	SinkErrors     uint64
	Queued         int // windows waiting for the sink
}

// LiveLog is one flow log fed by a live source: its flow table, the ids
// of the interfaces it covers, and its sink. Every method but Stats and
// LastError must be called from one goroutine (the agent's loop).
type LiveLog struct {
	cfg     LiveConfig
	table   *aggregate.Table
	sink    Sink
	version uint8

	ifaces  map[uint32]*liveIface
	removed map[uint32]int64 // interfaces removed, by Unix second of removal

	queue   chan liveBatch
	pending [][]flow.Record // SKIPDATA of dropped windows, not queued yet
	done    chan struct{}
	started bool
	stopped bool

	excluded, badTime, records, noData, skipData uint64
	droppedWindows, droppedRecords               atomic.Uint64
	sinkErrors                                   atomic.Uint64
	errMu                                        sync.Mutex
	lastErr                                      error
}

type liveIface struct {
	res inventory.Resolved
	nat NATLookup
}

// liveBatch is one closed window for the sink: its records, and the
// watermark to advance to after writing them (0: none).
type liveBatch struct {
	recs      []flow.Record
	watermark int64
}

// NewLiveLog checks cfg and returns a flow log writing to sink; Start it
// before use.
func NewLiveLog(cfg LiveConfig, sink Sink) (*LiveLog, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("sink: not set")
	}
	if cfg.QueueWindows == 0 {
		cfg.QueueWindows = DefaultQueueWindows
	}
	l := &LiveLog{
		cfg:     cfg,
		sink:    sink,
		version: uint8(cfg.Format.Version()),
		ifaces:  map[uint32]*liveIface{},
		removed: map[uint32]int64{},
		queue:   make(chan liveBatch, cfg.QueueWindows),
		done:    make(chan struct{}),
	}
	t, err := aggregate.New(cfg.aggregate(), l.emit)
	if err != nil {
		return nil, err
	}
	l.table = t
	return l, nil
}

// Start starts the sink goroutine and the window sequence at Unix second
// now: from then on every window gets its records, or NODATA for each
// interface without traffic.
func (l *LiveLog) Start(_ context.Context, now int64) error {
	if l.started {
		return errors.New("live flow log: started twice")
	}
	l.started = true
	go l.write()
	l.table.Advance(now)
	return nil
}

// AddInterface makes the flow log cover the interface attached as id,
// from Unix second now; nat may be nil.
func (l *LiveLog) AddInterface(id uint32, res inventory.Resolved, nat NATLookup) {
	l.ifaces[id] = &liveIface{res: res, nat: nat}
	delete(l.removed, id)
	l.table.AddInterface(id)
}

// UpdateInterface changes the ids or addresses of a covered interface
// (its addresses changed); records not emitted yet take the new values.
func (l *LiveLog) UpdateInterface(id uint32, res inventory.Resolved, nat NATLookup) {
	if fi := l.ifaces[id]; fi != nil {
		fi.res, fi.nat = res, nat
	}
}

// RemoveInterface stops covering interface id as of Unix second now: its
// records of the open windows are still written when they close, and it
// gets no NODATA after the window of now.
func (l *LiveLog) RemoveInterface(id uint32, now int64) {
	if _, ok := l.ifaces[id]; ok {
		l.table.RemoveInterface(id, now)
		l.removed[id] = now
	}
}

// forgetRemoved drops the ids of interfaces removed long enough ago that
// their windows are written: a source returns the last counts of a link
// with the drain after it was detached, within seconds.
func (l *LiveLog) forgetRemoved(now int64) {
	keep := l.cfg.Aggregate.Interval + l.cfg.aggregate().Lateness + 60
	for id, at := range l.removed {
		if now-at > keep {
			delete(l.ifaces, id)
			delete(l.removed, id)
		}
	}
}

// Covers reports whether the flow log covers interface id.
func (l *LiveLog) Covers(id uint32) bool { _, ok := l.ifaces[id]; return ok }

// Add counts a delta of a covered interface; deltas of other interfaces
// are ignored.
func (l *LiveLog) Add(d *livesrc.Delta) {
	fi := l.ifaces[d.Key.Interface]
	if fi == nil {
		return
	}
	k := &d.Key
	if l.cfg.Exclusions.Excluded(k.Src, k.Dst, k.Protocol, k.SrcPort, k.DstPort, fi.res.Excluded) {
		l.excluded += d.Packets
		return
	}
	first, last := floorSeconds(d.First), floorSeconds(d.Last)
	if first < 0 || last >= maxPacketSecond {
		l.badTime += d.Packets
		return
	}
	dir := d.Direction
	if dir == flow.DirectionUnknown && len(fi.res.Addresses) > 0 {
		if fi.res.HasAddr(k.Src) {
			dir = flow.DirectionEgress
		} else if fi.res.HasAddr(k.Dst) {
			dir = flow.DirectionIngress
		}
	}
	l.table.AddCounts(*k, first, last, d.Packets, d.Bytes, d.TCPFlags, dir)
}

// AddLost reports packets of interface id lost before they were counted
// (ring or map overrun) around Unix second now: SKIPDATA for its window.
func (l *LiveLog) AddLost(id uint32, now int64, packets uint64) {
	if _, ok := l.ifaces[id]; ok {
		l.table.AddLost(id, now, packets)
	}
}

// Advance closes the windows that ended by Unix second now (minus the
// lateness) and hands their records to the sink goroutine.
func (l *LiveLog) Advance(now int64) {
	l.table.Advance(now)
	l.flushPending()
	if len(l.removed) > 0 {
		l.forgetRemoved(now)
	}
}

// Stop closes every open window (records of the current one too), waits
// until the sink has written everything, and closes the sink.
func (l *LiveLog) Stop() error {
	if l.stopped {
		return nil
	}
	l.stopped = true
	if !l.started {
		return l.sink.Close()
	}
	l.table.Flush()
	// Nothing may be dropped now: wait for room.
	for _, p := range l.pending {
		l.queue <- liveBatch{recs: p}
	}
	l.pending = nil
	close(l.queue)
	<-l.done
	err := l.sink.Close()
	if err != nil {
		l.sinkError(err)
	}
	return err
}

// Stats returns the counters; call it from the goroutine that feeds the
// flow log.
func (l *LiveLog) Stats() LiveStats {
	return LiveStats{
		Table:          l.table.Stats(),
		Excluded:       l.excluded,
		BadTime:        l.badTime,
		Records:        l.records,
		NoData:         l.noData,
		SkipData:       l.skipData,
		DroppedWindows: l.droppedWindows.Load(),
		DroppedRecords: l.droppedRecords.Load(),
		SinkErrors:     l.sinkErrors.Load(),
		Queued:         len(l.queue),
	}
}

// LastError returns the sink's last error, nil if it never failed.
func (l *LiveLog) LastError() error {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return l.lastErr
}

func (l *LiveLog) sinkError(err error) {
	l.sinkErrors.Add(1)
	l.errMu.Lock()
	l.lastErr = err
	l.errMu.Unlock()
	if l.cfg.OnSinkError != nil {
		l.cfg.OnSinkError(err)
	}
}

// write is the sink goroutine.
func (l *LiveLog) write() {
	defer close(l.done)
	for b := range l.queue {
		if len(b.recs) > 0 {
			if err := l.sink.Write(b.recs); err != nil {
				l.sinkError(err)
			}
		}
		if b.watermark != 0 {
			if err := l.sink.Advance(b.watermark); err != nil {
				l.sinkError(err)
			}
		}
	}
}

// emit turns one closed window into records and queues them for the sink.
func (l *LiveLog) emit(window int64, batch []aggregate.Closed) {
	recs := make([]flow.Record, 0, len(batch))
	for i := range batch {
		c := &batch[i]
		if c.Status == flow.LogStatusOK && !l.cfg.TrafficType.keeps(c.Key.Action) {
			continue
		}
		fi := l.ifaces[c.Key.Interface]
		if fi == nil {
			// Not covered (a delta can only reach the table through a
			// covered interface, so this is not expected): skip it.
			continue
		}
		recs = append(recs, flow.Record{})
		r := &recs[len(recs)-1]
		buildRecord(r, c, &fi.res, l.version)
		if c.Status == flow.LogStatusOK && fi.nat != nil {
			k := &c.Key
			if src, dst, ok := fi.nat.Lookup(inventory.Tuple{Src: k.Src, Dst: k.Dst, SrcPort: k.SrcPort, DstPort: k.DstPort, Protocol: k.Protocol}); ok {
				r.PktSrcAddr, r.PktDstAddr = src, dst
			}
		}
	}
	b := liveBatch{recs: recs, watermark: window + l.cfg.Aggregate.Interval}
	l.flushPending()
	if len(l.pending) > 0 || !l.enqueue(b) {
		// The sink learns that time moved on with the next window it
		// gets, after this one's SKIPDATA.
		l.drop(window, recs)
		return
	}
	l.count(recs)
}

// enqueue queues b unless the queue is full (it never blocks while the
// flow log runs; at Stop it waits).
func (l *LiveLog) enqueue(b liveBatch) bool {
	if l.stopped {
		l.queue <- b
		return true
	}
	select {
	case l.queue <- b:
		return true
	default:
		return false
	}
}

// drop replaces a window's records the sink has no room for by one
// SKIPDATA record per interface, queued as soon as there is room.
func (l *LiveLog) drop(window int64, recs []flow.Record) {
	l.droppedWindows.Add(1)
	l.droppedRecords.Add(uint64(len(recs)))
	seen := map[string]bool{}
	var skips []flow.Record
	for i := range recs {
		r := &recs[i]
		if seen[r.InterfaceID] {
			continue
		}
		seen[r.InterfaceID] = true
		skips = append(skips, flow.Record{
			Present: statusFields, Version: l.version, AccountID: r.AccountID, InterfaceID: r.InterfaceID,
			Start: window, End: window + l.cfg.Aggregate.Interval, LogStatus: flow.LogStatusSkipData,
		})
	}
	if len(skips) > 0 {
		l.pending = append(l.pending, skips)
	}
}

// flushPending queues the SKIPDATA records of dropped windows, in order,
// while there is room.
func (l *LiveLog) flushPending() {
	for len(l.pending) > 0 {
		if !l.enqueue(liveBatch{recs: l.pending[0]}) {
			return
		}
		l.count(l.pending[0])
		l.pending[0] = nil
		l.pending = l.pending[1:]
	}
}

func (l *LiveLog) count(recs []flow.Record) {
	l.records += uint64(len(recs))
	for i := range recs {
		switch recs[i].LogStatus {
		case flow.LogStatusNoData:
			l.noData++
		case flow.LogStatusSkipData:
			l.skipData++
		}
	}
}

// DrainLive drains src once: each delta goes to every flow log that
// covers its interface (seen, if set, gets every delta first, for
// per-interface metrics), and lost packets become SKIPDATA for the window
// of Unix second now. It returns the lost packets per interface.
func DrainLive(src livesrc.Source, now int64, logs []*LiveLog, seen func(*livesrc.Delta)) (map[uint32]uint64, error) {
	lost, err := src.Drain(func(d *livesrc.Delta) {
		if seen != nil {
			seen(d)
		}
		for _, l := range logs {
			l.Add(d)
		}
	})
	for id, n := range lost {
		for _, l := range logs {
			l.AddLost(id, now, n)
		}
	}
	return lost, err
}
