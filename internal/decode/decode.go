// Package decode owns the packet decoder: it turns the bytes of one captured
// frame into the facts a flow record needs (addresses, ports, protocol,
// IP-layer length, TCP flags, fragment position, capture direction), without
// allocating.
//
// It implements the offline semantics shared by every flowlog source: which
// frames are recorded at all (only IPv4/IPv6 whose fixed header was captured),
// which encapsulations are unwrapped (Ethernet, LLC/SNAP, VLAN tags of any
// depth, Linux cooked SLL/SLL2, raw IP, BSD null/loop, PPP, PPPoE, MPLS) and
// which are not (tunnels: the outer IP header is the record), how the length
// is counted, how IPv6 extension headers are skipped, and how non-first
// fragments inherit the ports of their first fragment (Fragments).
package decode

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/flowlog/flowlog/flow"
)

// Link types: values of the pcap/pcapng LINKTYPE_* registry that Decode
// understands. Decode masks the argument with 0xFFFF first, as the upper bits
// of the pcap link-type field carry FCS-length and reserved flags.
const (
	LinkNull       = 0   // BSD loopback: 4-byte address family in the capturing host's byte order
	LinkEthernet   = 1   // Ethernet II and 802.3 with LLC/SNAP
	LinkPPP        = 9   // PPP, with or without the HDLC address/control bytes
	LinkRawBSD     = 12  // raw IP under the DLT_RAW value most BSDs and Linux used in old files
	LinkRawOpenBSD = 14  // raw IP under OpenBSD's DLT_RAW value
	LinkPPPHDLC    = 50  // PPP in HDLC-like framing (RFC 1662), or Cisco HDLC
	LinkRaw        = 101 // raw IP, version from the first nibble
	LinkLoop       = 108 // OpenBSD loopback: address family in network byte order
	LinkLinuxSLL   = 113 // Linux cooked capture v1
	LinkIPv4       = 228 // raw IPv4
	LinkIPv6       = 229 // raw IPv6
	LinkLinuxSLL2  = 276 // Linux cooked capture v2
)

// Sentinel errors of Decode. They are the only errors it returns, so callers
// can count them with errors.Is or ==, and the error paths do not allocate.
var (
	// ErrUnsupportedLink: Decode does not know the link type.
	ErrUnsupportedLink = errors.New("decode: unsupported link type")
	// ErrNotIP: the frame carries something other than IPv4 or IPv6 (ARP,
	// LLDP, STP, an unknown ethertype or PPP protocol, a non-IP MPLS payload).
	ErrNotIP = errors.New("decode: not an IP packet")
	// ErrTruncated: the capture ends before the link-layer headers or the
	// fixed IP header (IPv4: IHL*4 bytes, IPv6: 40 bytes) are complete.
	ErrTruncated = errors.New("decode: truncated before the end of the IP header")
	// ErrMalformed: the IP header is captured but invalid: a version that
	// does not match the encapsulation, an IHL below 5, or an IPv4 total
	// length shorter than the header.
	ErrMalformed = errors.New("decode: malformed IP header")
)

// Fragment tells where a packet sits in a fragmented IP datagram.
type Fragment uint8

const (
	// FragmentNone: not a fragment (also an IPv6 atomic fragment, offset 0
	// with M=0).
	FragmentNone Fragment = iota
	// FragmentFirst: offset 0 with more-fragments set; carries the L4 header.
	FragmentFirst
	// FragmentLater: offset > 0; carries no L4 header, so no ports or flags
	// until Fragments.Resolve supplies the first fragment's ports.
	FragmentLater
)

// String names the fragment position.
func (f Fragment) String() string {
	switch f {
	case FragmentNone:
		return "none"
	case FragmentFirst:
		return "first"
	case FragmentLater:
		return "later"
	}
	return "unknown"
}

// Packet holds the flow facts of one decoded frame.
type Packet struct {
	// Src and Dst are the outer IP header's addresses; IPv6 addresses stay
	// IPv6 even when they are IPv4-mapped.
	Src, Dst netip.Addr
	// SrcPort and DstPort are set for TCP, UDP and SCTP when at least 4 bytes
	// of the L4 header are captured; 0 otherwise and for later fragments.
	SrcPort uint16
	DstPort uint16
	// Protocol is the IPv4 protocol field, or for IPv6 the upper-layer
	// protocol after the hop-by-hop, routing, fragment, destination-options
	// and AH headers. When that chain runs off the captured bytes, it is the
	// next-header value naming the header that could not be read.
	Protocol uint8
	// TCPFlags is the raw TCP flags byte (TCP offset 13) when captured; 0 for
	// other protocols and later fragments. flow.ReportedTCPFlags reduces it
	// to what the tcp-flags field reports.
	TCPFlags uint8
	// Length is the IP-layer length the header declares: IPv4 total length,
	// IPv6 payload length + 40, even when the capture is cut short. An IPv6
	// jumbogram (payload length 0) counts 40 + the captured bytes after the
	// fixed header; an IPv4 total length of 0 (captured before TCP
	// segmentation offload) counts the captured bytes from the IP header on.
	Length uint32
	// IPv6 reports whether the outer IP header is IPv6.
	IPv6 bool
	// Fragment and FragID describe IP fragmentation. FragID is the IPv4
	// identification or the IPv6 fragment identification, and 0 when
	// Fragment is FragmentNone.
	Fragment Fragment
	FragID   uint32
	// Direction comes from the Linux cooked header's packet type (outgoing
	// is egress, host/broadcast/multicast/otherhost is ingress); it is
	// DirectionUnknown for every other link type.
	Direction flow.Direction
}

