package aggregate

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/flowlog/flowlog/flow"
)

// Sinks keep the compiler from dropping work in allocation tests and
// benchmarks.
var (
	sinkStats   Stats
	sinkRecords int
)

// makeKeys returns n distinct keys: TCP flows from n sources, every eighth
// one IPv6, spread over four interfaces.
func makeKeys(n int) []flow.Key {
	keys := make([]flow.Key, n)
	dst4 := netip.MustParseAddr("192.0.2.10")
	dst6 := netip.MustParseAddr("2001:db8::10")
	for i := range keys {
		k := flow.Key{Interface: uint32(i % 4), SrcPort: uint16(i*7 + 1024), DstPort: 443, Protocol: 6, Action: flow.ActionAccept}
		if i%8 == 7 {
			var a [16]byte
			a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
			binary.BigEndian.PutUint32(a[12:], uint32(i))
			k.Src, k.Dst = netip.AddrFrom16(a), dst6
		} else {
			var a [4]byte
			binary.BigEndian.PutUint32(a[:], 0x0a000000|uint32(i))
			k.Src, k.Dst = netip.AddrFrom4(a), dst4
		}
		keys[i] = k
	}
	return keys
}

type runtimeMem struct{ heapAlloc int64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.heapAlloc = int64(s.HeapAlloc)
}

func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(entry{}); s != 64 {
		t.Errorf("entry is %d bytes, want 64 (one cache line; the memory budget counts on it)", s)
	}
}

func TestNoAllocs(t *testing.T) {
	const n = 5000
	keys := makeKeys(3 * n)
	tab, err := New(Config{Interval: 60}, func(_ int64, b []Closed) { sinkRecords += len(b) })
	if err != nil {
		t.Fatal(err)
	}
	tab.AddInterface(0)
	tab.AddInterface(9) // gets NODATA in every window
	// Grow the table to n flows in each of two windows, then close both:
	// entries, index and batch buffers are now sized for the work below.
	for i := range n {
		tab.Add(keys[i], 10, 100, 0x12, flow.DirectionEgress)
	}
	for i := range n {
		tab.Add(keys[n+i], 70, 100, 0x12, flow.DirectionEgress)
	}
	tab.Add(keys[0], 130, 100, 0, 0)

	if a := testing.AllocsPerRun(1000, func() {
		tab.Add(keys[0], 131, 1500, 0x10, flow.DirectionIngress)
	}); a != 0 {
		t.Errorf("Add of an existing flow: %v allocations", a)
	}
	i := 0
	if a := testing.AllocsPerRun(1000, func() {
		i++
		tab.Add(keys[2*n+i], 132, 60, 0x02, 0)
	}); a != 0 {
		t.Errorf("Add of a new flow: %v allocations", a)
	}

	// A whole window of new flows, including closing the previous one
	// (sort, batch, NODATA, emit) and reusing its entries.
	w := int64(180)
	if a := testing.AllocsPerRun(10, func() {
		for j := range n {
			tab.Add(keys[(int(w)+j)%(3*n)], w+5, 100, 0, 0)
		}
		w += 60
	}); a != 0 {
		t.Errorf("a window of %d new flows: %v allocations", n, a)
	}
	// The same through AddBatch, in batches of 100.
	batch := make([]Packet, 100)
	if a := testing.AllocsPerRun(10, func() {
		for j := 0; j < n; j += len(batch) {
			for i := range batch {
				batch[i] = Packet{Key: keys[(int(w)+j+i)%(3*n)], Sec: w + 5, Length: 100}
			}
			tab.AddBatch(batch)
		}
		w += 60
	}); a != 0 {
		t.Errorf("a window of %d new flows through AddBatch: %v allocations", n, a)
	}
	sinkStats = tab.Stats()
	if sinkStats.SkippedPackets != 0 || sinkStats.Active == 0 {
		t.Errorf("stats %+v", sinkStats)
	}
}

// TestMemoryPerFlow holds 100 k flows and measures the live heap they take
// (after GC, so the figure is exact up to the test runner's own small
// allocations). The budget is 128 bytes per active flow.
func TestMemoryPerFlow(t *testing.T) {
	const n = 100_000
	keys := makeKeys(n)
	perFlow := measureFill(t, keys)
	t.Logf("%.1f bytes per flow at %d flows", perFlow, n)
	if perFlow > 128 {
		t.Errorf("%.1f bytes per flow, budget 128", perFlow)
	}
	if min := float64(unsafe.Sizeof(entry{})); perFlow < min {
		t.Errorf("%.1f bytes per flow is less than an entry (%v): the measurement is broken", perFlow, min)
	}
}

// measureFill returns the heap bytes per flow of a table holding keys.
func measureFill(t testing.TB, keys []flow.Key) float64 {
	var before, after runtimeMem
	before.read()
	tab, err := New(Config{Interval: 600}, func(int64, []Closed) {})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		tab.Add(k, 1_700_000_000, 100, 0, 0)
	}
	after.read()
	if s := tab.Stats(); s.Active != len(keys) {
		t.Fatalf("%d flows held, want %d", s.Active, len(keys))
	}
	runtime.KeepAlive(tab)
	return float64(after.heapAlloc-before.heapAlloc) / float64(len(keys))
}

