package agent

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowlog/flowlog/flow"
	"github.com/flowlog/flowlog/internal/agent/netlab"
)

// nft loads an nftables rule set into namespace ns.
func nft(t *testing.T, l *lab, ns, rules string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(f, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	l.Run(ns, "nft", "-f", f)
}

// TestNATRecords routes a client through a namespace that masquerades
// (the agent's host) to a server: on the outside interface, where the
// packets carry the router's address, pkt-srcaddr and pkt-dstaddr show the
// client behind the translation, and srcaddr/dstaddr the interface's
// primary address; on the inside interface they show the packets as they
// are.
func TestNATRecords(t *testing.T) {
	netlab.Need(t, "nft")
	for _, source := range sources {
		t.Run(source, func(t *testing.T) {
			l := newLab(t)
			p := netip.MustParsePrefix
			client, router, server := l.nsA, l.Netns("r"), l.nsB
			l.Veth(netlab.End{Netns: client, Name: "vc", Addrs: []netip.Prefix{p("10.63.1.2/24")}, NoIPv6: true},
				netlab.End{Netns: router, Name: "vin", Addrs: []netip.Prefix{p("10.63.1.1/24")}, NoIPv6: true})
			l.Veth(netlab.End{Netns: router, Name: "vout", Addrs: []netip.Prefix{p("10.63.2.1/24")}, NoIPv6: true},
				netlab.End{Netns: server, Name: "vs", Addrs: []netip.Prefix{p("10.63.2.2/24")}, NoIPv6: true})
			l.Run(client, "ip", "route", "add", "default", "via", "10.63.1.1")
			l.Run(router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
			nft(t, l, router, `table ip nat {
	chain post { type nat hook postrouting priority srcnat; oifname "vout" masquerade; }
}
`)
			cfg := l.config(source, FlowLog{Resource: "vpc"})
			cfg.Netns = Netns{router}
			a := l.start(t, cfg, router+"/vin", router+"/vout")
			ifs := a.Interfaces()
			eniIn, eniOut := eniOf(t, ifs, router, "vin"), eniOf(t, ifs, router, "vout")
			ap := netip.MustParseAddrPort
			if err := netlab.TCP(client, ap("10.63.1.2:42000"), server, ap("10.63.2.2:80"), 100, 100, false); err != nil {
				t.Fatal(err)
			}
			if err := netlab.UDP(client, ap("10.63.1.2:42001"), server, ap("10.63.2.2:53"), []int{40, 40}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			if err := a.Stop(); err != nil {
				t.Fatal(err)
			}
			sums := sumRecords(readRecords(t, cfg.FlowLogs[0].Destination))
			c, r, s := netip.MustParseAddr("10.63.1.2"), netip.MustParseAddr("10.63.2.1"), netip.MustParseAddr("10.63.2.2")
			for _, tc := range []struct {
				eni              string
				wireSrc, wireDst netip.Addr
				sport, dport     uint16
				proto            uint8
				src, dst         netip.Addr // srcaddr, dstaddr
				pktSrc, pktDst   netip.Addr
			}{
				// Outside, leaving: translated to the router's address.
				{eniOut, r, s, 42000, 80, 6, r, s, c, s},
				{eniOut, s, r, 80, 42000, 6, s, r, s, c},
				{eniOut, r, s, 42001, 53, 17, r, s, c, s},
				// Inside: the packets as they are.
				{eniIn, c, s, 42000, 80, 6, c, netip.MustParseAddr("10.63.1.1"), c, s},
				{eniIn, s, c, 80, 42000, 6, netip.MustParseAddr("10.63.1.1"), c, s, c},
			} {
				// Records are keyed by pkt-* here, so look them up by
				// what Lookup returned.
				var got *flowTotals
				for f, tot := range sums[tc.eni] {
					if f.SrcPort == tc.sport && f.DstPort == tc.dport && f.Protocol == tc.proto {
						got = tot
					}
				}
				if got == nil {
					t.Errorf("%s %v:%d > %v:%d: no record", tc.eni, tc.wireSrc, tc.sport, tc.wireDst, tc.dport)
					continue
				}
				if got.SrcAddr != tc.src || got.DstAddr != tc.dst || got.PktSrc != tc.pktSrc || got.PktDst != tc.pktDst {
					t.Errorf("%s %v:%d > %v:%d: srcaddr %v dstaddr %v pkt %v > %v; want %v %v pkt %v > %v",
						tc.eni, tc.wireSrc, tc.sport, tc.wireDst, tc.dport, got.SrcAddr, got.DstAddr, got.PktSrc, got.PktDst,
						tc.src, tc.dst, tc.pktSrc, tc.pktDst)
				}
			}
		})
	}
}

// TestRejectRecords drops packets to one port with nftables in the
// server's namespace: the eBPF source records them as REJECT with exact
// counts, and never also as ACCEPT; a REJECT-only flow log has nothing
// else. (AF_PACKET cannot see packet filter drops.)
func TestRejectRecords(t *testing.T) {
	netlab.Need(t, "nft")
	l := newLab(t)
	nft(t, l, l.nsB, `table inet filter {
	chain input { type filter hook input priority filter; tcp dport 8081 drop; }
}
`)
	cfg := l.config("ebpf", FlowLog{Resource: "vpc"}, FlowLog{Resource: "vpc", TrafficType: "REJECT"})
	a := l.start(t, cfg, l.nsA+"/va", l.nsB+"/vb")
	eniA, eniB := eniOf(t, a.Interfaces(), l.nsA, "va"), eniOf(t, a.Interfaces(), l.nsB, "vb")
	sb := l.Sniff(l.nsB, "vb", l.b.Index)
	// A connection to the dropped port: SYNs until the dial times out.
	if err := l.Do(l.nsA, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(ap(pA, 43000)), Timeout: 1500 * time.Millisecond}
		c, err := d.Dial("tcp", ap(pB, 8081).String())
		if err == nil {
			c.Close()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// And one that is accepted, on the same hosts.
	if err := netlab.TCP(l.nsA, ap(pA, 43001), l.nsB, ap(pB, 8080), 10, 10, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	pkts := sb.Stop()
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	syn := netlab.Flow{Src: pA.Addr(), Dst: pB.Addr(), SrcPort: 43000, DstPort: 8081, Protocol: 6}
	want := netlab.Expect(pkts)[syn]
	if want.Packets < 1 {
		t.Fatalf("the sniffer saw no SYN: %+v", want)
	}
	all := readRecords(t, cfg.FlowLogs[0].Destination)
	// The SYN and its retransmissions can fall into two windows: two
	// records whose sums must equal what the sniffer saw.
	var rejected, rejectedBytes, accepted uint64
	for _, r := range all {
		if r.InterfaceID != eniB || r.SrcPort != 43000 || r.DstPort != 8081 {
			continue
		}
		switch r.Action {
		case flow.ActionReject:
			rejected += r.Packets
			rejectedBytes += r.Bytes
			if r.FlowDirection != flow.DirectionIngress || r.TCPFlags != 2 {
				t.Errorf("REJECT record %+v", r)
			}
		case flow.ActionAccept:
			accepted += r.Packets
		}
	}
	if rejected != want.Packets || rejectedBytes != want.Bytes || accepted != 0 {
		t.Errorf("vb: %d REJECT packets (%d bytes) and %d ACCEPT packets to the dropped port; the sniffer saw %d (%d bytes)",
			rejected, rejectedBytes, accepted, want.Packets, want.Bytes)
	}
	// On va the SYNs left: accepted there.
	if g := sumRecords(all)[eniA][syn]; g == nil || g.Action != flow.ActionAccept || g.Packets != want.Packets {
		t.Errorf("va: %+v", g)
	}
	for _, r := range readRecords(t, cfg.FlowLogs[1].Destination) {
		if r.LogStatus == flow.LogStatusOK && (r.Action != flow.ActionReject || r.DstPort != 8081) {
			t.Errorf("REJECT-only flow log: %+v", r)
		}
	}
}

// TestRecordsArriveOnTime waits for a window to close on the clock (no
// Stop): its records reach the destination within 5 s of the window's end.
// The test sends shortly before a minute ends, so it takes up to a minute.
func TestRecordsArriveOnTime(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a window to end (up to a minute)")
	}
	t.Parallel()
	l := newLab(t)
	cfg := l.config("afpacket", FlowLog{Resource: "vpc"})
	a := l.start(t, cfg, l.nsA+"/va", l.nsB+"/vb")
	// Send in the last seconds of a minute.
	now := time.Now()
	end := now.Truncate(time.Minute).Add(time.Minute)
	if end.Sub(now) < 3*time.Second {
		end = end.Add(time.Minute)
	}
	time.Sleep(time.Until(end.Add(-2 * time.Second)))
	if err := netlab.UDP(l.nsA, ap(pA, 9100), l.nsB, ap(pB, 9100), []int{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	deadline := end.Add(5 * time.Second)
	for {
		recs := readRecords(t, cfg.FlowLogs[0].Destination)
		n := 0
		for _, r := range recs {
			if r.DstPort == 9100 && r.End < end.Unix() {
				n++
			}
		}
		if n == 2 { // one record per end of the veth
			t.Logf("records published %s after the window ended", time.Since(end))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 records published by 5 s after the window ended", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = a
}
