package aggregate

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string // substring of the error, "" for valid
	}{
		{Config{Interval: 60}, ""},
		{Config{Interval: 600, MaxFlows: 1, Lateness: NoLateness}, ""},
		{Config{Interval: 600, MaxFlows: MaxMaxFlows, Lateness: MaxLateness}, ""},
		{DefaultConfig(), ""},
		{Config{}, "invalid interval 0: must be 60 or 600"},
		{Config{Interval: 300}, "invalid interval 300: must be 60 or 600"},
		{Config{Interval: -60}, "must be 60 or 600"},
		{Config{Interval: 60, MaxFlows: -1}, "invalid max-flows -1"},
		{Config{Interval: 60, MaxFlows: MaxMaxFlows + 1}, "invalid max-flows 16777216: must be between 1 and 16777215"},
		{Config{Interval: 60, Lateness: -2}, "invalid lateness -2"},
		{Config{Interval: 60, Lateness: MaxLateness + 1}, "invalid lateness 604801"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one containing %q", tc.cfg, err, tc.want)
		}
		if tc.want != "" {
			if _, err := New(tc.cfg, func(int64, []Closed) {}); err == nil {
				t.Errorf("New(%+v) accepted an invalid config", tc.cfg)
			}
		}
	}
	if _, err := New(Config{Interval: 60}, nil); err == nil || !strings.Contains(err.Error(), "emit") {
		t.Errorf("New with nil emit: %v, want an error naming emit", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Interval: 60}
	if c.maxFlows() != DefaultMaxFlows || c.lateness() != DefaultLateness {
		t.Errorf("zero config: max flows %d, lateness %d", c.maxFlows(), c.lateness())
	}
	c.Lateness = NoLateness
	if c.lateness() != 0 {
		t.Errorf("NoLateness gives lateness %d", c.lateness())
	}
}

// onlyOK returns the OK records of all batches, in order.
func onlyOK(o *output) []Closed {
	var out []Closed
	for _, b := range o.batches() {
		for _, r := range b {
			if r.Status == flow.LogStatusOK {
				out = append(out, r)
			}
		}
	}
	return out
}

func TestWindowAlignment(t *testing.T) {
	k := tcp(v4a, v4b, 1000, 80)
	for _, interval := range []int64{60, 600} {
		cfg := Config{Interval: interval}
		// Seconds at both edges of windows, including before the epoch.
		secs := []int64{-1, 0, interval - 1, interval, 2*interval - 1, 1_000_003, 1_000_003 + interval}
		var events []event
		for _, s := range secs {
			events = append(events, pkt(k, s))
		}
		got, want, _ := run(t, cfg, events)
		diffOutputs(t, got, want)
		recs := onlyOK(got)
		type span struct{ window, start, end int64 }
		var spans []span
		for _, r := range recs {
			spans = append(spans, span{r.Window, r.Counts.Start, r.Counts.End})
		}
		base := 1_000_003 / interval * interval
		wantSpans := []span{
			{-interval, -1, -1},
			{0, 0, interval - 1},
			{interval, interval, 2*interval - 1},
			{base, 1_000_003, 1_000_003},
			{base + interval, 1_000_003 + interval, 1_000_003 + interval},
		}
		if !slices.Equal(spans, wantSpans) {
			t.Errorf("interval %d: windows %v, want %v", interval, spans, wantSpans)
		}
		for _, r := range recs {
			if r.Window%interval != 0 {
				t.Errorf("interval %d: window %d not aligned", interval, r.Window)
			}
		}
	}
}

