package decode

import (
	"encoding/binary"
	"net/netip"
)

// Builders of hand-made frames. Each returns a fresh slice; the outer layer
// wraps the inner one, e.g. eth(0x0800, ipv4{...}.bytes(tcp(...))).

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// ipv4 describes an IPv4 header; zero values give a plain unfragmented one.
type ipv4 struct {
	src, dst string
	proto    uint8
	id       uint16
	mf       bool
	fragOff  uint16 // in 8-byte units
	options  []byte // multiple of 4 bytes
	total    int    // total-length field; 0 means computed, -1 means write 0
	ihl      int    // IHL override (words); 0 means computed
	version  uint8  // 0 means 4
}

func (h ipv4) bytes(payload []byte) []byte {
	hl := 20 + len(h.options)
	ihl := hl / 4
	if h.ihl != 0 {
		ihl = h.ihl
	}
	version := h.version
	if version == 0 {
		version = 4
	}
	total := hl + len(payload)
	switch {
	case h.total > 0:
		total = h.total
	case h.total < 0:
		total = 0
	}
	b := make([]byte, 20, hl+len(payload))
	b[0] = version<<4 | uint8(ihl)
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint16(b[4:], h.id)
	frag := h.fragOff & 0x1FFF
	if h.mf {
		frag |= 0x2000
	}
	binary.BigEndian.PutUint16(b[6:], frag)
	b[8] = 64
	b[9] = h.proto
	src, dst := netip.MustParseAddr(h.src).As4(), netip.MustParseAddr(h.dst).As4()
	copy(b[12:], src[:])
	copy(b[16:], dst[:])
	b = append(b, h.options...)
	return append(b, payload...)
}

// ipv6 describes an IPv6 fixed header; next is its next-header field.
type ipv6 struct {
	src, dst string
	next     uint8
	plen     int // payload-length field; 0 means computed, -1 means write 0
}

func (h ipv6) bytes(payload []byte) []byte {
	plen := len(payload)
	switch {
	case h.plen > 0:
		plen = h.plen
	case h.plen < 0:
		plen = 0
	}
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(plen))
	b[6] = h.next
	b[7] = 64
	src, dst := netip.MustParseAddr(h.src).As16(), netip.MustParseAddr(h.dst).As16()
	copy(b[8:], src[:])
	copy(b[24:], dst[:])
	return append(b, payload...)
}

// ext6 is a hop-by-hop, routing or destination-options header of 8*(units+1)
// bytes (filled with PadN-like zeros) followed by payload.
func ext6(next uint8, units uint8, payload []byte) []byte {
	b := make([]byte, 8*(int(units)+1))
	b[0] = next
	b[1] = units
	return append(b, payload...)
}

// srh6 is a segment routing header (routing type 4) listing n segments.
func srh6(next uint8, segments int, payload []byte) []byte {
	b := make([]byte, 8+16*segments)
	b[0] = next
	b[1] = uint8(2 * segments)
	b[2] = 4 // routing type: segment routing
	b[3] = uint8(segments - 1)
	b[4] = uint8(segments - 1)
	for i := 0; i < segments; i++ {
		a := netip.MustParseAddr("2001:db8:5::1").As16()
		a[15] = byte(i)
		copy(b[8+16*i:], a[:])
	}
	return append(b, payload...)
}

// ah6 is an authentication header whose length field is lenField: it spans
// (lenField+2)*4 bytes (RFC 4302), unlike the other extension headers.
func ah6(next uint8, lenField uint8, payload []byte) []byte {
	b := make([]byte, (int(lenField)+2)*4)
	b[0] = next
	b[1] = lenField
	return append(b, payload...)
}

func frag6(next uint8, offset uint16, more bool, ident uint32, payload []byte) []byte {
	b := make([]byte, 8)
	b[0] = next
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(b[2:], v)
	binary.BigEndian.PutUint32(b[4:], ident)
	return append(b, payload...)
}

func tcp(sport, dport uint16, flags uint8, payload []byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	b[12] = 5 << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 65535)
	return append(b, payload...)
}

func udp(sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	return append(b, payload...)
}

func sctp(sport, dport uint16) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	return b
}

func icmp(typ, code uint8, payload []byte) []byte {
	return append([]byte{typ, code, 0, 0, 0, 1, 0, 1}, payload...)
}

var (
	macDst = []byte{0x02, 0, 0, 0, 0, 0x01}
	macSrc = []byte{0x02, 0, 0, 0, 0, 0x02}
)

func eth(etype uint16, payload []byte) []byte {
	return cat(macDst, macSrc, be16(etype), payload)
}

// eth8023 is an 802.3 frame: a length field instead of an ethertype.
func eth8023(payload []byte) []byte {
	return cat(macDst, macSrc, be16(uint16(len(payload))), payload)
}

func snap(etype uint16, payload []byte) []byte {
	return cat([]byte{0xAA, 0xAA, 0x03, 0, 0, 0}, be16(etype), payload)
}

// tag is a VLAN tag (TCI with the given VLAN id) announcing etype.
func tag(vlan uint16, etype uint16, payload []byte) []byte {
	return cat(be16(0xA000|vlan), be16(etype), payload)
}

func pppoe(proto uint16, payload []byte) []byte {
	return cat([]byte{0x11, 0x00}, be16(0x1234), be16(uint16(2+len(payload))), be16(proto), payload)
}

// mpls builds a label stack of n entries, bottom-of-stack on the last.
func mpls(n int, payload []byte) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		label := uint32(16+i) << 12
		if i == n-1 {
			label |= 0x100
		}
		b = append(b, be32(label|64)...)
	}
	return append(b, payload...)
}

func sll(pkttype, arphrd, proto uint16, payload []byte) []byte {
	return cat(be16(pkttype), be16(arphrd), be16(6), []byte{2, 0, 0, 0, 0, 3, 0, 0}, be16(proto), payload)
}

func sll2(pkttype uint8, arphrd, proto uint16, payload []byte) []byte {
	return cat(be16(proto), be16(0), be32(7), be16(arphrd), []byte{pkttype, 6}, []byte{2, 0, 0, 0, 0, 3, 0, 0}, payload)
}
