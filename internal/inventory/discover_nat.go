package inventory

import (
	"encoding/binary"
	"net/netip"
)

// This file decodes conntrack (ctnetlink) messages: the tuples of a
// connection the host tracks, in the original direction and in the reply
// direction, which differ where the host translates addresses.

// Tuple is one direction of a tracked connection.
type Tuple struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Protocol         uint8
}

// reverse is the tuple of the packets going the other way.
func (t Tuple) reverse() Tuple {
	return Tuple{Src: t.Dst, Dst: t.Src, SrcPort: t.DstPort, DstPort: t.SrcPort, Protocol: t.Protocol}
}

// ctnetlink attribute types (linux/netfilter/nfnetlink_conntrack.h).
const (
	ctaTupleOrig  = 1
	ctaTupleReply = 2
	ctaTupleIP    = 1
	ctaTupleProto = 2
	ctaIPv4Src    = 1
	ctaIPv4Dst    = 2
	ctaIPv6Src    = 3
	ctaIPv6Dst    = 4
	ctaProtoNum   = 1
	ctaProtoSrc   = 2
	ctaProtoDst   = 3
	nlaTypeMask   = 0x3FFF // without NLA_F_NESTED and NLA_F_NET_BYTEORDER
	nfgenHeader   = 4      // struct nfgenmsg before the attributes
)

// ParseConntrack decodes the body of a ctnetlink message (after the
// netlink header: nfgenmsg and attributes) into its original and reply
// tuples; ok is false when either is missing or malformed. Ports are
// those of TCP, UDP, UDP-Lite, SCTP and DCCP; 0 for other protocols.
func ParseConntrack(data []byte) (orig, reply Tuple, ok bool) {
	if len(data) < nfgenHeader {
		return orig, reply, false
	}
	var haveOrig, haveReply bool
	for typ, val := range attrs(data[nfgenHeader:]) {
		switch typ {
		case ctaTupleOrig:
			orig, haveOrig = parseTuple(val)
		case ctaTupleReply:
			reply, haveReply = parseTuple(val)
		}
	}
	return orig, reply, haveOrig && haveReply
}

func parseTuple(b []byte) (t Tuple, ok bool) {
	var haveProto bool
	var sport, dport uint16
	for typ, val := range attrs(b) {
		switch typ {
		case ctaTupleIP:
			for at, av := range attrs(val) {
				switch {
				case (at == ctaIPv4Src || at == ctaIPv4Dst) && len(av) == 4:
					a := netip.AddrFrom4([4]byte(av))
					if at == ctaIPv4Src {
						t.Src = a
					} else {
						t.Dst = a
					}
				case (at == ctaIPv6Src || at == ctaIPv6Dst) && len(av) == 16:
					a := netip.AddrFrom16([16]byte(av))
					if at == ctaIPv6Src {
						t.Src = a
					} else {
						t.Dst = a
					}
				}
			}
		case ctaTupleProto:
			for pt, pv := range attrs(val) {
				switch {
				case pt == ctaProtoNum && len(pv) == 1:
					t.Protocol, haveProto = pv[0], true
				case pt == ctaProtoSrc && len(pv) == 2:
					sport = binary.BigEndian.Uint16(pv)
				case pt == ctaProtoDst && len(pv) == 2:
					dport = binary.BigEndian.Uint16(pv)
				}
			}
		}
	}
	if hasPorts(t.Protocol) {
		t.SrcPort, t.DstPort = sport, dport
	}
	ok = haveProto && t.Src.IsValid() && t.Dst.IsValid() && t.Src.Is4() == t.Dst.Is4()
	return t, ok
}

// hasPorts reports whether conntrack tuples of the protocol carry the
// ports records show (TCP, UDP, DCCP, SCTP, UDP-Lite).
func hasPorts(proto uint8) bool {
	switch proto {
	case 6, 17, 33, 132, 136:
		return true
	}
	return false
}