func TestCountsStartEnd(t *testing.T) {
	k := tcp(v4a, v4b, 1000, 80)
	events := []event{
		{packet: packet{key: k, ts: 130, length: 60}},
		{packet: packet{key: k, ts: 125, length: 1500}}, // earlier, in the same window
		{packet: packet{key: k, ts: 179, length: 40}},
		{packet: packet{key: k, ts: 140, length: 52}},
	}
	got, want, tab := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
	recs := onlyOK(got)
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1:\n%s", len(recs), got)
	}
	c := recs[0].Counts
	if c.Packets != 4 || c.Bytes != 60+1500+40+52 || c.Start != 125 || c.End != 179 || recs[0].Window != 120 {
		t.Errorf("counts %+v window %d", c, recs[0].Window)
	}
	if recs[0].Key != k {
		t.Errorf("key %+v, want %+v", recs[0].Key, k)
	}
	if s := tab.Stats(); s.Packets != 4 || s.Flows != 1 || s.Records != 1 || s.Active != 0 || s.PeakFlows != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestTCPFlags(t *testing.T) {
	const (
		fin, syn, rst, psh, ack, urg, ece, cwr = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
	)
	for _, tc := range []struct {
		name string
		raw  []uint8
		want uint8
	}{
		{"syn-ack", []uint8{syn | ack}, 18},
		{"syn then fin", []uint8{syn, fin | ack}, 3},
		{"syn, syn-ack, fin", []uint8{syn, syn | ack, fin | ack}, 19},
		{"plain ack", []uint8{ack}, 0},
		{"ack and psh", []uint8{ack, psh | ack, ack}, 0},
		{"rst", []uint8{rst | ack}, 4},
		{"urg ece cwr ignored", []uint8{urg | ece | cwr | psh}, 0},
		{"ack before syn in the record", []uint8{ack, syn}, 2},
	} {
		var events []event
		for i, raw := range tc.raw {
			events = append(events, event{packet: packet{key: tcp(v4a, v4b, 1, 2), ts: int64(i), length: 40, flags: raw}})
		}
		got, want, _ := run(t, Config{Interval: 60}, events)
		diffOutputs(t, got, want)
		recs := onlyOK(got)
		if len(recs) != 1 || recs[0].Counts.TCPFlags != tc.want {
			t.Errorf("%s: records %v, want one with tcp-flags %d", tc.name, recs, tc.want)
		}
	}
}

func TestKeysMakeSeparateRecords(t *testing.T) {
	fwd := tcp(v4a, v4b, 40000, 443)
	rev := tcp(v4b, v4a, 443, 40000)
	rejected := fwd
	rejected.Action = flow.ActionReject
	other := fwd
	other.Interface = 1
	udp := fwd
	udp.Protocol = 17
	events := []event{pkt(fwd, 10), pkt(rev, 10), pkt(rejected, 11), pkt(fwd, 12), pkt(other, 13), pkt(udp, 14)}
	got, want, _ := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
	recs := onlyOK(got)
	var keys []flow.Key
	for _, r := range recs {
		keys = append(keys, r.Key)
	}
	// Sorted by start first: fwd and rev start at 10, fwd (10.0.0.1) first.
	wantKeys := []flow.Key{fwd, rev, rejected, other, udp}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("keys\n%v\nwant\n%v", keys, wantKeys)
	}
	if recs[0].Counts.Packets != 2 || recs[2].Counts.Packets != 1 {
		t.Errorf("accepted %d packets, rejected %d", recs[0].Counts.Packets, recs[2].Counts.Packets)
	}
}

func TestDirectionFirstKnown(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	events := []event{
		{packet: packet{key: k, ts: 1}},
		{packet: packet{key: k, ts: 2, dir: flow.DirectionEgress}},
		{packet: packet{key: k, ts: 3, dir: flow.DirectionIngress}},
		// Next window: a new record starts unknown again.
		{packet: packet{key: k, ts: 70}},
		{packet: packet{key: k, ts: 71, dir: flow.DirectionIngress}},
	}
	got, want, _ := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
	recs := onlyOK(got)
	if len(recs) != 2 || recs[0].Counts.Direction != flow.DirectionEgress || recs[1].Counts.Direction != flow.DirectionIngress {
		t.Errorf("records %v", recs)
	}
}

// recorder keeps every batch with the number of Add calls made before it.
type recorder struct {
	adds    int
	windows []int64
	at      []int // Add calls made when each batch was emitted
	batches [][]Closed
}

func (r *recorder) emit(w int64, b []Closed) {
	r.windows = append(r.windows, w)
	r.at = append(r.at, r.adds)
	r.batches = append(r.batches, slices.Clone(b))
}

func (r *recorder) add(tab *Table, k flow.Key, ts int64) {
	r.adds++
	tab.Add(k, ts, 100, 0, flow.DirectionUnknown)
}

