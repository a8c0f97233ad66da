package pipeline

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/decode"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/policy"
)

// Sink receives the records of each closed window. Write gets records in
// output order, a window's records in one or more calls (the slice is
// reused after Write returns); Advance says every record with End <
// watermark has been written; Close flushes what is left.
type Sink interface {
	Write(recs []flow.Record) error
	Advance(watermark int64) error
	Close() error
}

// TrafficType filters records by action, like a flow log's traffic type.
type TrafficType string

const (
	TrafficAll    TrafficType = "ALL"
	TrafficAccept TrafficType = "ACCEPT"
	TrafficReject TrafficType = "REJECT"
)

// ParseTrafficType accepts ALL, ACCEPT or REJECT in any case.
func ParseTrafficType(s string) (TrafficType, error) {
	switch t := TrafficType(strings.ToUpper(s)); t {
	case TrafficAll, TrafficAccept, TrafficReject:
		return t, nil
	}
	return "", fmt.Errorf("traffic type %q: want ACCEPT, REJECT or ALL", s)
}

// keeps reports whether records with action a pass the filter.
func (t TrafficType) keeps(a flow.Action) bool {
	switch t {
	case TrafficAccept:
		return a == flow.ActionAccept
	case TrafficReject:
		return a == flow.ActionReject
	}
	return true
}

// ReadConfig configures turning one capture into records.
type ReadConfig struct {
	Format      *flow.Format
	Aggregate   aggregate.Config
	TrafficType TrafficType
	Exclusions  policy.Exclusions
	Inventory   *inventory.Inventory
	// AllowTruncated turns a capture cut off mid-packet into a warning.
	AllowTruncated bool
}

// ReadStats summarises a run.
type ReadStats struct {
	Packets      uint64 // packets read from the capture
	CaptureBytes uint64 // bytes of the (decompressed) capture
	Recorded     uint64 // packets counted into records
	NotIP        uint64 // frames that are not IPv4/IPv6 or whose IP header is broken
	Excluded     uint64 // packets of traffic AWS does not log
	BadTime      uint64 // packets stamped before 1970 or after maxPacketSecond (not recorded)
	Records      uint64 // records written (after the traffic-type filter)
	NoData       uint64 // NODATA records among them
	SkipData     uint64 // SKIPDATA records among them
	SkippedFlows uint64 // flows not recorded because the flow table was full (estimate)
	Interfaces   int
	Truncated    bool  // the capture was cut off mid-packet
	TruncatedAt  int64 // byte offset (decompressed) where the cut record starts
}

// ErrTruncated is returned (wrapped) when the capture ends mid-packet and
// AllowTruncated is off. Records of what was read have been written.
var ErrTruncated = errors.New("capture is truncated")

// seedBytes is how much of the first packet identifies a capture for
// derived ids.
const seedBytes = 256

