package ebpf

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
)

// fillFlows writes n distinct entries into the flow map the next Drain
// empties, each with a share on every CPU, as if n flows had been counted.
func fillFlows(t testing.TB, s *Source, n int) {
	t.Helper()
	m := s.objs.Flows0
	if s.gen == 1 {
		m = s.objs.Flows1
	}
	now := uint64(time.Now().UnixNano() - s.genOffset[s.gen])
	window := uint64(time.Now().UnixNano()) / uint64(s.cfg.Window)
	keys := make([]flowlogFlowKey, n)
	vals := make([]flowlogFlowValue, n*s.ncpu)
	for i := range keys {
		k := &keys[i]
		k.Window = window
		k.Src = [16]byte{10, 0, byte(i >> 8), byte(i)}
		k.Dst = [16]byte{10, 1, 0, 1}
		k.AttachId = 1
		k.SrcPort = uint16(i)
		k.DstPort = 443
		k.Proto = 6
		k.Action = 1
		k.Direction = 1
		for c := range s.ncpu {
			vals[i*s.ncpu+c] = flowlogFlowValue{Packets: 2, Bytes: 200, FirstNs: now, LastNs: now + 1, Syn: 1}
		}
	}
	if _, err := m.BatchUpdate(keys, vals, nil); err != nil {
		t.Fatalf("fill flow map: %v", err)
	}
}

// TestDrainFallbackMatchesBatch: the iterate-and-delete path for kernels
// without batch syscalls returns what the batch path returns.
func TestDrainFallbackMatchesBatch(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	collect := func() map[oracleKey]sums {
		got, _ := drainSums(t, s)
		return got
	}
	fillFlows(t, s, 3000)
	batch := collect()
	s.noBatch = true
	fillFlows(t, s, 3000)
	fallback := collect()
	if len(batch) != 3000 {
		t.Fatalf("batch drain returned %d keys, want 3000", len(batch))
	}
	if d := diffSums(batch, fallback); len(d) > 0 {
		t.Errorf("fallback differs:\n%s", strings.Join(d[:min(len(d), 10)], "\n"))
	}
	for k, v := range batch {
		if v.Packets != uint64(2*s.ncpu) || v.Bytes != uint64(200*s.ncpu) || v.Flags != flow.TCPFlagSYN {
			t.Fatalf("%v: per-CPU shares merged into %v", k.Key, v)
		}
	}
	if got := collect(); len(got) != 0 {
		t.Errorf("a drain after the fallback found %d keys", len(got))
	}
}

// TestDrainAllocations: Drain allocates a fixed amount per call and per
// batch of drainBatch entries, nothing per entry.
func TestDrainAllocations(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	var sink uint64
	fn := func(d *capture.Delta) { sink += d.Packets }
	allocs := func(n int) uint64 {
		fillFlows(t, s, n)
		var before, after runtimeMemStats
		readMemStats(&before)
		if _, err := s.Drain(fn); err != nil {
			t.Fatal(err)
		}
		readMemStats(&after)
		return after.Mallocs - before.Mallocs
	}
	// A few allocations per batch syscall of drainBatch entries (the
	// slices passed as interface values), none per entry.
	small, large := allocs(10), allocs(10000)
	if perBatch := 10000/drainBatch + 1; large > small+uint64(perBatch)*4 {
		t.Errorf("drain of 10000 entries allocated %d times, of 10 entries %d times: allocations per entry", large, small)
	}
	t.Logf("allocations per Drain: %d (10 entries), %d (10000 entries)", small, large)
}

// BenchmarkDrain10k measures one Drain of 10000 flow map entries (two CPU
// shares each on this machine), including the RCU grace period.
func BenchmarkDrain10k(b *testing.B) {
	requireBPF(b)
	s := newSource(b, Config{})
	var sink uint64
	fn := func(d *capture.Delta) { sink += d.Packets }
	var grace time.Duration
	for b.Loop() {
		b.StopTimer()
		fillFlows(b, s, 10000)
		b.StartTimer()
		if _, err := s.Drain(fn); err != nil {
			b.Fatal(err)
		}
		grace += s.last.Grace
	}
	b.ReportMetric(float64(grace.Microseconds())/float64(b.N), "grace-µs/op")
}