func TestWindowClosesAfterLateness(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	var rec recorder
	tab, err := New(Config{Interval: 60, Lateness: 5}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	rec.add(tab, k, 10)
	rec.add(tab, k, 61)
	rec.add(tab, k, 64) // window 0 still open
	rec.add(tab, k, 30) // out of order, within lateness: counts in window 0
	if len(rec.batches) != 0 {
		t.Fatalf("emitted %v before the watermark reached 65", rec.windows)
	}
	rec.add(tab, k, 65) // closes window 0 before counting in window 60
	if len(rec.batches) != 1 || rec.windows[0] != 0 || rec.at[0] != 5 {
		t.Fatalf("batches %v at %v, want window 0 at the 5th packet", rec.windows, rec.at)
	}
	c := rec.batches[0][0].Counts
	if c.Packets != 2 || c.Start != 10 || c.End != 30 {
		t.Errorf("window 0 counts %+v", c)
	}
	if tab.Stats().LatePackets != 0 {
		t.Errorf("late packets %d, want 0", tab.Stats().LatePackets)
	}
	tab.Flush()
	if len(rec.batches) != 2 || rec.windows[1] != 60 || rec.batches[1][0].Counts.Packets != 3 {
		t.Errorf("after flush: %v %v", rec.windows, rec.batches)
	}

	// NoLateness: a window closes with the first packet of the next one.
	rec = recorder{}
	tab, _ = New(Config{Interval: 60, Lateness: NoLateness}, rec.emit)
	rec.add(tab, k, 59)
	rec.add(tab, k, 60)
	if len(rec.batches) != 1 || rec.windows[0] != 0 {
		t.Errorf("NoLateness: batches %v", rec.windows)
	}
}

func TestLatePackets(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	k1 := k
	k1.Interface = 1
	var rec recorder
	tab, _ := New(Config{Interval: 60, Lateness: 5}, rec.emit)
	tab.AddInterface(0)
	tab.AddInterface(1)
	rec.add(tab, k, 10)
	rec.add(tab, k1, 20)
	rec.add(tab, k, 65) // closes window 0
	rec.add(tab, k, 15) // late: window 0 was emitted
	rec.add(tab, k, 16) // late, same record
	rec.add(tab, k1, 70)
	if len(rec.batches) != 1 {
		t.Fatalf("batches %v", rec.windows)
	}
	if s := tab.Stats(); s.LatePackets != 2 || s.Active != 3 {
		t.Errorf("stats %+v, want 2 late packets, 3 records held", s)
	}
	rec.add(tab, k, 125) // closes window 60: the late batch goes first
	if !slices.Equal(rec.windows, []int64{0, 0, 60}) {
		t.Fatalf("batch windows %v, want [0 0 60]", rec.windows)
	}
	late := rec.batches[1]
	if len(late) != 1 || late[0].Status != flow.LogStatusOK || late[0].Counts.Packets != 2 ||
		late[0].Counts.Start != 15 || late[0].Counts.End != 16 || late[0].Window != 0 {
		t.Errorf("late batch %v, want one OK record of 2 packets, no NODATA for interface 1", late)
	}
	tab.Flush()

	// The same stream through the reference.
	events := []event{iface(0), iface(1), pkt(k, 10), pkt(k1, 20), pkt(k, 65), pkt(k, 15), pkt(k, 16), pkt(k1, 70), pkt(k, 125)}
	got, want, _ := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
}

func TestLateBeforeFirstWindow(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	events := []event{iface(0), iface(1), pkt(k, 1000), pkt(k, 100), pkt(k, 1100), pkt(k, 50)}
	got, want, tab := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
	// Window 60 (second 100) was closed when it arrived: a late batch
	// without NODATA, and the NODATA range stays 960..1080.
	_, noData, _, _ := got.count()
	if noData != 1+2+1 {
		t.Errorf("%d NODATA records, want 4:\n%s", noData, got)
	}
	if s := tab.Stats(); s.LatePackets != 2 {
		t.Errorf("late packets %d, want 2", s.LatePackets)
	}
}

func TestNoDataGaps(t *testing.T) {
	a := tcp(v4a, v4b, 1, 2)
	b := a
	b.Interface = 2
	events := []event{
		iface(0), iface(1), iface(2),
		pkt(a, 605), pkt(b, 1300), pkt(a, 1210),
		pkt(a, 6000), // windows 1800..5400 are empty
	}
	got, want, tab := run(t, Config{Interval: 600}, events)
	diffOutputs(t, got, want)
	ok, noData, skipData, batches := got.count()
	// Windows 600..6000: 10 windows, 3 interfaces: 30 slots; OK in
	// (600,0) (1200,0) (1200,2) (6000,0).
	if ok != 4 || noData != 30-4 || skipData != 0 || batches != 10 {
		t.Errorf("ok %d nodata %d skipdata %d batches %d:\n%s", ok, noData, skipData, batches, got)
	}
	bs := got.batches()
	if first, last := bs[0][0].Window, bs[len(bs)-1][0].Window; first != 600 || last != 6000 {
		t.Errorf("NODATA range %d..%d, want 600..6000", first, last)
	}
	// Window 1200: interface 0 OK (start 1210), 1 NODATA (start 1200),
	// 2 OK (start 1300): NODATA sorts first by start.
	w1200 := bs[1]
	var order []string
	for _, r := range w1200 {
		order = append(order, fmtRecord(r))
	}
	if len(w1200) != 3 || w1200[0].Status != flow.LogStatusNoData || w1200[0].Key.Interface != 1 ||
		w1200[1].Key.Interface != 0 || w1200[2].Key.Interface != 2 {
		t.Errorf("window 1200 order:\n%s", strings.Join(order, "\n"))
	}
	nd := w1200[0]
	if nd.Counts.Start != 1200 || nd.Counts.End != 1800 || nd.Key.Src.IsValid() || nd.Counts.Packets != 0 {
		t.Errorf("NODATA record %+v", nd)
	}
	if s := tab.Stats(); s.NoDataRecords != uint64(noData) || s.Records != 4 || s.Windows != 10 {
		t.Errorf("stats %+v", s)
	}
}

func TestNoDataHugeGap(t *testing.T) {
	// 23 years of 600 s windows between two packets, like the nDPI mix.
	const start = 946_739_298
	const end = 1_690_000_000
	k := tcp(v4a, v4b, 1, 2)
	var batches, records int
	var lastWindow int64 = -1
	var maxCap int
	tab, _ := New(Config{Interval: 600}, func(w int64, b []Closed) {
		batches++
		records += len(b)
		if w <= lastWindow {
			t.Fatalf("window %d after %d", w, lastWindow)
		}
		lastWindow = w
		maxCap = max(maxCap, cap(b))
	})
	tab.AddInterface(0)
	tab.AddInterface(1)
	var before, after runtimeMem
	before.read()
	tab.Add(k, start, 100, 0, 0)
	tab.Add(k, end, 100, 0, 0)
	tab.Flush()
	after.read()
	windows := int((end/600 - start/600) + 1)
	if batches != windows || records != 2*windows {
		t.Errorf("%d batches, %d records; want %d and %d", batches, records, windows, 2*windows)
	}
	if s := tab.Stats(); s.NoDataRecords != uint64(2*windows-2) || s.Records != 2 {
		t.Errorf("stats %+v", s)
	}
	if maxCap > 8 {
		t.Errorf("batch capacity grew to %d for two interfaces", maxCap)
	}
	if grown := after.heapAlloc - before.heapAlloc; grown > 1<<20 {
		t.Errorf("heap grew by %d bytes over %d empty windows", grown, windows)
	}
}

func TestInterfacesAddedLaterAndImplicit(t *testing.T) {
	a := tcp(v4a, v4b, 1, 2)
	b := a
	b.Interface = 7 // never added: known once its window closes
	events := []event{
		iface(0),
		pkt(a, 10), pkt(b, 11),
		pkt(a, 70),
		iface(3), // window 0 is closed already: no NODATA there
		pkt(a, 130),
		pkt(a, 250),
	}
	got, want, tab := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
	var nodata []string
	for _, bt := range got.batches() {
		for _, r := range bt {
			if r.Status == flow.LogStatusNoData {
				nodata = append(nodata, fmtRecord(r))
			}
		}
	}
	wantND := []string{
		"if3 60-120 NODATA w60", "if7 60-120 NODATA w60",
		"if3 120-180 NODATA w120", "if7 120-180 NODATA w120",
		"if0 180-240 NODATA w180", "if3 180-240 NODATA w180", "if7 180-240 NODATA w180",
		"if3 240-300 NODATA w240", "if7 240-300 NODATA w240",
	}
	if !slices.Equal(nodata, wantND) {
		t.Errorf("NODATA records\n%s\nwant\n%s", strings.Join(nodata, "\n"), strings.Join(wantND, "\n"))
	}
	if tab.Stats().Interfaces != 3 {
		t.Errorf("%d interfaces known, want 3", tab.Stats().Interfaces)
	}
	// AddInterface twice is harmless.
	tab.AddInterface(3)
	if tab.Stats().Interfaces != 3 {
		t.Errorf("duplicate AddInterface changed the count")
	}
}

func TestSkipData(t *testing.T) {
	a := tcp(v4a, v4b, 1, 2)
	b := tcp(v4a, v4b, 1, 3)
	c := tcp(v4a, v4b, 1, 4)
	d := tcp(v4a, v4b, 1, 5)
	d.Interface = 1
	e := d
	e.Interface = 2
	events := []event{
		iface(0), iface(1), iface(2), iface(3),
		pkt(a, 1), pkt(b, 2),
		pkt(c, 3), pkt(c, 4), pkt(c, 5), // table full: skipped
		pkt(a, 6), pkt(b, 7), // held flows keep counting
		pkt(d, 8), // interface 1 only has skipped packets
		pkt(e, 9), pkt(e, 9),
		pkt(a, 70),
	}
	got, want, tab := run(t, Config{Interval: 60, MaxFlows: 2}, events)
	diffOutputs(t, got, want)
	bs := got.batches()
	var w0 []string
	for _, r := range bs[0] {
		w0 = append(w0, fmtRecord(r))
	}
	wantW0 := []string{
		"if0 0-60 SKIPDATA w0",
		"if1 0-60 SKIPDATA w0",
		"if2 0-60 SKIPDATA w0",
		"if3 0-60 NODATA w0",
		"if0 10.0.0.1:1>10.0.0.2:2 p6 ACCEPT 1-6 pk2 by200 fl0 - w0",
		"if0 10.0.0.1:1>10.0.0.2:3 p6 ACCEPT 2-7 pk2 by200 fl0 - w0",
	}
	if !slices.Equal(w0, wantW0) {
		t.Errorf("window 0\n%s\nwant\n%s", strings.Join(w0, "\n"), strings.Join(wantW0, "\n"))
	}
	s := tab.Stats()
	if s.SkippedPackets != 6 || s.SkippedFlows != 3 || s.SkipDataRecords != 3 || s.PeakFlows != 2 {
		t.Errorf("stats %+v, want 6 skipped packets of 3 flows, 3 SKIPDATA records", s)
	}
	// Window 60 had room again: no SKIPDATA.
	if _, _, skip, _ := got.count(); skip != 3 {
		t.Errorf("%d SKIPDATA records, want 3", skip)
	}
}

func TestCapacityReuse(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60, MaxFlows: 3}, rec.emit)
	keys := func(base uint16) []flow.Key {
		return []flow.Key{tcp(v4a, v4b, base, 1), tcp(v4a, v4b, base+1, 1), tcp(v4a, v4b, base+2, 1)}
	}
	for w := int64(0); w < 50; w++ {
		for i, k := range keys(uint16(w * 3)) {
			// Each window's flows arrive after the previous window closed
			// (seconds 5..7 of the window, lateness 5).
			tab.Add(k, w*60+5+int64(i), 10, 0, 0)
		}
	}
	tab.Flush()
	s := tab.Stats()
	if s.SkippedPackets != 0 || s.Records != 150 || s.PeakFlows != 3 {
		t.Errorf("stats %+v", s)
	}
	if tab.highWater > 3 || len(tab.chunks) != 1 {
		t.Errorf("%d entries allocated for a capacity of 3", tab.highWater)
	}

	// Inside the lateness both windows are held: the new window's flows
	// find the table full until the old window closes.
	rec = recorder{}
	tab, _ = New(Config{Interval: 60, MaxFlows: 3}, rec.emit)
	for i, k := range keys(0) {
		tab.Add(k, int64(i), 10, 0, 0)
	}
	for i, k := range keys(10) {
		tab.Add(k, 61+int64(i), 10, 0, 0) // window 0 is still open
	}
	tab.Add(keys(10)[0], 65, 10, 0, 0) // closes window 0, then fits
	tab.Flush()
	if s := tab.Stats(); s.SkippedPackets != 3 || s.Records != 4 {
		t.Errorf("stats %+v, want 3 skipped, 4 records", s)
	}
	if len(rec.batches) != 2 || rec.batches[1][0].Status != flow.LogStatusSkipData || rec.batches[1][1].Counts.Start != 65 {
		t.Errorf("window 60 batch %v", rec.batches)
	}
}

