package agent

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
	"github.com/flowlog/flowlog/internal/capture/afpacket"
)

func afpacketConfigForTests() afpacket.Config {
	return afpacket.Config{Fanout: 2, BlockTimeout: 20 * time.Millisecond}
}

func ap(p netip.Prefix, port uint16) netip.AddrPort { return netip.AddrPortFrom(p.Addr(), port) }

// sendMix sends the traffic every live test compares: TCP connections
// closed with FIN and with RST (SO_LINGER 0), UDP (one datagram
// fragmented), ICMP and ICMPv6 echo, and TCP over IPv6.
func sendMix(t *testing.T, l *lab) {
	t.Helper()
	steps := []func() error{
		func() error { return netlab.TCP(l.nsA, ap(pA, 40001), l.nsB, ap(pB, 80), 3000, 20000, false) },
		func() error { return netlab.TCP(l.nsA, ap(pA, 40002), l.nsB, ap(pB, 81), 10, 10, true) },
		func() error { return netlab.TCP(l.nsA, ap(pA6, 40003), l.nsB, ap(pB6, 443), 100, 5000, false) },
		func() error {
			return netlab.UDP(l.nsA, ap(pA, 5353), l.nsB, ap(pB, 53), []int{1, 100, 1400, 3000})
		},
		func() error { return netlab.UDP(l.nsB, ap(pB6, 123), l.nsA, ap(pA6, 123), []int{48, 48}) },
		func() error { return netlab.Ping(l.nsA, pA.Addr(), pB.Addr(), 3, 56) },
		func() error { return netlab.Ping(l.nsB, pB6.Addr(), pA6.Addr(), 2, 1000) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("traffic step %d: %v", i, err)
		}
	}
}

// compareWithSniffer checks the records of one interface against what a
// packet socket saw on it: for every flow the sniffer saw, packets, bytes,
// tcp-flags, direction, start and end summed over windows; and no record
// of a flow that never crossed the interface.
func compareWithSniffer(t *testing.T, name string, got map[netlab.Flow]*flowTotals, pkts []netlab.Packet, primary4 netip.Addr) {
	t.Helper()
	want := netlab.Expect(pkts)
	if len(want) == 0 {
		t.Fatalf("%s: the sniffer saw nothing", name)
	}
	for f, w := range want {
		if f.Dst.IsMulticast() {
			continue // MLD as the links came up, before the agent attached
		}
		g := got[f]
		if g == nil {
			t.Errorf("%s %v: no record; sniffer saw %d packets", name, f, w.Packets)
			continue
		}
		if g.Packets != w.Packets || g.Bytes != w.Bytes || g.TCPFlags != w.TCPFlags {
			t.Errorf("%s %v: %d packets %d bytes tcp-flags %d; sniffer: %d packets %d bytes tcp-flags %d",
				name, f, g.Packets, g.Bytes, g.TCPFlags, w.Packets, w.Bytes, w.TCPFlags)
		}
		wantDir := flow.DirectionIngress
		if w.Outgoing {
			wantDir = flow.DirectionEgress
		}
		if g.Direction != wantDir || g.Action != flow.ActionAccept {
			t.Errorf("%s %v: %v %v, want %v ACCEPT", name, f, g.Direction, g.Action, wantDir)
		}
		if g.Start != w.First.Unix() || g.End != w.Last.Unix() {
			t.Errorf("%s %v: start..end %d..%d, sniffer %d..%d", name, f, g.Start, g.End, w.First.Unix(), w.Last.Unix())
		}
		// srcaddr/dstaddr: the interface's primary IPv4 address on its
		// side; IPv6 and the other side as in the packet.
		wantSrc, wantDst := f.Src, f.Dst
		if f.Src.Is4() {
			if wantDir == flow.DirectionEgress {
				wantSrc = primary4
			} else {
				wantDst = primary4
			}
		}
		if g.SrcAddr != wantSrc || g.DstAddr != wantDst {
			t.Errorf("%s %v: srcaddr %v dstaddr %v, want %v %v", name, f, g.SrcAddr, g.DstAddr, wantSrc, wantDst)
		}
	}
	for f, g := range got {
		if _, ok := want[f]; !ok && !f.Dst.IsMulticast() {
			t.Errorf("%s %v: record of %d packets, the sniffer saw no such flow", name, f, g.Packets)
		}
	}
}

