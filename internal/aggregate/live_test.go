package aggregate

import (
	"math/rand/v2"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

// TestAddCountsMatchesAdd feeds random streams to one table packet by
// packet and to another as runs of packets of one key and window, the way
// a source that aggregates before the table (eBPF map, capture ring) hands
// them over: both must emit the same batches.
func TestAddCountsMatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	for iter := range 300 {
		data := make([]byte, 1+fuzzRecord*(50+r.IntN(600)))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		for i := 1 + 3; i < len(data); i += fuzzRecord {
			if r.IntN(10) < 8 {
				data[i] = byte(r.IntN(4))
				data[i+1] &^= 3
			}
		}
		cfg, events := decodeFuzz(data)
		// Capacity makes the two differ legitimately: a run counted at
		// its last packet's time may find room that the packets added
		// one by one did not (a window closed in between).
		cfg.MaxFlows = 0

		perPacket := &output{}
		a, err := New(cfg, perPacket.emit(cfg.Interval))
		if err != nil {
			t.Fatal(err)
		}
		batched := &output{}
		b, err := New(cfg, batched.emit(cfg.Interval))
		if err != nil {
			t.Fatal(err)
		}
		a.seed, b.seed = testSeed, testSeed

		for i := 0; i < len(events); {
			ev := events[i]
			if ev.addIface {
				a.AddInterface(ev.key.Interface)
				b.AddInterface(ev.key.Interface)
				i++
				continue
			}
			// A run: following packets of the same key in the same window.
			w := floorDiv(ev.ts, cfg.Interval)
			first, last := ev.ts, ev.ts
			var packets, bytes uint64
			var flags uint8
			dir := flow.DirectionUnknown
			j := i
			for ; j < len(events); j++ {
				e := events[j]
				if e.addIface || e.key != ev.key || floorDiv(e.ts, cfg.Interval) != w {
					break
				}
				a.Add(e.key, e.ts, e.length, e.flags, e.dir)
				first, last = min(first, e.ts), max(last, e.ts)
				packets++
				bytes += uint64(e.length)
				flags |= flow.ReportedTCPFlags(e.flags)
				if dir == flow.DirectionUnknown {
					dir = e.dir
				}
			}
			b.AddCounts(ev.key, first, last, packets, bytes, flags, dir)
			i = j
		}
		a.Flush()
		b.Flush()
		diffOutputs(t, batched, perPacket)
		if sa, sb := a.Stats(), b.Stats(); sa.Packets != sb.Packets || sa.Records != sb.Records || sa.LatePackets != sb.LatePackets {
			t.Fatalf("iteration %d: stats %+v, per packet %+v", iter, sb, sa)
		}
		if t.Failed() {
			t.Fatalf("iteration %d", iter)
		}
	}
}

func TestAddCountsClampsToWindow(t *testing.T) {
	var rec recorder
	tab, err := New(Config{Interval: 60}, rec.emit)
	if err != nil {
		t.Fatal(err)
	}
	k := tcp(v4a, v4b, 1, 2)
	tab.AddCounts(k, 50, 75, 3, 300, 0x12, flow.DirectionEgress) // last beyond the window
	tab.AddCounts(k, 80, 70, 1, 40, 0x01, flow.DirectionIngress) // last before first
	tab.AddCounts(k, 90, 90, 0, 0, 0, 0)                         // nothing
	tab.Flush()
	if len(rec.batches) != 2 {
		t.Fatalf("batches %v", rec.batches)
	}
	c := rec.batches[0][0].Counts
	if c.Packets != 3 || c.Bytes != 300 || c.Start != 50 || c.End != 59 || c.TCPFlags != 0x12 || c.Direction != flow.DirectionEgress {
		t.Errorf("window 0: %+v", c)
	}
	c = rec.batches[1][0].Counts
	if c.Packets != 1 || c.Start != 80 || c.End != 80 || c.TCPFlags != 1 {
		t.Errorf("window 60: %+v", c)
	}
	if p := tab.Stats().Packets; p != 4 {
		t.Errorf("Stats.Packets %d, want 4", p)
	}
}

func TestAddCountsCapacity(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60, MaxFlows: 1}, rec.emit)
	tab.AddCounts(tcp(v4a, v4b, 1, 2), 10, 12, 5, 500, 0, 0)
	tab.AddCounts(tcp(v4a, v4b, 1, 3), 10, 12, 7, 700, 0, 0) // table full
	tab.AddCounts(tcp(v4a, v4b, 1, 2), 13, 14, 1, 100, 0, 0) // held: counts
	tab.Flush()
	b := rec.batches[0]
	if len(b) != 2 || b[0].Status != flow.LogStatusSkipData || b[1].Counts.Packets != 6 {
		t.Fatalf("batch %v", b)
	}
	if st := tab.Stats(); st.SkippedPackets != 7 || st.SkippedFlows != 1 {
		t.Errorf("skipped %d packets, %d flows; want 7, 1", st.SkippedPackets, st.SkippedFlows)
	}
}