func TestSortOrder(t *testing.T) {
	mk := func(ifc uint32, src, dst netip.Addr, sp, dp uint16, proto uint8, act flow.Action) flow.Key {
		return flow.Key{Interface: ifc, Src: src, Dst: dst, SrcPort: sp, DstPort: dp, Protocol: proto, Action: act}
	}
	// The wanted order, built by hand per rule 13.
	ordered := []struct {
		k  flow.Key
		ts int64
	}{
		{mk(0, netip.Addr{}, netip.Addr{}, 0, 0, 0, 0), 0}, // no addresses sort first
		{mk(0, v4a, v4b, 5, 1, 6, flow.ActionAccept), 0},
		{mk(0, v4a, v4b, 5, 1, 6, flow.ActionReject), 0},
		{mk(0, v4a, v4b, 5, 1, 17, flow.ActionAccept), 0},
		{mk(0, v4a, v4b, 5, 2, 6, flow.ActionAccept), 0},
		{mk(0, v4a, v4b, 6, 0, 6, flow.ActionAccept), 0},
		{mk(0, v4a, v4c, 0, 0, 1, flow.ActionAccept), 0},
		{mk(0, v4a, v6a, 0, 0, 1, flow.ActionAccept), 0},
		{mk(0, v4b, v4a, 0, 0, 1, flow.ActionAccept), 0},
		{mk(0, v4c, v4a, 0, 0, 1, flow.ActionAccept), 0},
		{mk(0, v6m, v4a, 0, 0, 1, flow.ActionAccept), 0}, // IPv4-mapped IPv6 after all IPv4
		{mk(0, v6a, v6b, 0, 0, 58, flow.ActionAccept), 0},
		{mk(0, v6b, v6a, 0, 0, 58, flow.ActionAccept), 0},
		{mk(1, v4a, v4b, 0, 0, 1, flow.ActionAccept), 0},
		{mk(3, v4a, v4b, 0, 0, 1, flow.ActionAccept), 0},
		{mk(0, v4c, v4b, 0, 0, 1, flow.ActionAccept), 1}, // a later start sorts after everything
		{mk(1, v4b, v4a, 0, 0, 1, flow.ActionAccept), 59},
	}
	// Interfaces 2 (NODATA) and 3 (SKIPDATA with one held record) sort
	// at start 0 before the OK records of their interface.
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		perm := r.Perm(len(ordered))
		events := []event{iface(0), iface(1), iface(2), iface(3)}
		for _, i := range perm {
			events = append(events, event{packet: packet{key: ordered[i].k, ts: ordered[i].ts, length: 1}})
		}
		skipped := mk(3, v4b, v4b, 9, 9, 6, flow.ActionAccept)
		events = append(events, event{packet: packet{key: skipped, ts: 30, length: 1}})
		got, want, _ := run(t, Config{Interval: 60, MaxFlows: len(ordered)}, events)
		diffOutputs(t, got, want)
		bs := got.batches()
		if len(bs) != 1 {
			t.Fatalf("%d batches", len(bs))
		}
		var keys []string
		for _, rec := range bs[0] {
			keys = append(keys, fmtRecord(rec))
		}
		var wantKeys []string
		for i, o := range ordered {
			if i == 14 {
				wantKeys = append(wantKeys, "if2 0-60 NODATA w0", "if3 0-60 SKIPDATA w0")
			}
			wantKeys = append(wantKeys, fmtRecord(Closed{Key: o.k, Counts: flow.Counts{Packets: 1, Bytes: 1, Start: o.ts, End: o.ts},
				Status: flow.LogStatusOK}))
		}
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("order\n%s\nwant\n%s", strings.Join(keys, "\n"), strings.Join(wantKeys, "\n"))
		}
		if !slices.IsSortedFunc(bs[0], compareClosed) {
			t.Fatalf("batch not sorted per rule 13")
		}
	}
}