// Read turns the capture in r into records and hands them to sink. name
// is used in errors. Records of everything read are written even when
// the capture turns out to be truncated.
//
// A regular file (an *os.File, standard input redirected from a file too)
// is mapped into memory rather than read through a buffer.
func Read(ctx context.Context, r io.Reader, name string, cfg ReadConfig, sink Sink) (st ReadStats, err error) {
	if err := cfg.Aggregate.Validate(); err != nil {
		return st, err
	}
	rd, err := openCapture(r)
	if err != nil {
		return st, fmt.Errorf("read %s: %w", name, err)
	}
	defer rd.Close()
	if rd.Mapped() {
		// A mapped file that shrinks under us faults instead of returning
		// an error from read(2): turn the fault into one.
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() {
			if e := recover(); e != nil {
				ferr := rd.MappingFault(e)
				if ferr == nil {
					panic(e)
				}
				err = fmt.Errorf("read %s: %w", name, ferr)
			}
		}()
	}
	rc := &recordBuilder{ctx: ctx, cfg: cfg, sink: sink, stats: &st}
	table, err := aggregate.New(cfg.Aggregate, rc.emit)
	if err != nil {
		return st, err
	}
	// A window's records come in pieces: closing a window of 400 k flows
	// in one batch took 48 MB of fresh memory, and faulting it in cost
	// more than converting the records.
	table.EmitChunks(recordChunk, rc.emitChunk)
	table.EmitNoDataRuns(rc.emitNoDataRun)
	// Most captures have no fragments: the reassembly table (about
	// 0.4 MB) is made at the first one.
	var frags *decode.Fragments
	var (
		pkt     pcapfile.Packet
		dp      decode.Packet
		ifaces  []pcapfile.Interface
		seed    []byte
		readErr error
		// Packets go to the flow table in batches, whose lookups overlap
		// their cache misses (aggregate.Table.AddBatch).
		batch  [addBatch]aggregate.Packet
		queued int
		// The per-packet counters, kept off st, which the record
		// builder's pointer puts on the heap.
		n struct{ packets, recorded, notIP, excluded, badTime uint64 }
	)
	for {
		if n.packets&0xFFFF == 0 && ctx.Err() != nil {
			readErr = ctx.Err()
			break
		}
		err := rd.Next(&pkt)
		if err != nil {
			if err != io.EOF {
				readErr = err
			}
			break
		}
		n.packets++
		if seed == nil {
			seed = captureSeed(&pkt)
			rc.seed = seed
		}
		if pkt.Interface >= len(ifaces) {
			// A new interface is made known to the table after the packets
			// before it, as with one Add per packet.
			table.AddBatch(batch[:queued])
			queued = 0
			ifaces = rd.Interfaces()
			rc.grow(len(ifaces), ifaces, table)
		}
		if err := decode.Decode(ifaces[pkt.Interface].LinkType, pkt.Data, &dp); err != nil {
			n.notIP++
			continue
		}
		if dp.Fragment != decode.FragmentNone {
			if frags == nil {
				frags = decode.NewFragments(4096)
			}
			frags.Resolve(&dp)
		}
		fi := &rc.ifaces[pkt.Interface]
		if cfg.Exclusions.Excluded(dp.Src, dp.Dst, dp.Protocol, dp.SrcPort, dp.DstPort, fi.res.Excluded) {
			n.excluded++
			continue
		}
		dir := dp.Direction
		switch pkt.Direction {
		case 1:
			dir = flow.DirectionIngress
		case 2:
			dir = flow.DirectionEgress
		}
		if dir == flow.DirectionUnknown && len(fi.res.Addresses) > 0 {
			if fi.res.HasAddr(dp.Src) {
				dir = flow.DirectionEgress
			} else if fi.res.HasAddr(dp.Dst) {
				dir = flow.DirectionIngress
			}
		}
		sec := floorSeconds(pkt.Timestamp)
		if sec < 0 || sec >= maxPacketSecond {
			n.badTime++
			continue
		}
		n.recorded++
		// Field by field: a composite literal is built aside and copied.
		b := &batch[queued]
		b.Key.Interface = uint32(pkt.Interface)
		b.Key.Src, b.Key.Dst = dp.Src, dp.Dst
		b.Key.SrcPort, b.Key.DstPort = dp.SrcPort, dp.DstPort
		b.Key.Protocol, b.Key.Action = dp.Protocol, flow.ActionAccept
		b.Sec, b.Length, b.RawTCPFlags, b.Dir = sec, dp.Length, dp.TCPFlags, dir
		if queued++; queued == len(batch) {
			table.AddBatch(batch[:])
			queued = 0
		}
	}
	table.AddBatch(batch[:queued])
	st.Packets, st.Recorded, st.NotIP, st.Excluded, st.BadTime = n.packets, n.recorded, n.notIP, n.excluded, n.badTime
	st.CaptureBytes = uint64(rd.Offset())
	// Interfaces declared after the last packet (or in a capture with no
	// packets) still exist and get their NODATA records.
	if ifaces = rd.Interfaces(); len(ifaces) > len(rc.ifaces) {
		if seed == nil {
			seed = captureSeed(nil)
			rc.seed = seed
		}
		rc.grow(len(ifaces), ifaces, table)
	}
	st.Interfaces = len(ifaces)
	table.Flush()
	st.SkippedFlows = table.Stats().SkippedFlows
	var stop *stoppedError
	if errors.As(rc.err, &stop) {
		// Interrupted in a run of windows without packets: what the sink
		// holds is complete up to the run's stop; the sink publishes it.
		if err := sink.Close(); err != nil {
			return st, err
		}
		return st, fmt.Errorf("read %s: %w", name, rc.err)
	}
	if rc.err != nil {
		return st, rc.err
	}
	if err := sink.Close(); err != nil {
		return st, err
	}
	var trunc *pcapfile.TruncatedError
	switch {
	case readErr == nil:
	case errors.As(readErr, &trunc), errors.Is(readErr, io.ErrUnexpectedEOF):
		// A gzip'd capture cut short ends in the decompressor's
		// unexpected EOF rather than in a cut record.
		st.Truncated, st.TruncatedAt = true, rd.Offset()
		if trunc != nil {
			st.TruncatedAt = trunc.Offset
		}
		if !cfg.AllowTruncated {
			return st, fmt.Errorf("read %s: %w: %w", name, ErrTruncated, readErr)
		}
	default:
		return st, fmt.Errorf("read %s: %w", name, readErr)
	}
	return st, nil
}

