package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlog/flowlog/bench/internal/gen"
	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/aggregate"
	"github.com/flowlog/flowlog/internal/capture/pcapfile"
	"github.com/flowlog/flowlog/internal/decode"
	"github.com/flowlog/flowlog/internal/inventory"
	"github.com/flowlog/flowlog/internal/pipeline"
	"github.com/flowlog/flowlog/internal/policy"
)

// The generated capture of the benchmarks; the defaults are design.md's
// benchmark capture (5 M packets, 200 k flows).
var (
	genPackets = flag.Int("gen.packets", 5_000_000, "packets in the generated capture")
	genFlows   = flag.Int("gen.flows", 200_000, "conversations in the generated capture")
	genV6      = flag.Float64("gen.v6", 0.3, "fraction of IPv6 conversations in the generated capture")
	genSeed    = flag.Uint64("gen.seed", 1, "seed of the generated capture")
)

// Sink variables keep the compiler from discarding benchmarked work.
var (
	sinkRecords uint64
	sinkPackets uint64
	sinkLength  uint64
)

func benchGenConfig() gen.Config {
	return gen.Config{
		Packets:  *genPackets,
		Flows:    *genFlows,
		IPv6:     *genV6,
		Seed:     *genSeed,
		Duration: 600 * time.Second,
	}
}

// repoRoot is the directory holding go.mod, found upwards from the test's
// working directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// largestCorpusCapture is the biggest pcap or pcapng file of the shared
// corpus.
func largestCorpusCapture(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(repoRoot(tb), "..", "shared", "corpora", "pcap")
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Skipf("no capture corpus beside the repository: %v", err)
	}
	var best string
	var bestSize int64 = -1
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".pcap") && !strings.HasSuffix(name, ".pcapng") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			tb.Fatal(err)
		}
		if fi.Size() > bestSize {
			best, bestSize = filepath.Join(dir, name), fi.Size()
		}
	}
	if best == "" {
		tb.Skipf("no capture in %s", dir)
	}
	return best
}

// generatedCapture returns the path of the benchmark capture under out/,
// writing it first if it is not there (gen.Config.FileName keeps a stale
// file from being reused).
func generatedCapture(tb testing.TB, cfg gen.Config) string {
	tb.Helper()
	path := filepath.Join("out", cfg.FileName())
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if err := os.MkdirAll("out", 0o755); err != nil {
		tb.Fatal(err)
	}
	began := time.Now()
	st, err := gen.WriteFile(path, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("generated %s: %d packets, %d unidirectional flows in %v", path, st.Packets, st.Keys, time.Since(began).Round(time.Millisecond))
	return path
}

// readConfig is what `flowlog read` uses by default.
func readConfig(tb testing.TB) pipeline.ReadConfig {
	tb.Helper()
	inv, err := inventory.New(nil, inventory.Overrides{})
	if err != nil {
		tb.Fatal(err)
	}
	return pipeline.ReadConfig{
		Format:      flow.DefaultFormat(),
		Aggregate:   aggregate.DefaultConfig(),
		TrafficType: pipeline.TrafficAll,
		Exclusions:  policy.DefaultExclusions(),
		Inventory:   inv,
	}
}

// discardSink counts records and keeps nothing.
type discardSink struct{ records uint64 }

func (s *discardSink) Write(recs []flow.Record) error { s.records += uint64(len(recs)); return nil }
func (s *discardSink) Advance(int64) error            { return nil }
func (s *discardSink) Close() error                   { return nil }

// meter measures heap allocations (count and bytes) and process CPU time
// between start and stop.
type meter struct {
	before    runtime.MemStats
	cpu       int64
	cpuUsed   int64  // set by stop
	bytesUsed uint64 // set by stop
}

func (m *meter) start() {
	runtime.ReadMemStats(&m.before)
	m.cpu = processCPUTime()
}

// stop returns the number of allocations since start.
func (m *meter) stop() uint64 {
	m.cpuUsed = processCPUTime() - m.cpu
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	m.bytesUsed = after.TotalAlloc - m.before.TotalAlloc
	return after.Mallocs - m.before.Mallocs
}

// reportPackets reports packet throughput and allocations per packet for
// b.N passes over packets packets each: per second of wall time (pkts/s)
// and per second of the process's CPU time (pkts/cpu-s), which other work
// on a shared machine does not dilute. Pinned to one core with GOMAXPROCS
// 1, the two agree on a quiet machine. Allocations are counted (allocs/pkt)
// and weighed (allocB/pkt): work per window or per record shows up in the
// bytes even when the count per packet is near zero.
func reportPackets(b *testing.B, packets uint64, m *meter, allocs uint64) {
	total := float64(packets) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/total, "ns/pkt")
	if m.cpuUsed > 0 {
		b.ReportMetric(total/(float64(m.cpuUsed)/1e9), "pkts/cpu-s")
	}
	b.ReportMetric(float64(allocs)/total, "allocs/pkt")
	b.ReportMetric(float64(m.bytesUsed)/total, "allocB/pkt")
}

