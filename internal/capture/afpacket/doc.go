// Package afpacket is the AF_PACKET capture source: a TPACKET_V3 ring per
// socket, several sockets per interface joined in a PACKET_FANOUT_HASH
// group so that each CPU drains its own ring, the foundation decoder on
// every packet, and counts aggregated per flow key and 60-second window
// between two drains. It implements capture.Source.
//
// It is the fallback when eBPF is not possible (old kernel, no CAP_BPF):
// it needs only CAP_NET_RAW, works on every kernel since 3.19, and sees
// both directions of every interface. What it cannot see are packets the
// host's packet filter drops: a packet socket receives ingress packets
// before netfilter and egress packets after it, so every record is
// ACCEPT. REJECT records need the eBPF source.
//
// Packets the kernel could not put into a full ring are counted by the
// kernel (PACKET_STATISTICS tp_drops) and returned by Drain as lost, which
// the flow table reports as SKIPDATA.
package afpacket
