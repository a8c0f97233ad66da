package aggregate

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// packet is one Add call.
type packet struct {
	key    flow.Key
	ts     int64
	length uint32
	flags  uint8
	dir    flow.Direction
}

// event is one call of an input stream: a packet, or AddInterface when
// addIface is set.
type event struct {
	packet
	addIface bool
}

// output is what a table emitted: full copies of batches with any OK or
// SKIPDATA record, and runs of identical all-NODATA batches compressed
// (captures spanning years emit millions of them).
type output struct {
	items []outItem
}

type outItem struct {
	window int64
	recs   []Closed // nil for a NODATA run
	// NODATA run: windows window, window+step, … last, each with exactly
	// one NODATA record per interface in ifaces.
	last   int64
	step   int64
	ifaces []uint32
}

func (o *output) emit(step int64) func(int64, []Closed) {
	return func(w int64, batch []Closed) {
		allNoData := len(batch) > 0
		for _, r := range batch {
			if r.Status != flow.LogStatusNoData {
				allNoData = false
				break
			}
		}
		if allNoData {
			for _, r := range batch {
				// Field by field: comparing whole records is the slowest part
				// of a capture with millions of empty windows.
				k, c := &r.Key, &r.Counts
				if r.Window != w || c.Start != w || c.End != w+step || k.Src.IsValid() || k.Dst.IsValid() ||
					k.SrcPort != 0 || k.DstPort != 0 || k.Protocol != 0 || k.Action != 0 ||
					c.Packets != 0 || c.Bytes != 0 || c.TCPFlags != 0 || c.Direction != 0 {
					panic(fmt.Sprintf("window %d: NODATA record %+v", w, r))
				}
			}
			if n := len(o.items); n > 0 {
				last := &o.items[n-1]
				if last.recs == nil && last.last+step == w && len(last.ifaces) == len(batch) {
					same := true
					for i, r := range batch {
						same = same && last.ifaces[i] == r.Key.Interface
					}
					if same {
						last.last = w
						return
					}
				}
			}
			ifaces := make([]uint32, len(batch))
			for i, r := range batch {
				ifaces[i] = r.Key.Interface
			}
			o.items = append(o.items, outItem{window: w, last: w, step: step, ifaces: ifaces})
			return
		}
		o.items = append(o.items, outItem{window: w, recs: slices.Clone(batch)})
	}
}

// records returns every emitted record of a status, NODATA runs expanded
// only when count is false.
func (o *output) batches() [][]Closed {
	var out [][]Closed
	for _, it := range o.items {
		if it.recs != nil {
			out = append(out, it.recs)
			continue
		}
		for w := it.window; w <= it.last; w += it.step {
			b := make([]Closed, len(it.ifaces))
			for i, iface := range it.ifaces {
				b[i] = Closed{Key: flow.Key{Interface: iface}, Counts: flow.Counts{Start: w, End: w + it.step},
					Status: flow.LogStatusNoData, Window: w}
			}
			out = append(out, b)
		}
	}
	return out
}

// count returns the number of records per status and the number of batches.
func (o *output) count() (ok, noData, skipData, batches int) {
	for _, it := range o.items {
		if it.recs == nil {
			n := int((it.last-it.window)/it.step) + 1
			batches += n
			noData += n * len(it.ifaces)
			continue
		}
		batches++
		for _, r := range it.recs {
			switch r.Status {
			case flow.LogStatusOK:
				ok++
			case flow.LogStatusNoData:
				noData++
			case flow.LogStatusSkipData:
				skipData++
			}
		}
	}
	return
}

func (o *output) String() string {
	var b strings.Builder
	for _, it := range o.items {
		if it.recs == nil {
			fmt.Fprintf(&b, "NODATA windows %d..%d step %d ifaces %v\n", it.window, it.last, it.step, it.ifaces)
			continue
		}
		fmt.Fprintf(&b, "window %d:\n", it.window)
		for _, r := range it.recs {
			fmt.Fprintf(&b, "  %s\n", fmtRecord(r))
		}
	}
	return b.String()
}

