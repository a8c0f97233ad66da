package decode

import (
	"net/netip"
	"testing"

	"github.com/flowlog/flowlog/flow"
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

const (
	a4, b4 = "192.0.2.1", "198.51.100.7"
	a6, b6 = "2001:db8::1", "2001:db8:ffff::2"
)

// Frequently used packets and what they decode to.
var (
	tcpSYN4     = ipv4{src: a4, dst: b4, proto: 6}.bytes(tcp(40000, 443, 0x02, nil))
	tcpSYN4Want = Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 40000, DstPort: 443, Protocol: 6, TCPFlags: 0x02, Length: 40}
	udp6        = ipv6{src: a6, dst: b6, next: 17}.bytes(udp(5353, 53, []byte("query")))
	udp6Want    = Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 5353, DstPort: 53, Protocol: 17, Length: 53, IPv6: true}
)

func with(p Packet, edit func(*Packet)) Packet {
	edit(&p)
	return p
}

type decodeCase struct {
	name  string
	link  uint32
	frame []byte
	want  Packet
	err   error
}

// decodeCases are the hand-built frames of TestDecode; the fuzz target uses
// them as seeds too.
func decodeCases() []decodeCase {
	padding := []byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xde, 0xad}
	cases := []decodeCase{
		// Ethernet II and the IPv4 transport layer.
		{name: "eth ipv4 tcp syn", link: LinkEthernet, frame: eth(0x0800, tcpSYN4), want: tcpSYN4Want},
		{name: "eth ipv4 tcp all flag bits", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6}.bytes(tcp(1, 2, 0xFF, []byte("x")))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, TCPFlags: 0xFF, Length: 41}},
		{name: "eth ipv4 udp", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 17}.bytes(udp(123, 123, make([]byte, 48)))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 123, DstPort: 123, Protocol: 17, Length: 76}},
		{name: "eth ipv4 sctp", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 132}.bytes(sctp(2905, 2906))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 2905, DstPort: 2906, Protocol: 132, Length: 32}},
		{name: "eth ipv4 icmp echo has no ports", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 1}.bytes(icmp(8, 0, make([]byte, 56)))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 1, Length: 84}},
		{name: "icmp error quoting udp stays icmp with ports 0", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 1}.bytes(icmp(3, 3, ipv4{src: b4, dst: a4, proto: 17}.bytes(udp(53, 999, nil))))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 1, Length: 56}},
		{name: "ipv4 options move the l4 header (IHL 7)", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, options: []byte{0x94, 4, 0, 0, 1, 1, 1, 0}}.bytes(tcp(8080, 22, 0x12, nil))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 8080, DstPort: 22, Protocol: 6, TCPFlags: 0x12, Length: 48}},
		{name: "ethernet padding is not read as l4", link: LinkEthernet,
			frame: eth(0x0800, cat(ipv4{src: a4, dst: b4, proto: 6}.bytes(nil), padding)),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 6, Length: 20}},
		{name: "ipv4 declared length beyond the capture counts as declared", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 1500}.bytes(tcp(1, 2, 0x10, nil))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, TCPFlags: 0x10, Length: 1500}},
		{name: "ipv4 total length 0 (offload) counts the captured bytes", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: -1}.bytes(tcp(1, 2, 0x18, make([]byte, 100)))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, TCPFlags: 0x18, Length: 140}},
		{name: "tunnels are not unwrapped: gre", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 47}.bytes(cat([]byte{0, 0, 0x08, 0}, tcpSYN4))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 47, Length: 64}},
		{name: "tunnels are not unwrapped: vxlan", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 17}.bytes(udp(51000, 4789, cat([]byte{8, 0, 0, 0, 0, 0, 1, 0}, eth(0x0800, tcpSYN4))))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 51000, DstPort: 4789, Protocol: 17, Length: 20 + 8 + 8 + 14 + 40}},
		{name: "tunnels are not unwrapped: 6in4", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 41}.bytes(udp6)),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 41, Length: 73}},
		{name: "tunnels are not unwrapped: ip in ip", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 4}.bytes(tcpSYN4)),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 4, Length: 60}},

		// IPv4 fragments.
		{name: "ipv4 first fragment", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, id: 0xBEEF, mf: true}.bytes(tcp(1000, 80, 0x02, make([]byte, 12)))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1000, DstPort: 80, Protocol: 6, TCPFlags: 0x02, Length: 52, Fragment: FragmentFirst, FragID: 0xBEEF}},
		{name: "ipv4 later fragment has no ports or flags", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, id: 0xBEEF, fragOff: 4}.bytes(tcp(7, 7, 0x07, nil))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 6, Length: 40, Fragment: FragmentLater, FragID: 0xBEEF}},
		{name: "ipv4 last fragment (offset, no MF) is later", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 17, id: 9, fragOff: 185}.bytes(make([]byte, 30))),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 17, Length: 50, Fragment: FragmentLater, FragID: 9}},
		{name: "ipv4 id of an unfragmented packet is not reported", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, id: 77}.bytes(tcp(40000, 443, 0x02, nil))),
			want:  tcpSYN4Want},

		// IPv6 and its extension headers.
		{name: "eth ipv6 udp", link: LinkEthernet, frame: eth(0x86DD, udp6), want: udp6Want},
		{name: "eth ipv6 tcp", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 6}.bytes(tcp(443, 50000, 0x11, nil))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 443, DstPort: 50000, Protocol: 6, TCPFlags: 0x11, Length: 60, IPv6: true}},
		{name: "ipv6 icmpv6", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 58}.bytes(icmp(128, 0, nil))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 58, Length: 48, IPv6: true}},
		{name: "ipv6 hop-by-hop then icmpv6", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0}.bytes(ext6(58, 0, icmp(143, 0, nil)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 58, Length: 56, IPv6: true}},
		{name: "ipv6 hop-by-hop, routing type 0, atomic fragment, destination options, udp", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0}.bytes(ext6(43, 1, ext6(44, 2, frag6(60, 0, false, 99, ext6(17, 0, udp(1, 2, nil))))))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 1, DstPort: 2, Protocol: 17, Length: 40 + 16 + 24 + 8 + 8 + 8, IPv6: true}},
		{name: "ipv6 segment routing header", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 43}.bytes(srh6(6, 3, tcp(9, 10, 0x04, nil)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 9, DstPort: 10, Protocol: 6, TCPFlags: 0x04, Length: 40 + 56 + 20, IPv6: true}},
		{name: "ipv6 ah uses (len+2)*4", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 51}.bytes(ah6(6, 4, tcp(500, 4500, 0x02, make([]byte, 40))))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 500, DstPort: 4500, Protocol: 6, TCPFlags: 0x02, Length: 40 + 24 + 60, IPv6: true}},
		{name: "ipv6 esp is the upper layer", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 50}.bytes(cat(be32(0x100), be32(1), make([]byte, 16)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 50, Length: 64, IPv6: true}},
		{name: "ipv6 mobility header is the upper layer", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 60}.bytes(ext6(135, 0, ext6(59, 1, nil)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 135, Length: 40 + 8 + 16, IPv6: true}},
		{name: "ipv6 no next header", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 59}.bytes(nil)),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 59, Length: 40, IPv6: true}},
		{name: "ipv6 first fragment", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 44}.bytes(frag6(17, 0, true, 0xCAFE0001, udp(53, 5353, make([]byte, 100))))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 53, DstPort: 5353, Protocol: 17, Length: 40 + 8 + 108, IPv6: true, Fragment: FragmentFirst, FragID: 0xCAFE0001}},
		{name: "ipv6 later fragment", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0}.bytes(ext6(44, 0, frag6(17, 179, true, 0xCAFE0001, udp(1, 1, nil))))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 17, Length: 40 + 8 + 8 + 8, IPv6: true, Fragment: FragmentLater, FragID: 0xCAFE0001}},
		{name: "ipv6 atomic fragment is an ordinary packet", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 44}.bytes(frag6(6, 0, false, 5, tcp(1, 2, 0x01, nil)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 1, DstPort: 2, Protocol: 6, TCPFlags: 0x01, Length: 68, IPv6: true}},
		{name: "ipv6 jumbogram counts the captured bytes", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 17, plen: -1}.bytes(udp(1, 2, make([]byte, 92)))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 1, DstPort: 2, Protocol: 17, Length: 140, IPv6: true}},
		{name: "ipv6 declared length beyond the capture counts as declared", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 17, plen: 1460}.bytes(udp(1, 2, nil))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), SrcPort: 1, DstPort: 2, Protocol: 17, Length: 1500, IPv6: true}},
		{name: "ipv6 ipv4-mapped addresses stay ipv6", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: "::ffff:192.0.2.1", dst: b6, next: 59}.bytes(nil)),
			want:  Packet{Src: addr("::ffff:192.0.2.1"), Dst: addr(b6), Protocol: 59, Length: 40, IPv6: true}},

		// IPv6 extension chains that run off the capture.
		{name: "ipv6 header only, next header hop-by-hop", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0, plen: 20}.bytes(nil)),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 0, Length: 60, IPv6: true}},
		{name: "ipv6 hop-by-hop read, routing header cut", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0, plen: 100}.bytes(ext6(43, 0, []byte{6, 0}))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 43, Length: 140, IPv6: true}},
		{name: "ipv6 hop-by-hop itself cut", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 0, plen: 100}.bytes([]byte{6, 1, 0, 0, 0, 0, 0, 0, 0, 0})),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 0, Length: 140, IPv6: true}},
		{name: "ipv6 fragment header cut", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 44, plen: 100}.bytes([]byte{17, 0, 0, 1})),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 44, Length: 140, IPv6: true}},
		{name: "ipv6 ah cut", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 51, plen: 100}.bytes(ah6(6, 4, nil)[:20])),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 51, Length: 140, IPv6: true}},
		{name: "ipv6 payload length ends the chain before the capture does", link: LinkEthernet,
			frame: eth(0x86DD, cat(ipv6{src: a6, dst: b6, next: 0, plen: 8}.bytes(ext6(6, 0, nil)), tcp(1, 2, 2, nil))),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 6, Length: 48, IPv6: true}},

		// L4 header cut short.
		{name: "tcp cut to 3 bytes: no ports", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 60}.bytes(tcp(1, 2, 2, nil)[:3])),
			want:  Packet{Src: addr(a4), Dst: addr(b4), Protocol: 6, Length: 60}},
		{name: "tcp cut to 4 bytes: ports, no flags", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 60}.bytes(tcp(1, 2, 2, nil)[:4])),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, Length: 60}},
		{name: "tcp cut to 13 bytes: no flags", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 60}.bytes(tcp(1, 2, 2, nil)[:13])),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, Length: 60}},
		{name: "tcp cut to 14 bytes: flags", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 60}.bytes(tcp(1, 2, 2, nil)[:14])),
			want:  Packet{Src: addr(a4), Dst: addr(b4), SrcPort: 1, DstPort: 2, Protocol: 6, TCPFlags: 2, Length: 60}},
		{name: "udp cut to 3 bytes over ipv6", link: LinkEthernet,
			frame: eth(0x86DD, ipv6{src: a6, dst: b6, next: 17, plen: 8}.bytes(udp(1, 2, nil)[:3])),
			want:  Packet{Src: addr(a6), Dst: addr(b6), Protocol: 17, Length: 48, IPv6: true}},

		// 802.3 with LLC/SNAP.
		{name: "802.3 llc snap ipv4", link: LinkEthernet, frame: eth8023(snap(0x0800, tcpSYN4)), want: tcpSYN4Want},
		{name: "802.3 llc snap ipv6", link: LinkEthernet, frame: eth8023(snap(0x86DD, udp6)), want: udp6Want},
		{name: "802.3 llc stp is not ip", link: LinkEthernet, frame: eth8023([]byte{0x42, 0x42, 0x03, 0, 0, 0, 0, 0}), err: ErrNotIP},
		{name: "802.3 snap with a non-ethertype protocol is not ip", link: LinkEthernet, frame: eth8023(snap(0x0100, tcpSYN4)), err: ErrNotIP},

		// VLAN tags.
		{name: "802.1q", link: LinkEthernet, frame: eth(0x8100, tag(10, 0x0800, tcpSYN4)), want: tcpSYN4Want},
		{name: "802.1ad + 802.1q (qinq)", link: LinkEthernet, frame: eth(0x88A8, tag(100, 0x8100, tag(10, 0x86DD, udp6))), want: udp6Want},
		{name: "qinqinq with a 0x9100 outer tag", link: LinkEthernet,
			frame: eth(0x9100, tag(1, 0x88A8, tag(2, 0x8100, tag(3, 0x0800, tcpSYN4)))), want: tcpSYN4Want},
		{name: "six tags deep", link: LinkEthernet,
			frame: eth(0x8100, tag(1, 0x8100, tag(2, 0x8100, tag(3, 0x8100, tag(4, 0x8100, tag(5, 0x8100, tag(6, 0x0800, tcpSYN4))))))), want: tcpSYN4Want},
		{name: "vlan then 802.3 llc snap", link: LinkEthernet,
			frame: eth(0x8100, tag(10, uint16(8+len(tcpSYN4)), snap(0x0800, tcpSYN4))), want: tcpSYN4Want},
		{name: "arp", link: LinkEthernet, frame: eth(0x0806, make([]byte, 28)), err: ErrNotIP},
		{name: "arp in vlan", link: LinkEthernet, frame: eth(0x8100, tag(5, 0x0806, make([]byte, 28))), err: ErrNotIP},
		{name: "lldp", link: LinkEthernet, frame: eth(0x88CC, make([]byte, 40)), err: ErrNotIP},

		// PPPoE and MPLS.
		{name: "pppoe session ipv4", link: LinkEthernet, frame: eth(0x8864, pppoe(0x0021, tcpSYN4)), want: tcpSYN4Want},
		{name: "pppoe session ipv6", link: LinkEthernet, frame: eth(0x8864, pppoe(0x0057, udp6)), want: udp6Want},
		{name: "pppoe over qinq", link: LinkEthernet,
			frame: eth(0x88A8, tag(20, 0x8100, tag(30, 0x8864, pppoe(0x0021, tcpSYN4)))), want: tcpSYN4Want},
		{name: "pppoe lcp is not ip", link: LinkEthernet, frame: eth(0x8864, pppoe(0xC021, make([]byte, 10))), err: ErrNotIP},
		{name: "pppoe discovery is not ip", link: LinkEthernet, frame: eth(0x8863, make([]byte, 20)), err: ErrNotIP},
		{name: "mpls one label ipv4", link: LinkEthernet, frame: eth(0x8847, mpls(1, tcpSYN4)), want: tcpSYN4Want},
		{name: "mpls three labels ipv6", link: LinkEthernet, frame: eth(0x8847, mpls(3, udp6)), want: udp6Want},
		{name: "mpls multicast", link: LinkEthernet, frame: eth(0x8848, mpls(2, tcpSYN4)), want: tcpSYN4Want},
		{name: "mpls in vlan", link: LinkEthernet, frame: eth(0x8100, tag(7, 0x8847, mpls(2, tcpSYN4))), want: tcpSYN4Want},
		{name: "mpls pseudowire with control word is not ip", link: LinkEthernet, frame: eth(0x8847, mpls(1, cat([]byte{0, 0, 0, 0}, eth(0x0800, tcpSYN4)))), err: ErrNotIP},
		{name: "mpls stack without bottom", link: LinkEthernet, frame: eth(0x8847, be32(16<<12)), err: ErrTruncated},

		// Raw IP link types.
		{name: "raw ipv4", link: LinkRaw, frame: tcpSYN4, want: tcpSYN4Want},
		{name: "raw ipv6", link: LinkRaw, frame: udp6, want: udp6Want},
		{name: "raw 12", link: LinkRawBSD, frame: tcpSYN4, want: tcpSYN4Want},
		{name: "raw 14", link: LinkRawOpenBSD, frame: udp6, want: udp6Want},
		{name: "raw with version 5", link: LinkRaw, frame: cat([]byte{0x50}, tcpSYN4[1:]), err: ErrNotIP},
		{name: "linktype ipv4", link: LinkIPv4, frame: tcpSYN4, want: tcpSYN4Want},
		{name: "linktype ipv4 carrying ipv6", link: LinkIPv4, frame: udp6, err: ErrMalformed},
		{name: "linktype ipv6", link: LinkIPv6, frame: udp6, want: udp6Want},
		{name: "linktype ipv6 with fcs bits in the upper half", link: 0x300000E5, frame: udp6, want: udp6Want},
		{name: "linktype ethernet with reserved bits", link: 0x04000001, frame: eth(0x0800, tcpSYN4), want: tcpSYN4Want},

		// BSD null and loop.
		{name: "null af_inet little-endian", link: LinkNull, frame: cat(le32(2), tcpSYN4), want: tcpSYN4Want},
		{name: "null af_inet big-endian", link: LinkNull, frame: cat(be32(2), tcpSYN4), want: tcpSYN4Want},
		{name: "null af_inet6 linux little-endian", link: LinkNull, frame: cat(le32(10), udp6), want: udp6Want},
		{name: "null af_inet6 linux big-endian", link: LinkNull, frame: cat(be32(10), udp6), want: udp6Want},
		{name: "null af_inet6 bsd little-endian", link: LinkNull, frame: cat(le32(24), udp6), want: udp6Want},
		{name: "null af_inet6 bsd big-endian", link: LinkNull, frame: cat(be32(24), udp6), want: udp6Want},
		{name: "null af_inet6 freebsd little-endian", link: LinkNull, frame: cat(le32(28), udp6), want: udp6Want},
		{name: "null af_inet6 freebsd big-endian", link: LinkNull, frame: cat(be32(28), udp6), want: udp6Want},
		{name: "null af_inet6 darwin little-endian", link: LinkNull, frame: cat(le32(30), udp6), want: udp6Want},
		{name: "null af_inet6 darwin big-endian", link: LinkNull, frame: cat(be32(30), udp6), want: udp6Want},
		{name: "null unknown family", link: LinkNull, frame: cat(le32(7), tcpSYN4), err: ErrNotIP},
		{name: "loop af_inet", link: LinkLoop, frame: cat(be32(2), tcpSYN4), want: tcpSYN4Want},
		{name: "loop af_inet6", link: LinkLoop, frame: cat(be32(24), udp6), want: udp6Want},
		{name: "loop af_inet6 little-endian", link: LinkLoop, frame: cat(le32(30), udp6), want: udp6Want},
		{name: "null af_inet6 carrying ipv4", link: LinkNull, frame: cat(le32(30), tcpSYN4[:20], make([]byte, 20)), err: ErrMalformed},

		// PPP.
		{name: "ppp without address/control", link: LinkPPP, frame: cat(be16(0x0021), tcpSYN4), want: tcpSYN4Want},
		{name: "ppp with ff03", link: LinkPPP, frame: cat([]byte{0xFF, 0x03}, be16(0x0057), udp6), want: udp6Want},
		{name: "ppp protocol field compressed", link: LinkPPP, frame: cat([]byte{0x21}, tcpSYN4), want: tcpSYN4Want},
		{name: "ppp hdlc ff03 ipv4", link: LinkPPPHDLC, frame: cat([]byte{0xFF, 0x03}, be16(0x0021), tcpSYN4), want: tcpSYN4Want},
		{name: "ppp hdlc ff03 compressed ipv6", link: LinkPPPHDLC, frame: cat([]byte{0xFF, 0x03, 0x57}, udp6), want: udp6Want},
		{name: "ppp mpls", link: LinkPPP, frame: cat([]byte{0xFF, 0x03}, be16(0x0281), mpls(1, tcpSYN4)), want: tcpSYN4Want},
		{name: "cisco hdlc", link: LinkPPPHDLC, frame: cat([]byte{0x0F, 0x00}, be16(0x0800), tcpSYN4), want: tcpSYN4Want},
		{name: "cisco hdlc broadcast ipv6", link: LinkPPPHDLC, frame: cat([]byte{0x8F, 0x00}, be16(0x86DD), udp6), want: udp6Want},
		{name: "ppp lcp", link: LinkPPP, frame: cat([]byte{0xFF, 0x03}, be16(0xC021), make([]byte, 10)), err: ErrNotIP},

		// Linux cooked v1.
		{name: "sll host ipv4 is ingress", link: LinkLinuxSLL, frame: sll(0, 1, 0x0800, tcpSYN4),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll otherhost ipv6 is ingress", link: LinkLinuxSLL, frame: sll(3, 1, 0x86DD, udp6),
			want: with(udp6Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll outgoing is egress", link: LinkLinuxSLL, frame: sll(4, 1, 0x0800, tcpSYN4),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionEgress })},
		{name: "sll loopback packet type has no direction", link: LinkLinuxSLL, frame: sll(5, 772, 0x0800, tcpSYN4), want: tcpSYN4Want},
		{name: "sll ipgre device: protocol is a gre type", link: LinkLinuxSLL, frame: sll(0, 778, 0x86DD, udp6),
			want: with(udp6Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll tun device (arphrd none)", link: LinkLinuxSLL, frame: sll(4, 0xFFFE, 0x0800, tcpSYN4),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionEgress })},
		{name: "sll protocol 0x0004 is 802.2 llc", link: LinkLinuxSLL, frame: sll(0, 1, 0x0004, snap(0x0800, tcpSYN4)),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll protocol 0x0001 is novell 802.3", link: LinkLinuxSLL, frame: sll(0, 1, 0x0001, cat([]byte{0xFF, 0xFF}, tcpSYN4)), err: ErrNotIP},
		{name: "sll protocol 0x0007 is ppp hdlc", link: LinkLinuxSLL, frame: sll(0, 512, 0x0007, cat([]byte{0xFF, 0x03}, be16(0x0021), tcpSYN4)),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll can frame", link: LinkLinuxSLL, frame: sll(0, 280, 0x000C, make([]byte, 16)), err: ErrNotIP},
		{name: "sll netlink is never ip", link: LinkLinuxSLL, frame: sll(4, 824, 0x0004, snap(0x0800, tcpSYN4)), err: ErrNotIP},
		{name: "sll netlink with an ethertype-looking family", link: LinkLinuxSLL, frame: sll(4, 824, 0x0800, tcpSYN4), err: ErrNotIP},
		{name: "sll vlan tag kept in payload", link: LinkLinuxSLL, frame: sll(0, 1, 0x8100, tag(9, 0x0800, tcpSYN4)),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll arp", link: LinkLinuxSLL, frame: sll(1, 1, 0x0806, make([]byte, 28)), err: ErrNotIP},

		// Linux cooked v2.
		{name: "sll2 outgoing ipv4", link: LinkLinuxSLL2, frame: sll2(4, 1, 0x0800, tcpSYN4),
			want: with(tcpSYN4Want, func(p *Packet) { p.Direction = flow.DirectionEgress })},
		{name: "sll2 host ipv6", link: LinkLinuxSLL2, frame: sll2(0, 1, 0x86DD, udp6),
			want: with(udp6Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll2 protocol 0x0004 is 802.2 llc", link: LinkLinuxSLL2, frame: sll2(2, 1, 0x0004, snap(0x86DD, udp6)),
			want: with(udp6Want, func(p *Packet) { p.Direction = flow.DirectionIngress })},
		{name: "sll2 netlink", link: LinkLinuxSLL2, frame: sll2(4, 824, 0x0800, tcpSYN4), err: ErrNotIP},
		{name: "sll2 arp", link: LinkLinuxSLL2, frame: sll2(1, 1, 0x0806, make([]byte, 28)), err: ErrNotIP},

		// Errors.
		{name: "unsupported link type", link: 147, frame: tcpSYN4, err: ErrUnsupportedLink},
		{name: "empty ethernet", link: LinkEthernet, frame: nil, err: ErrTruncated},
		{name: "ethernet header cut", link: LinkEthernet, frame: eth(0x0800, nil)[:13], err: ErrTruncated},
		{name: "ipv4 header cut at 19 bytes", link: LinkEthernet, frame: eth(0x0800, tcpSYN4[:19]), err: ErrTruncated},
		{name: "ipv4 options not captured", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, ihl: 15}.bytes(nil)), err: ErrTruncated},
		{name: "ipv4 ihl below 5", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, ihl: 4}.bytes(tcp(1, 2, 2, nil))), err: ErrMalformed},
		{name: "ipv4 ethertype with version 6", link: LinkEthernet, frame: eth(0x0800, udp6), err: ErrMalformed},
		{name: "ipv4 total length shorter than the header", link: LinkEthernet,
			frame: eth(0x0800, ipv4{src: a4, dst: b4, proto: 6, total: 19}.bytes(tcp(1, 2, 2, nil))), err: ErrMalformed},
		{name: "ipv6 header cut at 39 bytes", link: LinkEthernet, frame: eth(0x86DD, udp6[:39]), err: ErrTruncated},
		{name: "ipv6 ethertype with version 4", link: LinkEthernet, frame: eth(0x86DD, tcpSYN4), err: ErrMalformed},
		{name: "vlan tag cut", link: LinkEthernet, frame: eth(0x8100, []byte{0, 1, 8}), err: ErrTruncated},
		{name: "sll header cut", link: LinkLinuxSLL, frame: sll(0, 1, 0x0800, nil)[:15], err: ErrTruncated},
		{name: "sll2 header cut", link: LinkLinuxSLL2, frame: sll2(0, 1, 0x0800, nil)[:19], err: ErrTruncated},
		{name: "null header cut", link: LinkNull, frame: []byte{2, 0, 0}, err: ErrTruncated},
		{name: "raw empty", link: LinkRaw, frame: nil, err: ErrTruncated},
	}
	return cases
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := Packet{Src: addr("203.0.113.99"), SrcPort: 1, Fragment: FragmentLater, Direction: flow.DirectionEgress} // must be overwritten
			err := Decode(tc.link, tc.frame, &got)
			if err != tc.err {
				t.Fatalf("Decode error = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("Decode =\n %+v\nwant\n %+v", got, tc.want)
			}
		})
	}
}