func TestTimeClamp(t *testing.T) {
	// Seconds beyond ±2^62 are clamped so that window arithmetic cannot
	// overflow. (A capture spanning that much time would also emit NODATA
	// for every window in between, so each end gets a table of its own.)
	k := tcp(v4a, v4b, 1, 2)
	for _, tc := range []struct {
		ts   [2]int64
		want int64
	}{
		{[2]int64{math.MinInt64, math.MinInt64 + 1}, -timeLimit},
		{[2]int64{math.MaxInt64 - 1, math.MaxInt64}, timeLimit},
	} {
		var rec recorder
		tab, _ := New(Config{Interval: 60}, rec.emit)
		tab.Add(k, tc.ts[0], 1, 0, 0)
		tab.Add(k, tc.ts[1], 1, 0, 0)
		tab.Flush()
		if len(rec.batches) != 1 || len(rec.batches[0]) != 1 {
			t.Fatalf("batches %v", rec.batches)
		}
		r := rec.batches[0][0]
		if r.Counts.Start != tc.want || r.Counts.End != tc.want || r.Counts.Packets != 2 || r.Window > tc.want || r.Window+60 <= tc.want {
			t.Errorf("record %+v, want start and end %d", r, tc.want)
		}
	}
}

func TestFlushEmpty(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60}, rec.emit)
	tab.AddInterface(0)
	tab.Flush()
	if len(rec.batches) != 0 {
		t.Errorf("flush of an empty table emitted %v", rec.batches)
	}
}

