package ebpf

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/capture"
)

// addSums adds b into a.
func addSums(a, b map[oracleKey]sums) {
	for k, v := range b {
		w := a[k]
		w.Packets += v.Packets
		w.Bytes += v.Bytes
		w.Flags |= v.Flags
		a[k] = w
	}
}

// perInterface sums packets per interface id.
func perInterface(m map[oracleKey]sums) map[uint32]uint64 {
	out := make(map[uint32]uint64)
	for k, v := range m {
		out[k.Key.Interface] += v.Packets
	}
	return out
}

// TestLiveMapFull: with room for 4 flow keys, packets of further keys are
// counted as lost for their interface, and counted plus lost is exactly
// what the taps saw.
func TestLiveMapFull(t *testing.T) {
	requireNetns(t)
	n := newTestNet(t)
	s := newSource(t, Config{MaxFlows: 4})
	n.attachBoth(t, s, idA, idB)
	c, err := dialIn(t, n.A, "udp4", hostPort(addrB4, 7000), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	listenPacketIn(t, n.B, "udp4", hostPort(addrB4, 7000))
	for range 20 {
		if _, err := c.Write(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for port := 7001; port <= 7020; port++ {
		udpSend(t, n, "udp4", hostPort(addrB4, port), 10)
	}
	settle()
	got, lost := drainSums(t, s)
	want := n.oracle(t, idA, idB, nil)
	if len(got) > 4 {
		t.Errorf("%d keys from a map of 4", len(got))
	}
	counted, seen := perInterface(got), perInterface(want)
	for _, id := range []uint32{idA, idB} {
		if lost[id] == 0 {
			t.Errorf("interface %d: nothing lost", id)
		}
		if counted[id]+lost[id] != seen[id] {
			t.Errorf("interface %d: %d counted + %d lost, taps saw %d", id, counted[id], lost[id], seen[id])
		}
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("counted key %v: %v, taps %v", k.Key, v, want[k])
		}
	}
	st, _ := s.Stats()
	t.Logf("counted %v lost %v; stats %+v", counted, lost, st)
	// The next drain starts empty and reports no old losses.
	udpSend(t, n, "udp4", hostPort(addrB4, 7000), 10)
	settle()
	got, lost = drainSums(t, s)
	if len(lost) != 0 || len(got) != 2 {
		t.Errorf("after the loss: %d keys, lost %v; want 2 keys, nothing lost", len(got), lost)
	}
}

// TestLiveDrainUnderLoad drains every 20 ms while UDP and TCP run, and
// requires the sum of all drains to equal the taps: switching map
// generations loses and duplicates nothing.
func TestLiveDrainUnderLoad(t *testing.T) {
	requireNetns(t)
	n := newTestNet(t)
	s := newSource(t, Config{})
	n.attachBoth(t, s, idA, idB)
	listenPacketIn(t, n.B, "udp4", hostPort(addrB4, 7100))

	total := make(map[oracleKey]sums)
	tapTotal := make(map[oracleKey]sums)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := dialIn(t, n.A, "udp4", hostPort(addrB4, 7100), time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Write(buf); err != nil {
				t.Error(err)
				return
			}
			if i%16 == 15 { // at most ~16k packets/s: the taps must keep up
				time.Sleep(time.Millisecond)
			}
		}
	}()
	deadline := time.Now().Add(1500 * time.Millisecond)
	drains := 0
	for time.Now().Before(deadline) {
		// A port per exchange: listeners are closed only when the test ends.
		tcpExchange(t, n, "tcp4", hostPort(addrB4, 7101+drains), 5000, 5000, drains%2 == 0)
		got, lost := drainSums(t, s)
		if len(lost) != 0 {
			t.Errorf("lost %v", lost)
		}
		addSums(total, got)
		addSums(tapTotal, n.oracle(t, idA, idB, nil)) // keeps the tap queue short
		drains++
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	settle()
	got, _ := drainSums(t, s)
	addSums(total, got)
	addSums(tapTotal, n.oracle(t, idA, idB, nil))
	if d := diffSums(tapTotal, total); len(d) > 0 {
		t.Errorf("after %d drains, kernel and taps disagree:\n%s", drains, strings.Join(d[:min(len(d), 20)], "\n"))
	}
	t.Logf("%d drains, %d packets, %d keys; last drain %+v", drains, totalPackets(total), len(total), s.LastDrain())
}

// TestLiveDetachAndNetlink attaches through a clsact qdisc (the path for
// kernels before 6.6), detaches one end and requires that its counts up to
// then still come with the next drain, that it counts nothing afterwards,
// and that Close leaves no program on either device.
func TestLiveDetachAndNetlink(t *testing.T) {
	for _, mode := range []string{"netlink", "tcx"} {
		t.Run(mode, func(t *testing.T) {
			requireNetns(t)
			n := newTestNet(t)
			s := newSource(t, Config{Attach: mode})
			n.attachBoth(t, s, idA, idB)
			if got := s.AttachMode(); got != mode {
				t.Errorf("attach mode %q, want %q", got, mode)
			}
			listenPacketIn(t, n.B, "udp4", hostPort(addrB4, 7200))
			p1, _ := udpSend(t, n, "udp4", hostPort(addrB4, 7200), 10, 20)
			settle()
			if err := s.Detach(idB); err != nil {
				t.Fatal(err)
			}
			if err := s.Detach(idB); err == nil {
				t.Error("second Detach of the same id succeeded")
			}
			p2, _ := udpSend(t, n, "udp4", hostPort(addrB4, 7200), 30)
			settle()
			got, lost := drainSums(t, s)
			want := map[oracleKey]sums{
				key(idA, flow.DirectionEgress, addrA4, addrB4, p1, 7200, 17, flow.ActionAccept):  {Packets: 2, Bytes: 38 + 48},
				key(idB, flow.DirectionIngress, addrA4, addrB4, p1, 7200, 17, flow.ActionAccept): {Packets: 2, Bytes: 38 + 48},
				key(idA, flow.DirectionEgress, addrA4, addrB4, p2, 7200, 17, flow.ActionAccept):  {Packets: 1, Bytes: 58},
			}
			if d := diffSums(want, got); len(d) > 0 || len(lost) != 0 {
				t.Errorf("lost %v; %s", lost, strings.Join(d, "\n"))
			}
			// Reattaching under a new id works, in the freed slot.
			if err := s.Attach(idB+1, capture.Link{Index: n.IdxB, Name: "vb", Netns: n.B}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			for _, dev := range []struct {
				ns, name string
				idx      int
			}{{n.A, "va", n.IdxA}, {n.B, "vb", n.IdxB}} {
				inNS(t, dev.ns, func() {
					for _, at := range []ebpf.AttachType{ebpf.AttachTCXIngress, ebpf.AttachTCXEgress} {
						r, err := link.QueryPrograms(link.QueryOptions{Target: dev.idx, Attach: at})
						if err != nil {
							t.Errorf("query TCX programs: %v", err)
							continue
						}
						if len(r.Programs) != 0 {
							t.Errorf("%d TCX programs left on ifindex %d after Close", len(r.Programs), dev.idx)
						}
					}
				})
				out := run(t, "ip", "netns", "exec", dev.ns, "tc", "filter", "show", "dev", dev.name, "ingress")
				out += run(t, "ip", "netns", "exec", dev.ns, "tc", "filter", "show", "dev", dev.name, "egress")
				if strings.Contains(out, "flowlog") {
					t.Errorf("tc filters left after Close:\n%s", out)
				}
			}
		})
	}
}
