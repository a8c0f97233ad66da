/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef FLOWLOG_MAPS_H
#define FLOWLOG_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

/* Two generations of the flow map. The programs count into the one named
 * by control.gen; user space flips gen, waits for an RCU grace period (so
 * no program still writes the old one) and then drains the old one
 * completely. A per-CPU hash: each CPU updates its own share without
 * atomics or locks, and a drop is moved out of the share of the CPU that
 * counted it. max_entries is set by user space at load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
	__uint(max_entries, 65536);
} flows0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
	__uint(max_entries, 65536);
} flows1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct control);
	__uint(max_entries, 1);
} control_map SEC(".maps");

/* First-fragment ports, least recently used forgotten first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct frag_key);
	__type(value, struct frag_ports);
	__uint(max_entries, 4096);
} frags SEC(".maps");

/* Per-CPU cache of recently counted ingress skbs: 1024 sets of 4 ways, so
 * that a receive batch (a driver hands up to 64 packets to the TC hook
 * before netfilter sees the first) does not evict its own entries. */
#define INFLIGHT_WAYS 4
#define INFLIGHT_SETS 1024
#define INFLIGHT_SLOTS (INFLIGHT_WAYS * INFLIGHT_SETS)
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct inflight);
	__uint(max_entries, INFLIGHT_SLOTS);
} inflight_cache SEC(".maps");

/* Attached interfaces by (netns inode, ifindex), for the drop tracepoint. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct iface_key);
	__type(value, struct iface_value);
	__uint(max_entries, 1024);
} ifaces SEC(".maps");

/* Packets that could not be counted (flow map full), per interface slot;
 * cumulative, user space reports the differences as SKIPDATA. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1024);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, enum stat_index);
	__type(value, __u64);
	__uint(max_entries, STAT_MAX);
} stats SEC(".maps");

#endif