// Decode decodes one frame of the given link type into *p, overwriting every
// field. On error *p is the zero Packet and the error is one of the package's
// sentinels. Decode never reads outside data and never allocates.
func Decode(link uint32, data []byte, p *Packet) error {
	*p = Packet{}
	err := decodeLink(link&0xFFFF, data, p)
	if err != nil {
		*p = Packet{}
	}
	return err
}

func decodeLink(link uint32, b []byte, p *Packet) error {
	switch link {
	case LinkEthernet:
		return decodeEthernet(b, p)
	case LinkRaw, LinkRawBSD, LinkRawOpenBSD:
		return decodeRawIP(b, p)
	case LinkIPv4:
		return decodeIPv4(b, p)
	case LinkIPv6:
		return decodeIPv6(b, p)
	case LinkLinuxSLL:
		return decodeSLL(b, p)
	case LinkLinuxSLL2:
		return decodeSLL2(b, p)
	case LinkNull, LinkLoop:
		return decodeNull(b, p)
	case LinkPPP, LinkPPPHDLC:
		return decodePPP(b, p)
	}
	return ErrUnsupportedLink
}

// Ethertypes and other protocol numbers of the link layers.
const (
	etherTypeIPv4       = 0x0800
	etherTypeIPv6       = 0x86DD
	etherTypeVLAN       = 0x8100 // 802.1Q
	etherTypeQinQ       = 0x88A8 // 802.1ad service tag
	etherTypeQinQOld    = 0x9100 // pre-standard QinQ outer tag
	etherTypePPPoE      = 0x8864 // PPPoE session stage
	etherTypeMPLS       = 0x8847
	etherTypeMPLSMulti  = 0x8848
	etherTypeMin        = 0x0600 // smaller values are 802.3 lengths or Linux internal protocols
	maxIEEE8023Length   = 1500
	pppIPv4             = 0x0021
	pppIPv6             = 0x0057
	pppMPLS             = 0x0281
	pppMPLSMulti        = 0x0283
	sllProtoLLC         = 0x0004 // ETH_P_802_2: the payload starts with an 802.2 LLC header
	sllProtoPPPHDLC     = 0x0007 // PPP frames in HDLC framing
	arphrdFRAD          = 770    // frame relay: the payload is a Q.922 frame
	arphrdIEEE80211     = 801
	arphrdIEEE80211Prsm = 802
	arphrdRadiotap      = 803
	arphrdIEEE802154    = 804
	arphrdNetlink       = 824 // nlmon: the protocol field is a netlink family
	arphrdVsockMon      = 826
)

func decodeEthernet(b []byte, p *Packet) error {
	if len(b) < 14 {
		return ErrTruncated
	}
	return decodeEtherType(binary.BigEndian.Uint16(b[12:14]), b[14:], p)
}

// decodeEtherType follows the chain of link-layer headers that an ethertype
// announces (VLAN tags, LLC/SNAP, PPPoE, MPLS) down to the IP header. Every
// step consumes bytes, so the loop ends.
func decodeEtherType(etype uint16, b []byte, p *Packet) error {
	for {
		switch etype {
		case etherTypeIPv4:
			return decodeIPv4(b, p)
		case etherTypeIPv6:
			return decodeIPv6(b, p)
		case etherTypeVLAN, etherTypeQinQ, etherTypeQinQOld:
			// Tag control information, then the next ethertype (or an
			// 802.3 length when LLC follows).
			if len(b) < 4 {
				return ErrTruncated
			}
			etype = binary.BigEndian.Uint16(b[2:4])
			b = b[4:]
		case etherTypePPPoE:
			// Version/type, code, session id, length; then the PPP protocol.
			if len(b) < 6 {
				return ErrTruncated
			}
			return decodePPPProtocol(b[6:], p)
		case etherTypeMPLS, etherTypeMPLSMulti:
			return decodeMPLS(b, p)
		default:
			if etype <= maxIEEE8023Length {
				return decodeLLC(b, p)
			}
			return ErrNotIP
		}
	}
}

// decodeLLC handles an 802.2 LLC header; only SNAP (AA AA 03) with an
// ethertype can lead to IP.
func decodeLLC(b []byte, p *Packet) error {
	if len(b) < 3 {
		return ErrTruncated
	}
	if b[0] != 0xAA || b[1] != 0xAA || b[2] != 0x03 {
		return ErrNotIP
	}
	if len(b) < 8 {
		return ErrTruncated
	}
	etype := binary.BigEndian.Uint16(b[6:8])
	if etype < etherTypeMin {
		return ErrNotIP
	}
	return decodeEtherType(etype, b[8:], p)
}