// benchFrames are the frames whose per-packet cost BenchmarkTCProgram
// reports.
func benchFrames() map[string][]byte {
	return map[string][]byte{
		"tcp4":        ethernet(0x0800, ipv4(6, 20+20+100, tcpHeader(40000, 443, 0x10, 0))),
		"udp6":        ethernet(0x86DD, ipv6(17, 8+100, udpHeader(5353, 53))),
		"udp6-hbh":    ethernet(0x86DD, ipv6(0, 8+8+100, append(hopByHop(17), udpHeader(5353, 53)...))),
		"tcp4-vlan":   vlan(ethernet(0x0800, ipv4(6, 20+20+100, tcpHeader(40000, 443, 0x10, 0)))),
		"arp-not-ip":  ethernet(0x0806, make([]byte, 28)),
		"tcp4-syn":    ethernet(0x0800, ipv4(6, 20+20, tcpHeader(40001, 443, 0x02, 0))),
		"icmp4":       ethernet(0x0800, ipv4(1, 20+8+56, make([]byte, 8))),
		"ipv4-frag-1": ethernet(0x0800, fragment(ipv4(17, 20+8+100, udpHeader(1000, 2000)))),
	}
}

func vlan(frame []byte) []byte {
	out := append([]byte{}, frame[:12]...)
	out = append(out, 0x81, 0x00, 0x00, 0x05)
	return append(out, frame[12:]...)
}

func fragment(ip []byte) []byte {
	binary.BigEndian.PutUint16(ip[6:], 0x2000) // MF, offset 0
	return ip
}

// BenchmarkTCProgram measures the ingress program per packet with
// BPF_PROG_TEST_RUN repeat (the kernel times the runs; the entry exists
// after the first run, as for every packet but a flow's first). With
// REJECT tracking on, it includes the inflight cache write.
func BenchmarkTCProgram(b *testing.B) {
	requireBPF(b)
	s := newSource(b, Config{})
	ingress, _ := testPrograms(b, s, 1, 0)
	claimSlot(s, 1, 0)
	for name, frame := range benchFrames() {
		b.Run(name, func(b *testing.B) {
			_, per, err := ingress.Benchmark(frame, b.N, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/packet")
		})
	}
}

// TestTCProgramCost logs the per-packet cost of the ingress program for
// the record (BPF_PROG_TEST_RUN, 100000 repeats each).
func TestTCProgramCost(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	ingress, _ := testPrograms(t, s, 1, 0)
	claimSlot(s, 1, 0)
	var lines []string
	for name, frame := range benchFrames() {
		_, per, err := ingress.Benchmark(frame, 100000, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		lines = append(lines, fmt.Sprintf("%s %v", name, per))
	}
	t.Logf("per packet: %s", strings.Join(lines, ", "))
}

type runtimeMemStats = runtime.MemStats

func readMemStats(m *runtime.MemStats) { runtime.ReadMemStats(m) }

// TestDrainCallbackMayUseSource: the callback may call the Source's other
// methods (the agent updates metrics and attaches interfaces from there).
func TestDrainCallbackMayUseSource(t *testing.T) {
	requireBPF(t)
	s := newSource(t, Config{})
	fillFlows(t, s, 10)
	done := make(chan error, 1)
	go func() {
		calls := 0
		_, err := s.Drain(func(d *capture.Delta) {
			calls++
			_, _ = s.Stats()
			_ = s.LastDrain()
			_ = s.AttachMode()
			if s.Detach(999) == nil {
				t.Error("Detach of an unknown id succeeded")
			}
		})
		if err == nil && calls != 10 {
			err = fmt.Errorf("%d callbacks, want 10", calls)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain deadlocked with a callback using the Source")
	}
}