func TestFlushThenContinue(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	events := []event{iface(0), iface(1), pkt(k, 10), pkt(k, 70)}
	got := &output{}
	tab, _ := New(Config{Interval: 60}, got.emit(60))
	ref := newReference(Config{Interval: 60})
	feed := func(evs []event) {
		for _, ev := range evs {
			if ev.addIface {
				tab.AddInterface(ev.key.Interface)
				ref.known[ev.key.Interface] = true
			} else {
				tab.Add(ev.key, ev.ts, ev.length, ev.flags, ev.dir)
				ref.add(ev.packet)
			}
		}
		tab.Flush()
		ref.flush()
	}
	feed(events)
	feed([]event{pkt(k, 75), pkt(k, 300)}) // 75 is late now; 120..240 NODATA
	diffOutputs(t, got, ref.out)
	if s := tab.Stats(); s.LatePackets != 1 {
		t.Errorf("late packets %d, want 1", s.LatePackets)
	}
}

// TestManyLateWindows makes more late windows than window ids exist: the
// late ones are emitted early and nothing is lost.
func TestManyLateWindows(t *testing.T) {
	k := tcp(v4a, v4b, 1, 2)
	var packets uint64
	var batches int
	tab, _ := New(Config{Interval: 60}, func(w int64, b []Closed) {
		batches++
		for _, r := range b {
			packets += r.Counts.Packets
		}
	})
	const n = maxWindows + 1000
	tab.Add(k, 60*(n+10), 1, 0, 0)
	for i := int64(0); i < n; i++ {
		tab.Add(k, i*60, 1, 0, 0)
	}
	tab.Flush()
	if packets != n+1 || batches != n+1 {
		t.Errorf("%d packets in %d batches, want %d in %d", packets, batches, n+1, n+1)
	}
	if s := tab.Stats(); s.LatePackets != n {
		t.Errorf("late packets %d, want %d", s.LatePackets, n)
	}
}