// TestRecordsMatchWhatWasSent is the main live test: the agent captures on
// both ends of a veth pair (separate namespaces, separate interfaces),
// traffic of every kind crosses, and after Stop the records equal what a
// plain packet socket saw on each end. An idle interface gets NODATA, a
// second flow log with a tiny flow table gets SKIPDATA, and /metrics and
// /healthz answer.
func TestRecordsMatchWhatWasSent(t *testing.T) {
	for _, source := range sources {
		t.Run(source, func(t *testing.T) {
			l := newLab(t)
			idle, _ := l.Veth(netlab.End{Netns: l.nsA, Name: "vidle", NoIPv6: true}, netlab.End{Netns: l.nsB, Name: "xidle", NoIPv6: true})
			_ = idle
			cfg := l.config(source,
				FlowLog{Resource: "vpc"},
				FlowLog{Resource: l.nsA + "/va", MaxFlows: 2},
			)
			a := l.start(t, cfg, l.nsA+"/va", l.nsB+"/vb", l.nsA+"/vidle")
			ifs := a.Interfaces()
			eniA, eniB, eniIdle := eniOf(t, ifs, l.nsA, "va"), eniOf(t, ifs, l.nsB, "vb"), eniOf(t, ifs, l.nsA, "vidle")
			for _, i := range ifs {
				if i.Name == "xidle" {
					t.Errorf("xidle attached: it does not match interfaces.include")
				}
			}
			sa := l.Sniff(l.nsA, "va", l.a.Index)
			sb := l.Sniff(l.nsB, "vb", l.b.Index)
			sendMix(t, l)
			time.Sleep(200 * time.Millisecond)
			checkMetrics(t, a)
			pa, pb := sa.Stop(), sb.Stop()
			if err := a.Stop(); err != nil {
				t.Fatal(err)
			}

			all := readRecords(t, cfg.FlowLogs[0].Destination)
			sums := sumRecords(all)
			compareWithSniffer(t, "va", sums[eniA], pa, pA.Addr())
			compareWithSniffer(t, "vb", sums[eniB], pb, pB.Addr())
			if eniA == eniB {
				t.Fatal("both ends have one interface id")
			}
			for _, r := range all {
				if r.AccountID != "123456789012" || r.Version != 5 {
					t.Fatalf("record %+v", r)
				}
				if r.LogStatus == flow.LogStatusOK && (r.Type == "IPv6") != r.PktSrcAddr.Is6() {
					t.Errorf("type %s for %v", r.Type, r.PktSrcAddr)
				}
			}
			// The idle interface: NODATA, nothing else.
			nd := statusRecords(all, eniIdle, flow.LogStatusNoData)
			if len(nd) == 0 || len(sums[eniIdle]) != 0 {
				t.Errorf("idle interface: %d NODATA records, %d flows", len(nd), len(sums[eniIdle]))
			}
			for _, r := range nd {
				if r.End-r.Start != 60 || r.Start%60 != 0 || r.Packets != 0 || r.SrcAddr.IsValid() {
					t.Errorf("NODATA record %+v", r)
				}
			}
			if n := len(statusRecords(all, eniA, flow.LogStatusSkipData)) + len(statusRecords(all, eniB, flow.LogStatusSkipData)); n != 0 {
				t.Errorf("%d SKIPDATA records with room in the flow table", n)
			}

			// The second flow log covers va only, with room for 2 flows.
			small := readRecords(t, cfg.FlowLogs[1].Destination)
			if len(statusRecords(small, eniA, flow.LogStatusSkipData)) == 0 {
				t.Error("flow table of 2: no SKIPDATA")
			}
			for _, r := range small {
				if r.InterfaceID != eniA {
					t.Errorf("the va flow log has a record of %s", r.InterfaceID)
				}
			}
		})
	}
}