func fmtRecord(r Closed) string {
	k, c := r.Key, r.Counts
	if r.Status != flow.LogStatusOK {
		return fmt.Sprintf("if%d %d-%d %s w%d", k.Interface, c.Start, c.End, r.Status, r.Window)
	}
	return fmt.Sprintf("if%d %s:%d>%s:%d p%d %s %d-%d pk%d by%d fl%d %s w%d", k.Interface, k.Src, k.SrcPort, k.Dst, k.DstPort,
		k.Protocol, k.Action, c.Start, c.End, c.Packets, c.Bytes, c.TCPFlags, c.Direction, r.Window)
}

// diffOutputs fails t with the first difference between two outputs.
func diffOutputs(t testing.TB, got, want *output) {
	t.Helper()
	for i := range max(len(got.items), len(want.items)) {
		if i >= len(got.items) || i >= len(want.items) {
			t.Fatalf("output has %d items, want %d\ngot:\n%s\nwant:\n%s", len(got.items), len(want.items),
				tail(got.String()), tail(want.String()))
		}
		g, w := got.items[i], want.items[i]
		if g.window != w.window || g.last != w.last || !slices.Equal(g.ifaces, w.ifaces) || !slices.Equal(g.recs, w.recs) {
			gi := output{items: []outItem{g}}
			wi := output{items: []outItem{w}}
			t.Fatalf("item %d differs\ngot:\n%s\nwant:\n%s", i, gi.String(), wi.String())
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// compareClosed is rule 13, written independently of the table's sort:
// start, interface, NODATA/SKIPDATA first, then the key in netip order.
func compareClosed(a, b Closed) int {
	rank := func(r Closed) int {
		if r.Status == flow.LogStatusOK {
			return 1
		}
		return 0
	}
	return cmp.Or(
		cmp.Compare(a.Counts.Start, b.Counts.Start),
		cmp.Compare(a.Key.Interface, b.Key.Interface),
		cmp.Compare(rank(a), rank(b)),
		a.Key.Src.Compare(b.Key.Src),
		a.Key.Dst.Compare(b.Key.Dst),
		cmp.Compare(a.Key.SrcPort, b.Key.SrcPort),
		cmp.Compare(a.Key.DstPort, b.Key.DstPort),
		cmp.Compare(a.Key.Protocol, b.Key.Protocol),
		cmp.Compare(a.Key.Action, b.Key.Action),
	)
}

// reference is a deliberately naive flow table with the documented
// semantics: Go maps keyed by flow.Key, flow.Counts.Add, a loop over every
// window, and a plain sort with compareClosed.
type reference struct {
	interval, lateness int64
	maxFlows           int
	out                *output
	emit               func(int64, []Closed)

	known        map[uint32]bool
	wm           int64
	haveWM       bool
	started      bool
	emitFrom     int64
	closedBefore int64
	haveClosed   bool
	held         int
	windows      map[int64]*refWindow
}

type refWindow struct {
	late  bool
	flows map[flow.Key]flow.Counts
	skips map[uint32]bool
}

func newReference(cfg Config) *reference {
	r := &reference{
		interval: cfg.Interval, lateness: cfg.lateness(), maxFlows: cfg.maxFlows(),
		out: &output{}, known: map[uint32]bool{}, windows: map[int64]*refWindow{},
	}
	r.emit = r.out.emit(cfg.Interval)
	return r
}

func (r *reference) floor(ts int64) int64 {
	w := ts / r.interval * r.interval
	if w > ts {
		w -= r.interval
	}
	return w
}

// closed reports whether window w is closed at the current watermark.
func (r *reference) closed(w int64) bool {
	return (r.haveWM && w+r.interval+r.lateness <= r.wm) || (r.haveClosed && w < r.closedBefore)
}

func (r *reference) add(p packet) {
	ts := p.ts
	if !r.haveWM || ts > r.wm {
		r.wm, r.haveWM = ts, true
		if r.started {
			// The first window still open: everything before it closes.
			from := r.emitFrom
			for from+r.interval+r.lateness <= r.wm {
				from += r.interval
			}
			if from > r.emitFrom {
				r.close(from)
			}
		}
	}
	w := r.floor(ts)
	rw := r.windows[w]
	if rw == nil {
		rw = &refWindow{late: r.closed(w), flows: map[flow.Key]flow.Counts{}, skips: map[uint32]bool{}}
		r.windows[w] = rw
		if !rw.late && (!r.started || w < r.emitFrom) {
			r.started, r.emitFrom = true, w
		}
	}
	c, ok := rw.flows[p.key]
	if !ok && r.held >= r.maxFlows {
		rw.skips[p.key.Interface] = true
		return
	}
	if !ok {
		r.held++
	}
	c = c.Add(ts, uint64(p.length), flow.ReportedTCPFlags(p.flags))
	if c.Direction == flow.DirectionUnknown {
		c.Direction = p.dir
	}
	rw.flows[p.key] = c
}

func (r *reference) flush() {
	if !r.started {
		return
	}
	r.close(r.floor(r.wm) + r.interval)
}

// close emits the late windows, then every window of the regular sequence
// before until.
func (r *reference) close(until int64) {
	for _, w := range slices.Sorted(maps.Keys(r.windows)) {
		if rw := r.windows[w]; rw.late {
			r.emitWindow(w, rw)
		}
	}
	if r.started {
		var gap []Closed // NODATA of an empty window, for every known interface
		for iface := range r.known {
			gap = append(gap, Closed{Key: flow.Key{Interface: iface}, Status: flow.LogStatusNoData})
		}
		slices.SortFunc(gap, compareClosed)
		for w := r.emitFrom; w < until; w += r.interval {
			if rw := r.windows[w]; rw != nil {
				r.emitWindow(w, rw)
				// Its interfaces are known from now on.
				gap = gap[:0]
				for iface := range r.known {
					gap = append(gap, Closed{Key: flow.Key{Interface: iface}, Status: flow.LogStatusNoData})
				}
				slices.SortFunc(gap, compareClosed)
				continue
			}
			if len(gap) > 0 {
				for i := range gap {
					gap[i].Counts = flow.Counts{Start: w, End: w + r.interval}
					gap[i].Window = w
				}
				r.emit(w, gap)
			}
		}
		r.emitFrom = max(r.emitFrom, until)
	}
	if !r.haveClosed || until > r.closedBefore {
		r.closedBefore, r.haveClosed = until, true
	}
}

func (r *reference) emitWindow(w int64, rw *refWindow) {
	delete(r.windows, w)
	var batch []Closed
	seen := map[uint32]bool{}
	for k, c := range rw.flows {
		batch = append(batch, Closed{Key: k, Counts: c, Status: flow.LogStatusOK, Window: w})
		seen[k.Interface] = true
		r.held--
	}
	status := func(iface uint32, s flow.LogStatus) Closed {
		return Closed{Key: flow.Key{Interface: iface}, Counts: flow.Counts{Start: w, End: w + r.interval}, Status: s, Window: w}
	}
	for iface := range rw.skips {
		batch = append(batch, status(iface, flow.LogStatusSkipData))
		seen[iface] = true
	}
	if !rw.late {
		for iface := range r.known {
			if !seen[iface] {
				batch = append(batch, status(iface, flow.LogStatusNoData))
			}
		}
	}
	for iface := range seen {
		r.known[iface] = true
	}
	if len(batch) == 0 {
		return
	}
	slices.SortFunc(batch, compareClosed)
	r.emit(w, batch)
}

// run feeds events to a new table and to the reference and returns both
// outputs.
func run(t testing.TB, cfg Config, events []event) (got, want *output, tab *Table) {
	t.Helper()
	got = &output{}
	tab, err := New(cfg, got.emit(cfg.Interval))
	if err != nil {
		t.Fatal(err)
	}
	// A fixed seed makes SkippedFlows, an estimate, repeatable.
	tab.seed = testSeed
	ref := newReference(cfg)
	for _, ev := range events {
		if ev.addIface {
			tab.AddInterface(ev.key.Interface)
			ref.known[ev.key.Interface] = true
			continue
		}
		tab.Add(ev.key, ev.ts, ev.length, ev.flags, ev.dir)
		ref.add(ev.packet)
	}
	tab.Flush()
	ref.flush()
	checkBatched(t, cfg, events, got, tab)
	return got, ref.out, tab
}

// checkBatched feeds events to another table through AddBatch, in batches
// of 1 to 37 packets (cut at every AddInterface), that emits in chunks of
// 3 records (EmitChunks) and empty windows as NODATA runs (EmitNoDataRuns),
// and requires the output and counters of Add.
func checkBatched(t testing.TB, cfg Config, events []event, want *output, wantTab *Table) {
	t.Helper()
	got := &output{}
	tab, err := New(cfg, func(int64, []Closed) { t.Fatal("emit called despite EmitChunks") })
	if err != nil {
		t.Fatal(err)
	}
	tab.seed = testSeed
	emitWindow := got.emit(cfg.Interval)
	var pending []Closed
	pendingWindow, open := int64(0), false
	tab.EmitChunks(3, func(w int64, chunk []Closed, done bool) {
		if open && w != pendingWindow {
			t.Fatalf("chunk of window %d while window %d is not done", w, pendingWindow)
		}
		if len(chunk) > 3 || !done && len(chunk) != 3 {
			t.Fatalf("chunk of %d records (done %v), want 3 (at most 3 when done)", len(chunk), done)
		}
		pending = append(pending, chunk...)
		pendingWindow, open = w, !done
		if done {
			emitWindow(w, pending)
			pending = pending[:0]
		}
	})
	// NODATA runs, expanded here into the batches Add's table emits one
	// window at a time.
	tab.EmitNoDataRuns(func(from, windows int64, ifaces []uint32) {
		if open {
			t.Fatalf("NODATA run from %d while window %d is not done", from, pendingWindow)
		}
		if windows < 1 || len(ifaces) == 0 {
			t.Fatalf("NODATA run of %d windows, %d interfaces", windows, len(ifaces))
		}
		for k := range windows {
			w := from + k*tab.interval
			b := make([]Closed, len(ifaces))
			for i, iface := range ifaces {
				b[i] = Closed{Key: flow.Key{Interface: iface}, Counts: flow.Counts{Start: w, End: w + tab.interval},
					Status: flow.LogStatusNoData, Window: w}
			}
			emitWindow(w, b)
		}
	})
	var batch []Packet
	size := 1
	flush := func() {
		tab.AddBatch(batch)
		batch = batch[:0]
		size = size%37 + 1
	}
	for _, ev := range events {
		if ev.addIface {
			flush()
			tab.AddInterface(ev.key.Interface)
			continue
		}
		batch = append(batch, Packet{Key: ev.key, Sec: ev.ts, Length: ev.length, RawTCPFlags: ev.flags, Dir: ev.dir})
		if len(batch) == size {
			flush()
		}
	}
	flush()
	tab.Flush()
	if open {
		t.Errorf("window %d never done", pendingWindow)
	}
	if g, w := got.String(), want.String(); g != w {
		t.Errorf("AddBatch differs from Add:\nAddBatch: %s\nAdd:      %s", tail(g), tail(w))
	}
	if g, w := tab.Stats(), wantTab.Stats(); g != w {
		t.Errorf("AddBatch stats %+v, Add stats %+v", g, w)
	}
}

// testSeed is a fixed hash seed; like random ones, its words have about half
// their bits set (the hash multiplies key words XORed with them).
var testSeed = [6]uint64{0x9e3779b97f4a7c15, 0xbf58476d1ce4e5b9, 0x94d049bb133111eb, 0xa0761d6478bd642f, 0xe7037ed1a0b428db, 0x8ebc6af09c88c6e3}

var (
	v4a = netip.MustParseAddr("10.0.0.1")
	v4b = netip.MustParseAddr("10.0.0.2")
	v4c = netip.MustParseAddr("192.168.1.1")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8::2")
	v6m = netip.MustParseAddr("::ffff:10.0.0.1") // sorts after every IPv4 address
)

// tcp returns the key of a TCP flow on interface 0, accepted.
func tcp(src, dst netip.Addr, sport, dport uint16) flow.Key {
	return flow.Key{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Protocol: 6, Action: flow.ActionAccept}
}

func pkt(k flow.Key, ts int64) event {
	return event{packet: packet{key: k, ts: ts, length: 100}}
}

func iface(i uint32) event {
	return event{packet: packet{key: flow.Key{Interface: i}}, addIface: true}
}
