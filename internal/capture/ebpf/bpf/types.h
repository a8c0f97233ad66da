/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Structures shared between the BPF programs and Go (bpf2go -type). Field
 * order keeps every member naturally aligned and the padding explicit, so the
 * Go mirror has the same layout and hash keys carry no uninitialised bytes. */
#ifndef FLOWLOG_TYPES_H
#define FLOWLOG_TYPES_H

#include <linux/types.h>

/* Directions, as flow.Direction numbers them. */
#define DIR_INGRESS 1
#define DIR_EGRESS 2

/* Actions, as flow.Action numbers them. */
#define ACTION_ACCEPT 1
#define ACTION_REJECT 2

/* flow_key identifies what one record counts: the flow table's key (attach
 * id, addresses, ports, protocol, action) plus the direction and the
 * aggregation window, so that every counted value lies within one window. */
struct flow_key {
	__u64 window;    /* wall-clock ns / window_ns at the time of counting */
	__u8 src[16];    /* IPv4 in the first 4 bytes, the rest zero */
	__u8 dst[16];
	__u32 attach_id; /* the id user space attached the interface with */
	__u16 src_port;  /* host byte order */
	__u16 dst_port;
	__u8 proto;
	__u8 action;     /* ACTION_* */
	__u8 direction;  /* DIR_* */
	__u8 ipv6;       /* 1 when the addresses are IPv6 */
	__u32 pad;       /* always zero */
};

/* flow_value is one CPU's share of a flow_key's counts (the map is per-CPU;
 * user space sums the shares). The TCP flags are kept as per-packet counts,
 * not OR'd bits, so that moving a dropped packet from ACCEPT to REJECT can
 * take its flags away again (see on_kfree_skb). */
struct flow_value {
	__u64 packets;
	__u64 bytes;    /* IP-layer bytes (spec section 2) */
	__u64 first_ns; /* bpf_ktime_get_boot_ns() of the first packet */
	__u64 last_ns;  /* ... and of the last */
	__u32 fin;      /* packets with FIN */
	__u32 syn;      /* packets with SYN */
	__u32 rst;      /* packets with RST */
	__u32 synack;   /* packets with SYN and ACK */
};

/* control is written by user space only: the clock offset that turns
 * bpf_ktime_get_boot_ns() into Unix time, and which of the two flow maps
 * the programs count into (user space drains the other one). */
struct control {
	__s64 wall_offset_ns;
	__u32 gen;
	__u32 pad;
};

/* iface_key names an interface for the drop tracepoint, which sees kernel
 * devices: the network namespace's inode number and the ifindex in it. */
struct iface_key {
	__u32 netns;
	__u32 ifindex;
};

struct iface_value {
	__u32 attach_id;
	__u32 slot; /* index into the lost array */
};

/* frag_key matches later fragments to the first fragment of their datagram
 * (spec section 2): source, destination, protocol and IP identification. */
struct frag_key {
	__u8 src[16];
	__u8 dst[16];
	__u32 id;
	__u8 proto;
	__u8 pad[3];
};

struct frag_ports {
	/* What the ingress program counted for this datagram's fragments, so
	 * that a datagram netfilter drops after reassembly can be moved to
	 * REJECT whole (only with REJECT tracking). */
	__u64 window;
	__u64 bytes;
	__u32 packets;
	__u32 attach_id;
	__u16 src_port;
	__u16 dst_port;
	__u16 hdr_len;    /* header bytes every fragment repeats */
	__u8 have_first;  /* the first fragment was seen: ports are known */
	__u8 split;       /* counted under several keys, windows or generations */
	__u8 gen;
	__u8 flags;       /* reported TCP flags of the first fragment */
	__u8 pad[6];
};

/* inflight remembers, per CPU, what the ingress program counted for a
 * recent skb, so that the drop tracepoint can move exactly that packet from
 * ACCEPT to REJECT when netfilter drops it further up the same softirq. */
struct inflight {
	__u64 skb;         /* kernel address of the sk_buff; 0 = free slot */
	__u64 ts;          /* bpf_ktime_get_boot_ns() when counted */
	__u64 bytes;       /* what was added to the ACCEPT entry */
	struct flow_key key;
	__u32 packets;
	__u32 fingerprint; /* IP version, declared length and first protocol byte */
	__u32 gen;         /* flow map counted into */
	__u32 slot;
	__u8 flags;        /* reported TCP flags of the packet (FIN|SYN|RST|ACK-with-SYN) */
	__u8 is_frag;      /* an IP fragment: a drop may come after reassembly */
	__u8 pad[2];
	__u32 frag_id;
};

/* Indexes of the stats array (per-CPU counters, read by user space for
 * metrics). */
enum stat_index {
	STAT_PACKETS = 0,      /* packets (skbs) counted by the TC programs */
	STAT_NOT_IP,           /* frames that carry no IPv4/IPv6 packet */
	STAT_TRUNCATED,        /* IP packets whose header could not be read */
	STAT_MAP_FULL,         /* counts lost because a flow map was full */
	STAT_REJECT_MOVED,     /* ingress packets moved from ACCEPT to REJECT */
	STAT_REJECT_EGRESS,    /* locally sent packets dropped before transmission */
	STAT_REJECT_UNMATCHED, /* netfilter drops not attributable to an attached interface */
	STAT_MAX,
};

#endif