// TestSkippedFlowsEstimate loses many distinct flows, twice each: the
// estimate counts each once and stays close to the truth.
func TestSkippedFlowsEstimate(t *testing.T) {
	const n = 60_000
	keys := makeKeys(n + 1)
	tab, _ := New(Config{Interval: 600, MaxFlows: 1}, func(int64, []Closed) {})
	tab.seed = testSeed
	for round := range 2 {
		for _, k := range keys {
			tab.Add(k, 600+int64(round), 40, 0, 0)
		}
	}
	s := tab.Stats()
	if s.SkippedPackets != 2*n {
		t.Fatalf("skipped %d packets, want %d", s.SkippedPackets, 2*n)
	}
	// HyperLogLog with 4096 registers: standard error 1.6%; 5% is three of it.
	if s.SkippedFlows < n*95/100 || s.SkippedFlows > n*105/100 {
		t.Errorf("estimated %d skipped flows, want %d ± 5%%", s.SkippedFlows, n)
	}
}

// TestSortLargeWindows sorts windows big enough for the radix sort, with
// keys that tie on the sort key's 128 bits (IPv6 sources with many flows)
// and on nothing, against the reference's plain sort.
func TestSortLargeWindows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	addrs := []netip.Addr{v4a, v4b, v4c, v6a, v6b, v6m, {}}
	for i := range 40 {
		var a [16]byte
		a[0], a[15] = 0x20, byte(i)
		addrs = append(addrs, netip.AddrFrom16(a), netip.AddrFrom4([4]byte{10, byte(i), 0, 1}))
	}
	var events []event
	for range 3 {
		for range 20_000 {
			k := flow.Key{
				Interface: uint32(r.IntN(5)) * 1000,
				Src:       addrs[r.IntN(len(addrs))], Dst: addrs[r.IntN(len(addrs))],
				SrcPort: uint16(r.IntN(4)), DstPort: uint16(r.IntN(3)),
				Protocol: []uint8{6, 17, 1}[r.IntN(3)], Action: flow.Action(r.IntN(3)),
			}
			events = append(events, event{packet: packet{key: k, ts: int64(r.IntN(600)), length: 1}})
		}
		events = append(events, iface(2500)) // a NODATA interface between the others
	}
	got, want, tab := run(t, Config{Interval: 600}, events)
	diffOutputs(t, got, want)
	if s := tab.Stats(); s.Records < 10_000 {
		t.Fatalf("only %d records: the radix sort was not exercised", s.Records)
	}
}

