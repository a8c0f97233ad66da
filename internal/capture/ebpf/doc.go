// Package ebpf owns the eBPF capture source: TC programs (C in bpf/,
// compiled by bpf2go, objects committed) that decode and aggregate every
// packet of the attached interfaces in the kernel, a tracepoint on
// skb:kfree_skb that turns packets dropped by netfilter into REJECT counts,
// and the user-space side that attaches the programs (TCX, or clsact via
// netlink on kernels before 6.6) and drains the kernel's flow map about
// once a second into capture.Deltas.
//
// How the counts stay exact:
//   - The kernel aggregates per (interface id, direction, addresses, ports,
//     protocol, action, aggregation window) in a per-CPU hash, so no packet
//     is ever copied to user space and no two CPUs share a counter.
//   - There are two generations of that map. Drain switches the programs to
//     the other one, waits for an RCU grace period (membarrier), after which
//     no program can still be writing the old one, and then empties the old
//     one with BPF_MAP_LOOKUP_AND_DELETE_BATCH. Nothing is counted twice or
//     lost between drains.
//   - A packet netfilter drops on the way in was counted as ACCEPT by the
//     ingress program moments before, in the same softirq on the same CPU.
//     The ingress program remembers per CPU what it added for that skb; the
//     tracepoint moves exactly that (packets, bytes, TCP flag counts) to a
//     REJECT entry of the same key and window. A locally generated packet
//     dropped by the output hooks never reached the egress program and is
//     counted as egress REJECT on the device it was routed to.
//   - A packet that cannot be counted because the flow map is full is
//     counted per interface and returned by Drain as lost (SKIPDATA).
//
// Why a per-CPU hash rather than one shared value with atomics or a spin
// lock: every packet updates its entry, and a shared entry would bounce its
// cache line between CPUs (and need a lock for first/last); per-CPU shares
// cost no synchronisation, user space merges them at drain time, and the
// REJECT move subtracts from exactly the share the packet was added to. The
// price is memory: each entry holds one 48-byte value per possible CPU.
//
// The wall-clock offset and the current generation live in a one-element
// array map (control_map) rather than in a .data global: every attachment
// loads its own copy of the TC programs (its interface id is a constant),
// and a global would exist once per copy.
//
// reject-reason: the source reports actions only. Records of packets that
// netfilter dropped carry reject-reason "-", which is what AWS writes for
// security-group and network-ACL rejects (its one named reason, BPA, has no
// counterpart here); the source defines no extension reasons.
package ebpf