// decodeMPLS skips the label stack up to the bottom-of-stack entry and
// guesses the payload from its first nibble, as MPLS does not say what it
// carries.
func decodeMPLS(b []byte, p *Packet) error {
	for {
		if len(b) < 4 {
			return ErrTruncated
		}
		bottom := b[2]&0x01 != 0
		b = b[4:]
		if bottom {
			break
		}
	}
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p)
	case 6:
		return decodeIPv6(b, p)
	}
	return ErrNotIP
}

func decodeRawIP(b []byte, p *Packet) error {
	if len(b) < 1 {
		return ErrTruncated
	}
	switch b[0] >> 4 {
	case 4:
		return decodeIPv4(b, p)
	case 6:
		return decodeIPv6(b, p)
	}
	return ErrNotIP
}

// decodeNull handles BSD null and OpenBSD loop headers: a 4-byte address
// family. Null is in the byte order of the capturing host and loop should be
// big-endian, but both appear either way; families are small, so a value
// above 0xFFFF is the other byte order.
func decodeNull(b []byte, p *Packet) error {
	if len(b) < 4 {
		return ErrTruncated
	}
	family := binary.LittleEndian.Uint32(b[:4])
	if family > 0xFFFF {
		family = binary.BigEndian.Uint32(b[:4])
	}
	switch family {
	case 2: // AF_INET everywhere
		return decodeIPv4(b[4:], p)
	case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
		return decodeIPv6(b[4:], p)
	}
	return ErrNotIP
}

// decodePPP handles PPP with or without the HDLC address/control bytes
// (FF 03), and Cisco HDLC (address 0x0F or 0x8F, control 0, ethertype), which
// LINKTYPE_PPP_HDLC also carries.
func decodePPP(b []byte, p *Packet) error {
	if len(b) < 2 {
		return ErrTruncated
	}
	switch {
	case b[0] == 0xFF && b[1] == 0x03:
		b = b[2:]
	case (b[0] == 0x0F || b[0] == 0x8F) && b[1] == 0x00:
		if len(b) < 4 {
			return ErrTruncated
		}
		return decodeEtherType(binary.BigEndian.Uint16(b[2:4]), b[4:], p)
	}
	return decodePPPProtocol(b, p)
}

// decodePPPProtocol reads a PPP protocol field (two bytes, or one when
// protocol-field compression left an odd first byte) and its payload.
func decodePPPProtocol(b []byte, p *Packet) error {
	if len(b) < 1 {
		return ErrTruncated
	}
	var proto uint16
	if b[0]&0x01 != 0 {
		proto = uint16(b[0])
		b = b[1:]
	} else {
		if len(b) < 2 {
			return ErrTruncated
		}
		proto = binary.BigEndian.Uint16(b[:2])
		b = b[2:]
	}
	switch proto {
	case pppIPv4:
		return decodeIPv4(b, p)
	case pppIPv6:
		return decodeIPv6(b, p)
	case pppMPLS, pppMPLSMulti:
		return decodeMPLS(b, p)
	}
	return ErrNotIP
}

// sllDirection maps the Linux packet type (PACKET_HOST … PACKET_OUTGOING) to
// a flow direction; loopback, user and kernel types say nothing.
func sllDirection(pkttype uint16) flow.Direction {
	switch {
	case pkttype <= 3:
		return flow.DirectionIngress
	case pkttype == 4:
		return flow.DirectionEgress
	}
	return flow.DirectionUnknown
}

// Linux cooked v1: packet type, ARPHRD type, address length, 8 address
// bytes, protocol.
func decodeSLL(b []byte, p *Packet) error {
	if len(b) < 16 {
		return ErrTruncated
	}
	p.Direction = sllDirection(binary.BigEndian.Uint16(b[0:2]))
	return decodeSLLPayload(binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint16(b[14:16]), b[16:], p)
}

// Linux cooked v2: protocol, reserved, interface index, ARPHRD type, packet
// type, address length, 8 address bytes.
func decodeSLL2(b []byte, p *Packet) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	p.Direction = sllDirection(uint16(b[10]))
	return decodeSLLPayload(binary.BigEndian.Uint16(b[8:10]), binary.BigEndian.Uint16(b[0:2]), b[20:], p)
}

// decodeSLLPayload interprets the cooked header's protocol field. It is an
// ethertype (or, on GRE devices, a GRE protocol type, which uses the same
// values for IP) unless it is below 0x0600, where Linux stores internal
// protocol numbers; on some device types it means something else entirely.
func decodeSLLPayload(arphrd, proto uint16, b []byte, p *Packet) error {
	switch arphrd {
	case arphrdNetlink, arphrdVsockMon, arphrdFRAD,
		arphrdIEEE80211, arphrdIEEE80211Prsm, arphrdRadiotap, arphrdIEEE802154:
		return ErrNotIP
	}
	if proto >= etherTypeMin {
		return decodeEtherType(proto, b, p)
	}
	switch proto {
	case sllProtoLLC:
		return decodeLLC(b, p)
	case sllProtoPPPHDLC:
		return decodePPP(b, p)
	}
	return ErrNotIP
}