// TestSortHugeBuckets sorts windows whose records mostly share the sort
// key's top bits (one start second, one interface): buckets beyond the
// radix sort's scratch are split in place first. The sources are IPv4
// addresses over two /16s (the split's byte varies), and IPv6 addresses of
// one /64 (the bytes after the bucket bits are all equal, so the split
// moves on to lower ones), against the reference's plain sort.
func TestSortHugeBuckets(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var events []event
	for i := range 2 * maxScratch {
		k := tcp(netip.AddrFrom4([4]byte{10, byte(i & 1), byte(r.IntN(256)), byte(r.IntN(256))}), v4b, uint16(r.IntN(8)), 80)
		events = append(events, event{packet: packet{key: k, ts: 7, length: 1}})
	}
	for range maxScratch + maxScratch/2 {
		var a [16]byte
		a[0], a[1], a[14], a[15] = 0x20, 0x01, byte(r.IntN(256)), byte(r.IntN(256))
		k := tcp(netip.AddrFrom16(a), v6b, uint16(r.IntN(4)), 443)
		events = append(events, event{packet: packet{key: k, ts: 600 + 9, length: 1}})
	}
	got, want, tab := run(t, Config{Interval: 600}, events)
	diffOutputs(t, got, want)
	if s := tab.Stats(); s.Records < maxScratch*2 {
		t.Fatalf("only %d records: no bucket was larger than the scratch", s.Records)
	}
}

// TestBucketOf checks that the bucket collectRecords files a record under
// is the top of its sort key, for every start offset and the ranks around
// each bucket boundary.
func TestBucketOf(t *testing.T) {
	for first := range uint16(1024) {
		for _, rank := range []uint16{0, 1, 1<<14 - 1, 1 << 14, 1<<15 + 3, 1<<16 - 1} {
			e := entry{first: first, fam: famV6 | famV4<<2}
			e.src.hi, e.src.lo = ^uint64(0), ^uint64(0)
			hi, _ := sortKey(&e, rank)
			if got, want := bucketOf(&e, rank), hi>>(64-bucketBits); got != want {
				t.Fatalf("first %d rank %d: bucket %#x, key starts %#x", first, rank, got, want)
			}
		}
	}
}

// TestSortManyInterfaces has more interfaces than the sort key's 16-bit
// rank holds: the sort falls back to comparing entries.
func TestSortManyInterfaces(t *testing.T) {
	var events []event
	for i := range 70_000 {
		events = append(events, iface(uint32(i)))
	}
	r := rand.New(rand.NewPCG(8, 9))
	for range 2000 {
		k := tcp(v4a, v4b, uint16(r.IntN(50)), 80)
		k.Interface = uint32(r.IntN(100)) * 700
		events = append(events, event{packet: packet{key: k, ts: int64(r.IntN(60)), length: 1}})
	}
	got, want, _ := run(t, Config{Interval: 60}, events)
	diffOutputs(t, got, want)
}
