package decode

import (
	"encoding/binary"
	"net/netip"
)

// IP protocol numbers the decoder looks at.
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDstOpts  = 60
	protoSCTP     = 132
)

func decodeIPv4(b []byte, p *Packet) error {
	if len(b) < 20 {
		return ErrTruncated
	}
	if b[0]>>4 != 4 {
		return ErrMalformed
	}
	headerLen := int(b[0]&0x0F) * 4
	if headerLen < 20 {
		return ErrMalformed
	}
	if len(b) < headerLen {
		return ErrTruncated
	}
	total := int(binary.BigEndian.Uint16(b[2:4]))
	switch {
	case total == 0:
		// Captured before segmentation offload filled it in: the frame
		// itself is all we know.
		total = len(b)
	case total < headerLen:
		return ErrMalformed
	case total < len(b):
		// Whatever follows the datagram (Ethernet padding, trailers) is not
		// part of it and must not be read as L4 bytes.
		b = b[:total]
	}
	p.Length = uint32(total)
	p.Protocol = b[9]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))

	fragField := binary.BigEndian.Uint16(b[6:8])
	if fragField&0x1FFF != 0 {
		p.Fragment = FragmentLater
		p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
		return nil
	}
	if fragField&0x2000 != 0 {
		p.Fragment = FragmentFirst
		p.FragID = uint32(binary.BigEndian.Uint16(b[4:6]))
	}
	decodeTransport(b[headerLen:], p)
	return nil
}

func decodeIPv6(b []byte, p *Packet) error {
	if len(b) < 40 {
		return ErrTruncated
	}
	if b[0]>>4 != 6 {
		return ErrMalformed
	}
	payloadLen := int(binary.BigEndian.Uint16(b[4:6]))
	if payloadLen == 0 {
		// A jumbogram (or a packet captured before segmentation offload):
		// the declared length is elsewhere or nowhere; count what is there.
		p.Length = uint32(len(b))
	} else {
		total := 40 + payloadLen
		p.Length = uint32(total)
		if total < len(b) {
			b = b[:total]
		}
	}
	p.IPv6 = true
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))

	next := b[6]
	off := 40
	// Each extension header is at least 8 bytes long, so the walk ends
	// within len(b)/8 steps whatever the chain says.
	for {
		var size int
		switch next {
		case protoHopByHop, protoRouting, protoDstOpts:
			if len(b)-off < 2 {
				p.Protocol = next
				return nil
			}
			size = (int(b[off+1]) + 1) * 8
		case protoAH:
			if len(b)-off < 2 {
				p.Protocol = next
				return nil
			}
			size = (int(b[off+1]) + 2) * 4
		case protoFragment:
			if len(b)-off < 8 {
				p.Protocol = next
				return nil
			}
			offsetAndFlags := binary.BigEndian.Uint16(b[off+2 : off+4])
			ident := binary.BigEndian.Uint32(b[off+4 : off+8])
			if offsetAndFlags>>3 != 0 {
				p.Fragment = FragmentLater
				p.FragID = ident
				p.Protocol = b[off]
				return nil
			}
			if offsetAndFlags&0x0001 != 0 && p.Fragment == FragmentNone {
				p.Fragment = FragmentFirst
				p.FragID = ident
			}
			size = 8
		default:
			p.Protocol = next
			decodeTransport(b[off:], p)
			return nil
		}
		if len(b)-off < size {
			// The header's own next-header byte is captured, but the header
			// is not complete: it is the one that could not be read.
			p.Protocol = next
			return nil
		}
		next = b[off]
		off += size
	}
}

// decodeTransport reads ports and TCP flags from the L4 header, as far as it
// is captured.
func decodeTransport(l4 []byte, p *Packet) {
	switch p.Protocol {
	case protoTCP:
		if len(l4) >= 14 {
			p.TCPFlags = l4[13]
		}
		fallthrough
	case protoUDP, protoSCTP:
		if len(l4) >= 4 {
			p.SrcPort = binary.BigEndian.Uint16(l4[0:2])
			p.DstPort = binary.BigEndian.Uint16(l4[2:4])
		}
	}
}
