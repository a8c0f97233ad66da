package flow

import "net/netip"

// Action is the verdict of the packet filter for a flow.
type Action uint8

const (
	ActionUnknown Action = iota // renders as "-"
	ActionAccept
	ActionReject
)

// String returns the AWS spelling: ACCEPT, REJECT, or "-".
func (a Action) String() string {
	switch a {
	case ActionAccept:
		return "ACCEPT"
	case ActionReject:
		return "REJECT"
	}
	return "-"
}

// LogStatus is the log-status field of a record.
type LogStatus uint8

const (
	LogStatusUnknown  LogStatus = iota // renders as "-"
	LogStatusOK                        // a normal record
	LogStatusNoData                    // the interface had no traffic in the window
	LogStatusSkipData                  // records were lost in the window
)

// String returns the AWS spelling: OK, NODATA, SKIPDATA, or "-".
func (s LogStatus) String() string {
	switch s {
	case LogStatusOK:
		return "OK"
	case LogStatusNoData:
		return "NODATA"
	case LogStatusSkipData:
		return "SKIPDATA"
	}
	return "-"
}

// Direction is the flow-direction field, relative to the interface.
type Direction uint8

const (
	DirectionUnknown Direction = iota // renders as "-"
	DirectionIngress
	DirectionEgress
)

// String returns the AWS spelling: ingress, egress, or "-".
func (d Direction) String() string {
	switch d {
	case DirectionIngress:
		return "ingress"
	case DirectionEgress:
		return "egress"
	}
	return "-"
}

// TCP flag bits as they appear in the tcp-flags field. Only these four are
// ever reported, and ACK only on packets that also carry SYN (spec §2).
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagACK uint8 = 0x10
)

// ReportedTCPFlags reduces the raw flags byte of one TCP packet to the bits
// the tcp-flags field reports: FIN, SYN, RST, and ACK only together with SYN.
func ReportedTCPFlags(raw uint8) uint8 {
	f := raw & (TCPFlagFIN | TCPFlagSYN | TCPFlagRST)
	if raw&TCPFlagSYN != 0 {
		f |= raw & TCPFlagACK
	}
	return f
}

// Key identifies one unidirectional flow on one interface (spec §2). The
// addresses are those in the packet (pkt-srcaddr, pkt-dstaddr). Key is
// comparable and is used directly as a map key.
type Key struct {
	Interface uint32 // index of the interface within its source (capture interface, ifindex)
	Src, Dst  netip.Addr
	SrcPort   uint16
	DstPort   uint16
	Protocol  uint8
	Action    Action
}

// Counts are what a flow table accumulates for one Key in one window.
type Counts struct {
	Packets  uint64
	Bytes    uint64
	Start    int64 // Unix seconds of the first packet
	End      int64 // Unix seconds of the last packet
	TCPFlags uint8 // OR of ReportedTCPFlags over the packets

	// Direction is relative to the interface, from the first packet whose
	// direction was known (capture metadata or the interface's addresses).
	// Add leaves it alone; the flow table sets it.
	Direction Direction
}

// Add returns c with one more packet of length bytes at Unix second ts.
func (c Counts) Add(ts int64, length uint64, tcpFlags uint8) Counts {
	if c.Packets == 0 || ts < c.Start {
		c.Start = ts
	}
	if c.Packets == 0 || ts > c.End {
		c.End = ts
	}
	c.Packets++
	c.Bytes += length
	c.TCPFlags |= tcpFlags
	return c
}