// TestMemoryAtClose measures what closing a window of 400 k records adds
// to the live heap of the table that holds them, as flowlog read closes it
// (in chunks of 256 records): the sort's 24-byte item per record, its
// bounded scratch and one chunk. Sorting through a second array of items
// would add 24 bytes more per record.
func TestMemoryAtClose(t *testing.T) {
	const n = 400_000
	keys := makeKeys(n)
	var filled, closing runtimeMem
	tab, err := New(Config{Interval: 600}, func(int64, []Closed) {})
	if err != nil {
		t.Fatal(err)
	}
	tab.EmitChunks(256, func(_ int64, chunk []Closed, _ bool) {
		if closing.heapAlloc == 0 {
			closing.read()
		}
	})
	for _, k := range keys {
		tab.Add(k, 1_700_000_000, 100, 0, 0)
	}
	filled.read()
	tab.Flush()
	runtime.KeepAlive(tab)
	perFlow := float64(closing.heapAlloc-filled.heapAlloc) / n
	t.Logf("closing the window adds %.1f bytes per record", perFlow)
	if perFlow > 32 {
		t.Errorf("closing the window adds %.1f bytes per record, budget 32", perFlow)
	}
	if perFlow < float64(unsafe.Sizeof(sortItem{})) {
		t.Errorf("%.1f bytes per record is less than a sort item: the measurement is broken", perFlow)
	}
}

func BenchmarkTableMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			keys := makeKeys(n)
			var perFlow float64
			for b.Loop() {
				perFlow = measureFill(b, keys)
			}
			b.ReportMetric(perFlow, "B/flow")
		})
	}
}

// reportRate reports packets per second of wall time, and the CPU time of
// the benchmark's thread per packet (cpu-ns/op), which other processes on
// a shared machine do not inflate.
func reportRate(b *testing.B, start time.Time, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "packets/s")
	if c := threadCPU() - cpu; c > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkAddExisting adds packets of flows already held, round robin over
// the flows (the cache-unfriendly order: real traffic comes in bursts).
func BenchmarkAddExisting(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			keys := makeKeys(n)
			tab, _ := New(Config{Interval: 600}, func(int64, []Closed) {})
			for _, k := range keys {
				tab.Add(k, 1_700_000_000, 100, 0, 0)
			}
			i := 0
			defer lockThread()()
			start, cpu := time.Now(), threadCPU()
			for b.Loop() {
				tab.Add(keys[i], 1_700_000_001, 1500, 0x10, flow.DirectionEgress)
				i++
				if i == n {
					i = 0
				}
			}
			reportRate(b, start, cpu)
			sinkStats = tab.Stats()
		})
	}
}

// BenchmarkAddNewFlows adds one packet per flow, 100 k flows per 60 s
// window: every Add starts a record, and every 100 k packets a window
// closes (sorted batch, emit, entries reused), which is included.
func BenchmarkAddNewFlows(b *testing.B) {
	const n = 100_000
	keys := makeKeys(n)
	tab, _ := New(Config{Interval: 60}, func(_ int64, batch []Closed) { sinkRecords += len(batch) })
	ts := int64(1_700_000_000/60*60 + 5)
	i := 0
	defer lockThread()()
	start, cpu := time.Now(), threadCPU()
	for b.Loop() {
		tab.Add(keys[i], ts, 100, 0x02, 0)
		i++
		if i == n {
			i = 0
			ts += 60
		}
	}
	reportRate(b, start, cpu)
	sinkStats = tab.Stats()
}

// BenchmarkAddExistingIPv6 is BenchmarkAddExisting/flows=1 for an IPv6
// flow (addresses take the slower As16 path).
func BenchmarkAddExistingIPv6(b *testing.B) {
	k := tcp(v6a, v6b, 40000, 443)
	tab, _ := New(Config{Interval: 600}, func(int64, []Closed) {})
	defer lockThread()()
	start, cpu := time.Now(), threadCPU()
	for b.Loop() {
		tab.Add(k, 1_700_000_001, 1500, 0x10, flow.DirectionEgress)
	}
	reportRate(b, start, cpu)
	sinkStats = tab.Stats()
}

// BenchmarkAddRandom adds packets of 400 k held flows in a random order
// (the generated benchmark capture's pattern: each packet's entry and
// index slot are cache misses), one Add at a time and with AddBatch.
func BenchmarkAddRandom(b *testing.B) {
	const n, stream = 400_000, 1 << 20
	keys := makeKeys(n)
	order := make([]Packet, stream)
	x := uint64(1)
	for i := range order {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		order[i] = Packet{Key: keys[x%n], Sec: 1_700_000_001, Length: 1500, RawTCPFlags: 0x10}
	}
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batched), func(b *testing.B) {
			tab, _ := New(Config{Interval: 600}, func(int64, []Closed) {})
			for _, k := range keys {
				tab.Add(k, 1_700_000_000, 100, 0, 0)
			}
			defer lockThread()()
			start, cpu := time.Now(), threadCPU()
			i := 0
			for b.Loop() {
				if batched {
					tab.AddBatch(order[i : i+128])
				} else {
					for j := i; j < i+128; j++ {
						p := &order[j]
						tab.Add(p.Key, p.Sec, p.Length, p.RawTCPFlags, p.Dir)
					}
				}
				if i += 128; i == stream {
					i = 0
				}
			}
			b.StopTimer()
			reportRate(b, start, cpu)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/128, "ns/packet")
			sinkStats = tab.Stats()
		})
	}
}