// benchRead runs pipeline.Read b.N times over the capture open returns.
func benchRead(b *testing.B, open func() (reader io.Reader, done func()), newSink func() pipeline.Sink) {
	cfg := readConfig(b)
	ctx := context.Background()
	var st pipeline.ReadStats
	var m meter
	b.ReportAllocs()
	b.ResetTimer()
	m.start()
	for range b.N {
		r, done := open()
		var err error
		st, err = pipeline.Read(ctx, r, "benchmark capture", cfg, newSink())
		done()
		if err != nil {
			b.Fatal(err)
		}
		sinkRecords += st.Records
	}
	allocs := m.stop()
	b.StopTimer()
	reportPackets(b, st.Packets, &m, allocs)
	// Records (NODATA included) cost per record, not per packet; a capture
	// spanning many windows pays for each of them.
	b.ReportMetric(float64(st.Records), "records/op")
	b.ReportMetric(float64(st.NoData), "nodata/op")
}

// BenchmarkReadLargestCorpus reads the largest capture of the shared corpus
// from memory through the whole read pipeline (default format, exclusions,
// 600 s windows) into a sink that discards the records.
func BenchmarkReadLargestCorpus(b *testing.B) {
	path := largestCorpusCapture(b)
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("capture %s (%d bytes)", filepath.Base(path), len(data))
	b.SetBytes(int64(len(data)))
	benchRead(b, func() (io.Reader, func()) {
		return bytes.NewReader(data), func() {}
	}, func() pipeline.Sink { return &discardSink{} })
}

// BenchmarkReadGenerated reads the generated 5 M packet capture from its
// file (in the page cache after the first pass) through the whole read
// pipeline: into a sink that discards the records, and into the text
// renderer of standard output writing to /dev/null (what `flowlog read
// capture > /dev/null` does).
func BenchmarkReadGenerated(b *testing.B) {
	path := generatedCapture(b, benchGenConfig())
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	open := func() (io.Reader, func()) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		return f, func() { f.Close() }
	}
	b.Run("sink=discard", func(b *testing.B) {
		b.SetBytes(fi.Size())
		benchRead(b, open, func() pipeline.Sink { return &discardSink{} })
	})
	b.Run("sink=text", func(b *testing.B) {
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer devNull.Close()
		b.SetBytes(fi.Size())
		benchRead(b, open, func() pipeline.Sink {
			return pipeline.NewStreamSink(devNull, flow.DefaultFormat(), false, true)
		})
	})
}

// BenchmarkPcapNext reads the generated capture's records with the pcap
// reader and nothing else: the floor under every read-path number
// (design.md: 11.9 M packets/s for reading record headers in Go).
func BenchmarkPcapNext(b *testing.B) {
	path := generatedCapture(b, benchGenConfig())
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	var m meter
	var packets uint64
	b.ReportAllocs()
	b.ResetTimer()
	m.start()
	for range b.N {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		rd, err := pcapfile.NewReader(f)
		if err != nil {
			b.Fatal(err)
		}
		var pkt pcapfile.Packet
		packets = 0
		for {
			if err := rd.Next(&pkt); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			packets++
		}
		f.Close()
		sinkPackets = packets
	}
	allocs := m.stop()
	b.StopTimer()
	reportPackets(b, packets, &m, allocs)
}