func TestAddLost(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60, Lateness: 2}, rec.emit)
	tab.AddInterface(1)
	tab.AddInterface(2)
	tab.Advance(0)
	tab.AddLost(1, 30, 4)
	tab.AddLost(1, 31, 0) // nothing
	tab.Advance(62)
	if len(rec.batches) != 1 {
		t.Fatalf("batches %v", rec.windows)
	}
	b := rec.batches[0]
	if len(b) != 2 || b[0].Key.Interface != 1 || b[0].Status != flow.LogStatusSkipData ||
		b[1].Key.Interface != 2 || b[1].Status != flow.LogStatusNoData {
		t.Fatalf("window 0: %v", b)
	}
	// Lost in a window already emitted: a late batch with SKIPDATA only.
	tab.AddLost(2, 5, 1)
	tab.Advance(122)
	if len(rec.batches) != 3 || rec.windows[1] != 0 || len(rec.batches[1]) != 1 ||
		rec.batches[1][0].Status != flow.LogStatusSkipData || rec.batches[1][0].Key.Interface != 2 {
		t.Fatalf("late: %v %v", rec.windows, rec.batches)
	}
	if st := tab.Stats(); st.LostPackets != 5 || st.SkippedPackets != 0 || st.SkipDataRecords != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestAdvanceClosesWindowsWithoutPackets(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60, Lateness: 2}, rec.emit)
	tab.AddInterface(7)
	tab.Advance(61) // starts the sequence at window 60
	// A packet just before the first Advance's window is not late: it
	// was captured before the agent's clock read, and its window is open.
	tab.Add(tcp(v4a, v4b, 1, 2), 59, 100, 0, 0)
	tab.Advance(121)
	if len(rec.batches) != 1 || rec.windows[0] != 0 {
		t.Fatalf("emitted %v, want window 0 only before 60+60+2", rec.windows)
	}
	tab.Advance(122)
	if len(rec.windows) != 2 || rec.windows[0] != 0 || rec.windows[1] != 60 {
		t.Fatalf("windows %v", rec.windows)
	}
	if b := rec.batches[0]; len(b) != 2 || b[0].Status != flow.LogStatusNoData || b[1].Counts.Packets != 1 {
		t.Errorf("window 0: %v", b)
	}
	// Interface 0 is known from its record on: NODATA for both.
	if b := rec.batches[1]; len(b) != 2 || b[0].Status != flow.LogStatusNoData || b[1].Key.Interface != 7 {
		t.Errorf("window 60: %v", b)
	}
	// Time going back is ignored; a long pause emits every window.
	tab.Advance(10)
	tab.Advance(60*10 + 2)
	if len(rec.windows) != 10 || rec.windows[9] != 540 {
		t.Errorf("windows %v", rec.windows)
	}
	if st := tab.Stats(); st.LatePackets != 0 || st.NoDataRecords != 1+9*2 {
		t.Errorf("stats %+v", st)
	}
	// Flush emits the open window.
	tab.Flush()
	if len(rec.windows) != 11 || rec.windows[10] != 600 {
		t.Errorf("after flush: %v", rec.windows)
	}
}

func TestRemoveInterface(t *testing.T) {
	var rec recorder
	tab, _ := New(Config{Interval: 60, Lateness: 2}, rec.emit)
	for _, i := range []uint32{1, 2, 3} {
		tab.AddInterface(i)
	}
	tab.Advance(0)
	k := tcp(v4a, v4b, 1, 2)
	k.Interface = 2
	tab.Add(k, 10, 100, 0, 0)
	tab.RemoveInterface(2, 20) // records of window 0 are kept
	tab.RemoveInterface(3, 30) // idle: NODATA for window 0, none after
	tab.RemoveInterface(4, 30) // unknown: nothing happens
	tab.RemoveInterface(1, 40)
	tab.AddInterface(1) // cancels the removal
	tab.Advance(60*3 + 2)
	want := [][]string{
		{"if1 0-60 NODATA w0", "if3 0-60 NODATA w0", "if2 10.0.0.1:1>10.0.0.2:2 p6 ACCEPT 10-10 pk1 by100 fl0 - w0"},
		{"if1 60-120 NODATA w60"},
		{"if1 120-180 NODATA w120"},
	}
	if len(rec.batches) != len(want) {
		t.Fatalf("batches %v", rec.batches)
	}
	for i, b := range rec.batches {
		if len(b) != len(want[i]) {
			t.Fatalf("batch %d: %v", i, b)
		}
		for j, r := range b {
			if got := fmtRecord(r); got != want[i][j] {
				t.Errorf("batch %d record %d: %s, want %s", i, j, got, want[i][j])
			}
		}
	}
	// Removing an interface of a window that is already emitted, or
	// before any window, forgets it at once.
	tab.RemoveInterface(1, 5)
	tab.Advance(60*4 + 2)
	if len(rec.batches) != 3 {
		t.Errorf("after removing the last interface: %v", rec.batches[3:])
	}
	empty, _ := New(Config{Interval: 60}, rec.emit)
	empty.AddInterface(9)
	empty.RemoveInterface(9, 100)
	if empty.Stats().Interfaces != 0 {
		t.Error("interface kept by a table without windows")
	}
}

func TestAddCountsNoAllocs(t *testing.T) {
	keys := makeKeys(2000)
	tab, err := New(Config{Interval: 60}, func(_ int64, b []Closed) { sinkRecords += len(b) })
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		tab.AddCounts(k, 10, 12, 3, 300, 0x12, flow.DirectionEgress)
		tab.AddLost(uint32(i%4), 11, 1)
	}
	tab.Advance(11)
	if a := testing.AllocsPerRun(1000, func() {
		tab.AddCounts(keys[5], 11, 13, 2, 200, 0x10, flow.DirectionIngress)
		tab.AddLost(1, 12, 2)
		tab.Advance(13)
	}); a != 0 {
		t.Errorf("AddCounts/AddLost/Advance within a window: %v allocations", a)
	}
}