// addBatch is how many packets Read hands the flow table at once.
const addBatch = 128

// openCapture opens the capture in r: by mapping it when it is a regular
// file, else through the streaming reader.
func openCapture(r io.Reader) (*pcapfile.Reader, error) {
	if f, ok := r.(*os.File); ok {
		return pcapfile.NewFileReader(f)
	}
	return pcapfile.NewReader(r)
}

// maxPacketSecond bounds packet timestamps (2242-03-16). A corrupt
// timestamp far in the future would otherwise make every window up to it
// a NODATA record: billions of them.
const maxPacketSecond = 1 << 33

// floorSeconds converts Unix nanoseconds to whole seconds, rounding down
// also before 1970.
func floorSeconds(ns int64) int64 {
	if ns >= 0 {
		return int64(uint64(ns) / 1e9) // unsigned: no sign fix-up
	}
	s := ns / 1e9
	if ns%1e9 < 0 {
		s--
	}
	return s
}

// captureSeed identifies a capture for derived ids: a hash of its first
// packet (time and bytes). A capture without packets gets a fixed seed.
func captureSeed(p *pcapfile.Packet) []byte {
	h := sha256.New()
	if p != nil {
		var ts [8]byte
		for i := range ts {
			ts[i] = byte(p.Timestamp >> (8 * i))
		}
		h.Write(ts[:])
		h.Write(p.Data[:min(len(p.Data), seedBytes)])
	}
	return h.Sum(nil)
}

// flowIface is what records need about one capture interface.
type flowIface struct {
	res inventory.Resolved
}

// recordBuilder turns closed flow-table entries into records.
type recordBuilder struct {
	ctx    context.Context // ends a run of NODATA windows early
	cfg    ReadConfig
	sink   Sink
	stats  *ReadStats
	seed   []byte
	ifaces []flowIface
	recs   []flow.Record
	nodata []flow.Record // a NODATA run's records, one per interface
	err    error
}

// grow resolves interfaces up to n and registers them with the table.
func (rb *recordBuilder) grow(n int, ifaces []pcapfile.Interface, table *aggregate.Table) {
	for i := len(rb.ifaces); i < n; i++ {
		rb.ifaces = append(rb.ifaces, flowIface{res: rb.cfg.Inventory.Resolve(rb.seed, i, ifaces[i].Name)})
		table.AddInterface(uint32(i))
	}
}

// emit converts one window's batch and hands it to the sink.
func (rb *recordBuilder) emit(window int64, batch []aggregate.Closed) {
	rb.emitChunk(window, batch, true)
}

