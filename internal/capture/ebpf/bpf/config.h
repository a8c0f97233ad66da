/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load-time knobs. User space sets them through the collection spec's
 * Variables before loading; they are constants for the verifier, so unused
 * branches disappear. */
#ifndef FLOWLOG_CONFIG_H
#define FLOWLOG_CONFIG_H

#include <linux/types.h>

/* Aggregation window length in nanoseconds (spec section 2: windows are
 * aligned to multiples of it since the Unix epoch). */
volatile const __u64 window_ns = 60000000000ULL;

/* The interface id the TC programs of one attachment report (each attachment
 * loads its own copy of the TC programs), and its index in the lost array. */
volatile const __u32 attach_id = 0;
volatile const __u32 iface_slot = 0;

/* 1 when the device carries no Ethernet header (tun, wireguard, ipip):
 * the TC program then sees the IP header first. */
volatile const __u8 raw_ip = 0;

/* 1 when the drop tracepoint is loaded, so that ingress programs remember
 * what they counted per skb. */
volatile const __u8 track_reject = 0;

/* The value of SKB_DROP_REASON_NETFILTER_DROP on the running kernel, read
 * from its BTF by user space (12 on 6.x kernels). */
volatile const __u32 netfilter_drop_reason = 12;

#endif