// frameSet is a capture held in memory, decoded once for the benchmarks
// that exclude decoding.
type frameSet struct {
	frames  *gen.Frames
	stats   gen.Stats
	keys    []flow.Key
	seconds []int64
	lengths []uint32
	flags   []uint8
}

// framesOf generates cfg into memory and pre-decodes every frame.
func framesOf(tb testing.TB, cfg gen.Config) *frameSet {
	tb.Helper()
	fs, err := loadFrames(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return fs
}

func loadFrames(cfg gen.Config) (*frameSet, error) {
	frames, st, err := gen.InMemory(cfg)
	if err != nil {
		return nil, err
	}
	fs := &frameSet{
		frames:  frames,
		stats:   st,
		keys:    make([]flow.Key, frames.Len()),
		seconds: make([]int64, frames.Len()),
		lengths: make([]uint32, frames.Len()),
		flags:   make([]uint8, frames.Len()),
	}
	var dp decode.Packet
	for i := range frames.Len() {
		if err := decode.Decode(decode.LinkEthernet, frames.Frame(i), &dp); err != nil {
			return nil, fmt.Errorf("decode generated frame %d: %w", i, err)
		}
		fs.keys[i] = flow.Key{Src: dp.Src, Dst: dp.Dst, SrcPort: dp.SrcPort, DstPort: dp.DstPort, Protocol: dp.Protocol, Action: flow.ActionAccept}
		fs.seconds[i] = frames.Times[i] / 1e9
		fs.lengths[i] = dp.Length
		fs.flags[i] = dp.TCPFlags
	}
	return fs, nil
}

// benchFrames is the in-memory copy of the benchmark capture, built once
// per test binary: generating and decoding 5 M frames takes seconds.
var benchFrames = sync.OnceValues(func() (*frameSet, error) {
	return loadFrames(benchGenConfig())
})

func newTable(tb testing.TB, emit func(int64, []aggregate.Closed)) *aggregate.Table {
	tb.Helper()
	table, err := aggregate.New(aggregate.DefaultConfig(), emit)
	if err != nil {
		tb.Fatal(err)
	}
	table.AddInterface(0)
	return table
}

// decodeAggregate runs frames [0, n) through decode and the flow table
// the way pipeline.Read does (without exclusions and record building),
// with timestamps shifted by shift seconds.
func decodeAggregate(fs *frameSet, table *aggregate.Table, shift int64) {
	var dp decode.Packet
	frames := fs.frames
	for i := range frames.Len() {
		if decode.Decode(decode.LinkEthernet, frames.Frame(i), &dp) != nil {
			continue
		}
		table.Add(flow.Key{
			Src:      dp.Src,
			Dst:      dp.Dst,
			SrcPort:  dp.SrcPort,
			DstPort:  dp.DstPort,
			Protocol: dp.Protocol,
			Action:   flow.ActionAccept,
		}, frames.Times[i]/1e9+shift, dp.Length, dp.TCPFlags, dp.Direction)
	}
}

// BenchmarkDecodeAggregate measures the per-packet work without I/O, on
// the benchmark capture held in memory: decoding alone, the flow table
// alone (on pre-decoded keys), and both as pipeline.Read does them.
func BenchmarkDecodeAggregate(b *testing.B) {
	fs, err := benchFrames()
	if err != nil {
		b.Fatal(err)
	}
	packets := uint64(fs.frames.Len())
	var m meter

	b.Run("stage=decode", func(b *testing.B) {
		var dp decode.Packet
		b.ReportAllocs()
		b.ResetTimer()
		m.start()
		for range b.N {
			var length uint64
			for i := range fs.frames.Len() {
				if decode.Decode(decode.LinkEthernet, fs.frames.Frame(i), &dp) == nil {
					length += uint64(dp.Length)
				}
			}
			sinkLength = length
		}
		allocs := m.stop()
		b.StopTimer()
		reportPackets(b, packets, &m, allocs)
	})

	b.Run("stage=aggregate", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		m.start()
		for range b.N {
			var records uint64
			table := newTable(b, func(_ int64, batch []aggregate.Closed) { records += uint64(len(batch)) })
			for i := range fs.keys {
				table.Add(fs.keys[i], fs.seconds[i], fs.lengths[i], fs.flags[i], flow.DirectionUnknown)
			}
			table.Flush()
			sinkRecords = records
		}
		allocs := m.stop()
		b.StopTimer()
		reportPackets(b, packets, &m, allocs)
	})

	b.Run("stage=decode+aggregate", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		m.start()
		for range b.N {
			var records uint64
			table := newTable(b, func(_ int64, batch []aggregate.Closed) { records += uint64(len(batch)) })
			decodeAggregate(fs, table, 0)
			table.Flush()
			sinkRecords = records
		}
		allocs := m.stop()
		b.StopTimer()
		reportPackets(b, packets, &m, allocs)
	})
}