// emitChunk converts a piece of a window's batch; after the last one
// (done) everything before the window's end has been written.
func (rb *recordBuilder) emitChunk(window int64, batch []aggregate.Closed, done bool) {
	if rb.err != nil {
		return
	}
	if rb.recs == nil {
		rb.recs = make([]flow.Record, 0, recordChunk)
	}
	version := uint8(rb.cfg.Format.Version())
	for i := range batch {
		c := &batch[i]
		if c.Status == flow.LogStatusOK && !rb.cfg.TrafficType.keeps(c.Key.Action) {
			continue
		}
		if len(rb.recs) == recordChunk && !rb.flush() {
			return
		}
		rb.recs = append(rb.recs, flow.Record{})
		buildRecord(&rb.recs[len(rb.recs)-1], c, &rb.ifaces[c.Key.Interface].res, version)
		switch c.Status {
		case flow.LogStatusNoData:
			rb.stats.NoData++
		case flow.LogStatusSkipData:
			rb.stats.SkipData++
		}
	}
	if !done {
		return
	}
	if !rb.flush() {
		return
	}
	if err := rb.sink.Advance(window + rb.cfg.Aggregate.Interval); err != nil {
		rb.err = err
	}
}

// noDataRun is a run of consecutive windows without packets: windows
// from, from+interval, … (windows of them), each with one NODATA record
// per entry of recs, in that order. recs are complete but for Start and
// End, which the writer sets per window.
type noDataRun struct {
	from, windows, interval int64
	recs                    []flow.Record
}

// noDataRunWriter is a Sink that writes a run of NODATA records faster
// than as records one by one (StreamSink renders them from a template).
// The records are the same as those Write would get.
type noDataRunWriter interface {
	writeNoDataRun(run *noDataRun) error
}

// emitNoDataRun hands a run of windows without packets to the sink: in
// one call when the sink can take it, else window by window as records.
func (rb *recordBuilder) emitNoDataRun(from, windows int64, ifaces []uint32) {
	if rb.err != nil || windows <= 0 {
		return
	}
	if !rb.flush() {
		return
	}
	interval := rb.cfg.Aggregate.Interval
	version := uint8(rb.cfg.Format.Version())
	rb.nodata = rb.nodata[:0]
	for _, iface := range ifaces {
		c := aggregate.Closed{Key: flow.Key{Interface: iface}, Status: flow.LogStatusNoData}
		rb.nodata = append(rb.nodata, flow.Record{})
		buildRecord(&rb.nodata[len(rb.nodata)-1], &c, &rb.ifaces[iface].res, version)
	}
	n := uint64(windows) * uint64(len(ifaces))
	if w, ok := rb.sink.(noDataRunWriter); ok {
		run := noDataRun{from: from, windows: windows, interval: interval, recs: rb.nodata}
		if err := w.writeNoDataRun(&run); err != nil {
			rb.err = err
			return
		}
		rb.stats.Records += n
		rb.stats.NoData += n
		if err := rb.sink.Advance(from + windows*interval); err != nil {
			rb.err = err
		}
		return
	}
	// Window by window, as the table's batches were: a sink such as the
	// object writer keeps an object open per period until Advance. A
	// capture whose packets are years apart has a million such windows,
	// minutes of objects to write, and no packet read in between: an
	// interrupt is looked for here, at every window.
	if rb.recs == nil {
		rb.recs = make([]flow.Record, 0, recordChunk)
	}
	for w, end := from, from+windows*interval; w < end; w += interval {
		if err := rb.ctx.Err(); err != nil {
			rb.err = &stoppedError{err: err, before: w}
			return
		}
		for i := range rb.nodata {
			if len(rb.recs) == recordChunk && !rb.flush() {
				return
			}
			rb.recs = append(rb.recs, rb.nodata[i])
			r := &rb.recs[len(rb.recs)-1]
			r.Start, r.End = w, w+interval
		}
		if !rb.flush() {
			return
		}
		if err := rb.sink.Advance(w + interval); err != nil {
			rb.err = err
			return
		}
		rb.stats.NoData += uint64(len(rb.nodata))
	}
}

// stoppedError ends a read interrupted in a run of windows without
// packets: the records of every window before before were written, none
// after.
type stoppedError struct {
	err    error // the context's
	before int64 // Unix seconds
}