// attrs iterates over netlink attributes (type without flags, value),
// stopping at the first malformed one.
func attrs(b []byte) func(yield func(uint16, []byte) bool) {
	return func(yield func(uint16, []byte) bool) {
		for len(b) >= 4 {
			l := int(binary.NativeEndian.Uint16(b))
			typ := binary.NativeEndian.Uint16(b[2:]) & nlaTypeMask
			if l < 4 || l > len(b) {
				return
			}
			if !yield(typ, b[4:l]) {
				return
			}
			l = (l + 3) &^ 3
			if l > len(b) {
				return
			}
			b = b[l:]
		}
	}
}

// NAT holds the connections a host (one network namespace) translates,
// from conntrack, and answers which addresses the packets of a flow had
// before and after the translation.
//
// A tracked connection has an original tuple O (as its first packet
// arrived, before any translation) and a reply tuple R (as replies arrive,
// before they are translated back). Without NAT, R is O reversed. With
// source NAT (masquerade) or destination NAT (port forwarding) it is not,
// and a flow seen on an interface has one of four shapes: O (original
// direction, not yet translated: the inside), O-after-NAT = R reversed
// (original direction, translated), R (reply direction, not yet
// translated back) or R-translated-back = O reversed. For all four the
// endpoints are the same: the original direction's packets come from
// O.src and are delivered to R.src; the reply direction's come from R.src
// and are delivered to O.src. Lookup returns exactly those as pkt-srcaddr
// and pkt-dstaddr: the source before the host's translation and the
// destination after it.
//
// Only TCP, UDP, UDP-Lite, SCTP and DCCP are tracked: their ports
// identify the connection; ICMP identifiers are not in a record's key.
// Entries of ended connections are kept for the keep duration given to
// Observe/Forget callers (records of the window they ended in are built
// when the window closes).
type NAT struct {
	entries map[Tuple]natEntry
}

type natEntry struct {
	pktSrc, pktDst netip.Addr
	ended          int64 // Unix seconds the connection ended; 0 while it lives
}

// NewNAT returns an empty table.
func NewNAT() *NAT { return &NAT{entries: map[Tuple]natEntry{}} }

// Len is the number of flow shapes held (four per translated connection).
func (n *NAT) Len() int { return len(n.entries) }

// Observe records a tracked connection; one without translation (or of
// a protocol without ports) is ignored.
func (n *NAT) Observe(orig, reply Tuple) {
	if !hasPorts(orig.Protocol) || orig == reply.reverse() || orig.Protocol != reply.Protocol {
		return
	}
	// A tuple equal to its own reverse (same address and port on both
	// ends) cannot tell the two directions apart: mapping it would let the
	// reply's entry overwrite the original's.
	if orig == orig.reverse() || reply == reply.reverse() {
		return
	}
	fwd := natEntry{pktSrc: orig.Src, pktDst: reply.Src}
	back := natEntry{pktSrc: reply.Src, pktDst: orig.Src}
	n.entries[orig] = fwd
	n.entries[reply.reverse()] = fwd
	n.entries[reply] = back
	n.entries[orig.reverse()] = back
}

// Ended marks a connection as ended at Unix second now; Prune removes it
// later.
func (n *NAT) Ended(orig, reply Tuple, now int64) {
	for _, t := range [...]Tuple{orig, reply.reverse(), reply, orig.reverse()} {
		if e, ok := n.entries[t]; ok {
			e.ended = now
			n.entries[t] = e
		}
	}
}

// Prune removes connections that ended before Unix second before.
func (n *NAT) Prune(before int64) {
	for t, e := range n.entries {
		if e.ended != 0 && e.ended < before {
			delete(n.entries, t)
		}
	}
}

// Lookup returns the packet-level source and destination of a flow seen
// with tuple t: ok is false when the host does not translate it.
func (n *NAT) Lookup(t Tuple) (pktSrc, pktDst netip.Addr, ok bool) {
	e, ok := n.entries[t]
	return e.pktSrc, e.pktDst, ok
}