// TestReadPathNoAllocsPerPacket holds decode + flow table to zero
// allocations per packet once the table has grown to its working size:
// packets of known flows, and whole new windows of flows that reuse the
// entries of closed ones.
func TestReadPathNoAllocsPerPacket(t *testing.T) {
	fs := framesOf(t, gen.Config{Packets: 50_000, Flows: 2_000, IPv6: 0.3, Seed: 3, Duration: 600 * time.Second})
	var records uint64
	table := newTable(t, func(_ int64, batch []aggregate.Closed) { records += uint64(len(batch)) })

	t.Run("known flows", func(t *testing.T) {
		decodeAggregate(fs, table, 0) // grow the table to the capture's flows
		before := table.Stats()
		allocs := testing.AllocsPerRun(5, func() { decodeAggregate(fs, table, 0) })
		after := table.Stats()
		if got := after.Packets - before.Packets; got != 6*fs.stats.Packets {
			t.Fatalf("table counted %d packets in 6 passes, want %d", got, 6*fs.stats.Packets)
		}
		if after.Flows != before.Flows {
			t.Fatalf("repeating the packets of one window started %d new flows", after.Flows-before.Flows)
		}
		if allocs != 0 {
			t.Errorf("%v allocations per pass of %d packets of known flows (%.4f per packet), want 0",
				allocs, fs.stats.Packets, allocs/float64(fs.stats.Packets))
		}
	})

	t.Run("new windows", func(t *testing.T) {
		// Every pass moves the capture two windows on, so the previous
		// window closes and every flow starts again in a new one.
		const step = 2 * 600
		shift := int64(step)
		pass := func() {
			decodeAggregate(fs, table, shift)
			shift += step
		}
		pass()
		pass()
		before := table.Stats()
		recordsBefore := records
		allocs := testing.AllocsPerRun(5, pass)
		after := table.Stats()
		if got := after.Flows - before.Flows; got != 6*fs.stats.Keys {
			t.Fatalf("6 passes in new windows started %d flows, want %d", got, 6*fs.stats.Keys)
		}
		if records == recordsBefore {
			t.Fatal("no window closed")
		}
		if allocs != 0 {
			t.Errorf("%v allocations per pass of %d packets in a new window (%.4f per packet), want 0",
				allocs, fs.stats.Packets, allocs/float64(fs.stats.Packets))
		}
	})
}