// TestDecodeEveryPrefix cuts each frame at every length: Decode must never
// panic, must return only its sentinels, must produce records only when the
// fixed IP header is complete, and must keep the addresses and length it
// reports for the whole frame.
func TestDecodeEveryPrefix(t *testing.T) {
	frames := []struct {
		link     uint32
		frame    []byte
		ipOffset int
		ipHeader int
	}{
		{LinkEthernet, eth(0x0800, tcpSYN4), 14, 20},
		{LinkEthernet, eth(0x8100, tag(1, 0x8100, tag(2, 0x86DD, udp6))), 22, 40},
		{LinkEthernet, eth(0x86DD, ipv6{src: a6, dst: b6, next: 0}.bytes(ext6(43, 1, srh6(44, 2, frag6(51, 0, true, 1, ah6(6, 1, tcp(1, 2, 2, nil))))))), 14, 40},
		{LinkEthernet, eth8023(snap(0x0800, ipv4{src: a4, dst: b4, proto: 17, options: make([]byte, 8)}.bytes(udp(1, 2, nil)))), 22, 28},
		{LinkEthernet, eth(0x88A8, tag(3, 0x8864, pppoe(0x0021, tcpSYN4))), 26, 20},
		{LinkEthernet, eth(0x8847, mpls(3, udp6)), 26, 40},
		{LinkLinuxSLL, sll(0, 1, 0x0004, snap(0x86DD, udp6)), 24, 40},
		{LinkLinuxSLL2, sll2(4, 1, 0x0800, tcpSYN4), 20, 20},
		{LinkNull, cat(be32(30), udp6), 4, 40},
		{LinkPPPHDLC, cat([]byte{0xFF, 0x03}, be16(0x0281), mpls(2, tcpSYN4)), 12, 20},
		{LinkRaw, tcpSYN4, 0, 20},
	}
	for i, f := range frames {
		var full Packet
		if err := Decode(f.link, f.frame, &full); err != nil {
			t.Fatalf("frame %d: full frame does not decode: %v", i, err)
		}
		for n := 0; n <= len(f.frame); n++ {
			var p Packet
			err := Decode(f.link, f.frame[:n:n], &p)
			complete := n >= f.ipOffset+f.ipHeader
			switch {
			case complete && err != nil:
				t.Errorf("frame %d cut at %d: error %v with the IP header complete", i, n, err)
			case !complete && err != ErrTruncated:
				t.Errorf("frame %d cut at %d: error %v, want ErrTruncated", i, n, err)
			case err == nil && (p.Src != full.Src || p.Dst != full.Dst || p.Length != full.Length || p.IPv6 != full.IPv6):
				t.Errorf("frame %d cut at %d: %+v disagrees with the full frame %+v", i, n, p, full)
			case err == nil && p.SrcPort != 0 && (p.SrcPort != full.SrcPort || p.DstPort != full.DstPort):
				t.Errorf("frame %d cut at %d: ports %d %d, full frame %d %d", i, n, p.SrcPort, p.DstPort, full.SrcPort, full.DstPort)
			case err != nil && p != (Packet{}):
				t.Errorf("frame %d cut at %d: error %v left %+v", i, n, err, p)
			}
		}
	}
}

func TestFragmentString(t *testing.T) {
	for f, want := range map[Fragment]string{FragmentNone: "none", FragmentFirst: "first", FragmentLater: "later", 9: "unknown"} {
		if got := f.String(); got != want {
			t.Errorf("Fragment(%d).String() = %q, want %q", f, got, want)
		}
	}
}
