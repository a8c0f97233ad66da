// Package capture defines what a live traffic source gives the agent, and
// holds the sources in subpackages: pcapfile (capture files), afpacket
// (TPACKET_V3 rings) and ebpf (TC programs aggregating in the kernel).
package capture

import (
	"net"

	"github.com/flowlog/flowlog/flow"
)

// Link is a network interface to capture on.
type Link struct {
	Index int              // ifindex within its network namespace
	Name  string           // e.g. "eth0", "veth1"
	Netns string           // network namespace name (as in /run/netns); "" is the agent's own
	MAC   net.HardwareAddr // may be nil (e.g. loopback, tun)
}

// Delta is the traffic of one flow key counted by a source since the
// previous drain, all within one aggregation window.
type Delta struct {
	Key       flow.Key // Key.Interface is the id the link was attached with
	Packets   uint64
	Bytes     uint64 // IP-layer bytes (spec §2)
	First     int64  // Unix nanoseconds (wall clock) of the first packet
	Last      int64  // Unix nanoseconds (wall clock) of the last packet
	TCPFlags  uint8  // OR of flow.ReportedTCPFlags over the packets
	Direction flow.Direction
}

// Source captures the traffic of the links attached to it. Sources are
// drained by one goroutine; Attach and Detach may come from another.
type Source interface {
	// Attach starts capturing on link; its deltas carry interface id.
	Attach(id uint32, link Link) error
	// Detach stops capturing on the link attached with id; its traffic
	// counted so far is still returned by the next Drain.
	Detach(id uint32) error
	// Drain calls fn for the traffic counted since the previous Drain
	// (the Delta is only valid during the call) and returns the packets
	// lost per interface id since then (map full, ring overrun), which
	// become SKIPDATA records.
	Drain(fn func(*Delta)) (lost map[uint32]uint64, err error)
	// Close detaches everything and releases kernel resources.
	Close() error
}