// TestReadAllocsDoNotGrowWithPackets checks the whole pipeline.Read: ten
// times the packets over the same flows must not cost more allocations
// beyond a per-capture constant.
func TestReadAllocsDoNotGrowWithPackets(t *testing.T) {
	cfg := readConfig(t)
	allocsFor := func(packets int) (uint64, pipeline.ReadStats) {
		var buf bytes.Buffer
		if _, err := gen.WritePcap(&buf, gen.Config{Packets: packets, Flows: 1_000, IPv6: 0.3, Seed: 5, Duration: 600 * time.Second}); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		var m meter
		var st pipeline.ReadStats
		m.start()
		st, err := pipeline.Read(context.Background(), bytes.NewReader(data), "generated", cfg, &discardSink{})
		allocs := m.stop()
		if err != nil {
			t.Fatal(err)
		}
		return allocs, st
	}
	small, stSmall := allocsFor(20_000)
	large, stLarge := allocsFor(200_000)
	if stSmall.Recorded != 20_000 || stLarge.Recorded != 200_000 {
		t.Fatalf("recorded %d and %d packets, want all 20000 and 200000", stSmall.Recorded, stLarge.Recorded)
	}
	extra := float64(int64(large)-int64(small)) / float64(stLarge.Packets-stSmall.Packets)
	t.Logf("pipeline.Read: %d allocations for %d packets, %d for %d (%.5f per extra packet)",
		small, stSmall.Packets, large, stLarge.Packets, extra)
	if extra > 0.001 {
		t.Errorf("%.5f allocations per extra packet, want none", extra)
	}
}

// flowTableBytesPerFlow fills a table with n distinct flows in one window
// and returns the heap it holds per flow (live heap after GC, table
// included, minus the live heap before).
func flowTableBytesPerFlow(tb testing.TB, n int, keys []flow.Key) float64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	cfg := aggregate.DefaultConfig() // as flowlog read uses it: capacity 1 Mi flows
	cfg.MaxFlows = max(cfg.MaxFlows, n)
	table, err := aggregate.New(cfg, func(int64, []aggregate.Closed) {})
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		table.Add(keys[i], 1_767_225_600+int64(i%600), 1500, 0x10, flow.DirectionIngress)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := table.Stats(); st.Active != n || st.SkippedPackets != 0 {
		tb.Fatalf("table holds %d flows (skipped %d packets), want %d", st.Active, st.SkippedPackets, n)
	}
	runtime.KeepAlive(table)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}

// distinctKeys returns n flow keys, a third of them IPv6, no two alike.
func distinctKeys(n int) []flow.Key {
	keys := make([]flow.Key, n)
	for i := range keys {
		v := uint32(i)
		k := &keys[i]
		if i%3 == 0 {
			var a [16]byte
			a[0], a[1] = 0xfd, 0x12
			a[12], a[13], a[14], a[15] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
			k.Src = netip.AddrFrom16(a)
			k.Dst = netip.MustParseAddr("2001:db8::1")
		} else {
			k.Src = netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
			k.Dst = netip.AddrFrom4([4]byte{198, 18, 0, 1})
		}
		k.SrcPort, k.DstPort, k.Protocol, k.Action = uint16(32768+i%20000), 443, 6, flow.ActionAccept
	}
	return keys
}

// maxBytesPerFlow is design.md's budget per active flow in the table.
const maxBytesPerFlow = 128

// TestFlowTableBytesPerFlow holds the flow table to its memory budget at
// 100 k and 1 M active flows.
func TestFlowTableBytesPerFlow(t *testing.T) {
	sizes := []int{100_000, 1_000_000}
	keys := distinctKeys(slices.Max(sizes))
	for _, n := range sizes {
		perFlow := flowTableBytesPerFlow(t, n, keys)
		t.Logf("%d flows: %.1f bytes per flow", n, perFlow)
		if perFlow > maxBytesPerFlow {
			t.Errorf("%d flows: %.1f bytes per flow, budget %d", n, perFlow, maxBytesPerFlow)
		}
		if perFlow < 40 {
			t.Errorf("%d flows: %.1f bytes per flow is less than a key's addresses; the measurement is broken", n, perFlow)
		}
	}
}

// BenchmarkFlowTableMemory reports the heap per active flow at 100 k and
// 1 M flows (its ns/op is dominated by the two garbage collections).
func BenchmarkFlowTableMemory(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		keys := distinctKeys(n)
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			var perFlow float64
			for range b.N {
				perFlow = flowTableBytesPerFlow(b, n, keys)
			}
			b.ReportMetric(perFlow, "B/flow")
		})
	}
}