func (e *stoppedError) Error() string {
	return fmt.Sprintf("%v: records were written for the windows before %s, none after",
		e.err, time.Unix(e.before, 0).UTC().Format(time.RFC3339))
}

func (e *stoppedError) Unwrap() error { return e.err }

// recordChunk bounds how many records are built before they go to the
// sink. A window can close hundreds of thousands of flows; building all
// their records at once (a flow.Record is ~0.5 KB) cost more in allocation
// and GC than the rest of the read path.
const recordChunk = 256

// flush hands the built records to the sink; false after an error.
func (rb *recordBuilder) flush() bool {
	if len(rb.recs) == 0 {
		return true
	}
	rb.stats.Records += uint64(len(rb.recs))
	err := rb.sink.Write(rb.recs)
	rb.recs = rb.recs[:0]
	if err != nil {
		rb.err = err
		return false
	}
	return true
}

// Fields every OK record has a value for, whatever the source.
const okFields = flow.FieldSet(0) |
	1<<flow.FieldVersion | 1<<flow.FieldAccountID | 1<<flow.FieldInterfaceID |
	1<<flow.FieldSrcAddr | 1<<flow.FieldDstAddr | 1<<flow.FieldSrcPort | 1<<flow.FieldDstPort |
	1<<flow.FieldProtocol | 1<<flow.FieldPackets | 1<<flow.FieldBytes | 1<<flow.FieldStart |
	1<<flow.FieldEnd | 1<<flow.FieldAction | 1<<flow.FieldLogStatus | 1<<flow.FieldVPCID |
	1<<flow.FieldSubnetID | 1<<flow.FieldInstanceID | 1<<flow.FieldTCPFlags | 1<<flow.FieldType |
	1<<flow.FieldPktSrcAddr | 1<<flow.FieldPktDstAddr | 1<<flow.FieldRegion | 1<<flow.FieldAZID

// Fields of NODATA and SKIPDATA records (spec §2).
const statusFields = flow.FieldSet(0) |
	1<<flow.FieldVersion | 1<<flow.FieldAccountID | 1<<flow.FieldInterfaceID |
	1<<flow.FieldStart | 1<<flow.FieldEnd | 1<<flow.FieldLogStatus

// buildRecord fills r from a closed flow-table entry and its interface.
func buildRecord(r *flow.Record, c *aggregate.Closed, ifc *inventory.Resolved, version uint8) {
	r.Version = version
	r.AccountID = ifc.AccountID
	r.InterfaceID = ifc.InterfaceID
	r.Start = c.Counts.Start
	r.End = c.Counts.End
	r.LogStatus = c.Status
	if c.Status != flow.LogStatusOK {
		r.Present = statusFields
		return
	}
	r.Present = okFields
	k := &c.Key
	r.PktSrcAddr, r.PktDstAddr = k.Src, k.Dst
	r.SrcAddr, r.DstAddr = k.Src, k.Dst
	// For IPv4 AWS writes the interface's primary private address on the
	// interface's side of the record, also for NAT and forwarded traffic.
	if ifc.PrimaryIPv4.IsValid() && k.Src.Is4() {
		switch c.Counts.Direction {
		case flow.DirectionIngress:
			r.DstAddr = ifc.PrimaryIPv4
		case flow.DirectionEgress:
			r.SrcAddr = ifc.PrimaryIPv4
		}
	}
	r.SrcPort, r.DstPort = k.SrcPort, k.DstPort
	r.Protocol = k.Protocol
	r.Packets, r.Bytes = c.Counts.Packets, c.Counts.Bytes
	r.Action = k.Action
	r.TCPFlags = c.Counts.TCPFlags
	r.Type = "IPv4"
	if k.Src.Is6() {
		r.Type = "IPv6"
	}
	r.VPCID, r.SubnetID, r.InstanceID = ifc.VPCID, ifc.SubnetID, ifc.InstanceID
	r.Region, r.AZID = ifc.Region, ifc.AZID
	if c.Counts.Direction != flow.DirectionUnknown {
		r.FlowDirection = c.Counts.Direction
		r.Present = r.Present.With(flow.FieldFlowDirection)
	}
}
