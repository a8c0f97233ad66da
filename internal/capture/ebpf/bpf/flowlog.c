// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * flowlog's kernel side: TC programs that decode every packet of an
 * attached interface and count it into a per-CPU hash map keyed like a flow
 * log record (plus direction and aggregation window), and a tracepoint on
 * skb:kfree_skb that turns packets dropped by netfilter into REJECT counts.
 *
 * Decoding mirrors internal/decode (Go) exactly for what both handle:
 * Ethernet, VLAN/QinQ tags, LLC/SNAP, PPPoE and MPLS down to the IP header;
 * IPv4 (IHL, total length, fragments) and IPv6 with its extension header
 * chain; TCP/UDP/SCTP ports, ICMP with ports 0. A test runs the corpus
 * captures through both and requires identical counts. The loops are
 * bounded (MAX_L2_STEPS, MAX_MPLS_LABELS, MAX_IPV6_EXT); the Go decoder is
 * not, so a frame beyond a bound is the one place they may differ.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

#include "types.h"
#include "config.h"
#include "maps.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MAX_L2_STEPS 8     /* VLAN tags, LLC/SNAP, PPPoE headers in a row */
#define MAX_MPLS_LABELS 8
#define MAX_IPV6_EXT 512   /* IPv6 extension headers before the upper layer */

#define EEXIST 17

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define ETH_P_8021AD 0x88A8
#define ETH_P_QINQ_OLD 0x9100
#define ETH_P_PPP_SES 0x8864
#define ETH_P_MPLS_UC 0x8847
#define ETH_P_MPLS_MC 0x8848

#define IPPROTO_HOPOPTS 0
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_AH 51
#define IPPROTO_DSTOPTS 60
#define IPPROTO_SCTP 132

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

enum parse_result {
	PARSE_OK = 0,
	PARSE_NOT_IP = -1,
	PARSE_TRUNCATED = -2, /* also malformed: decode counts neither */
};

enum fragment {
	FRAG_NONE = 0,
	FRAG_FIRST,
	FRAG_LATER,
};

/* pkt holds what the parser found, like decode.Packet. */
struct pkt {
	__u8 src[16];
	__u8 dst[16];
	__u32 length;      /* IP-layer length the header declares */
	__u32 hdr_len;     /* IP + extension + TCP/UDP header bytes, to count GSO segments */
	__u32 frag_id;
	__u32 fingerprint;
	__u16 src_port;
	__u16 dst_port;
	__u16 frag_hdr;    /* fragments: header bytes every fragment repeats */
	__u8 proto;
	__u8 tcp_flags;    /* raw TCP flags byte */
	__u8 ipv6;
	__u8 fragment;
};

/* cur reads the bytes of one packet either from an skb in TC context
 * (bpf_skb_load_bytes, which also reads paged data) or from kernel memory
 * (the linear area of an skb seen by the drop tracepoint). len is how many
 * bytes exist from offset 0; every read is checked against it first, which
 * is what decode's len(b) checks do. */
struct cur {
	void *ctx;
	__u64 base;
	__u32 len;
	__u8 kern;
};

static __always_inline int load(struct cur *c, __u32 off, void *dst, __u32 n)
{
	if (off > c->len || c->len - off < n)
		return -1;
	if (c->kern)
		return bpf_probe_read_kernel(dst, n, (void *)(c->base + off));
	return bpf_skb_load_bytes(c->ctx, off, dst, n);
}

static __always_inline __u16 be16(const __u8 *b)
{
	return ((__u16)b[0] << 8) | b[1];
}

static __always_inline __u32 be32(const __u8 *b)
{
	return ((__u32)b[0] << 24) | ((__u32)b[1] << 16) | ((__u32)b[2] << 8) | b[3];
}

static __always_inline int has_ports(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

/* transport reads ports and TCP flags as far as they lie before end. */
static __always_inline void transport(struct cur *c, __u32 off, __u32 end, struct pkt *p)
{
	__u8 b[14];
	__u32 avail = off < end ? end - off : 0;

	if (p->proto == IPPROTO_TCP) {
		if (avail >= 14) {
			if (load(c, off, b, 14))
				return;
			p->tcp_flags = b[13];
			p->hdr_len += (b[12] >> 4) * 4;
			p->src_port = be16(b);
			p->dst_port = be16(b + 2);
			return;
		}
	} else if (p->proto == IPPROTO_UDP) {
		p->hdr_len += 8;
	} else if (p->proto != IPPROTO_SCTP) {
		return;
	}
	if (avail >= 4) {
		if (load(c, off, b, 4))
			return;
		p->src_port = be16(b);
		p->dst_port = be16(b + 2);
	}
}

static __always_inline int parse_ipv4(struct cur *c, __u32 off, struct pkt *p)
{
	__u8 h[20];
	__u32 avail = c->len - off;

	if (off > c->len || avail < 20)
		return PARSE_TRUNCATED;
	if (load(c, off, h, 20))
		return PARSE_TRUNCATED;
	if (h[0] >> 4 != 4)
		return PARSE_TRUNCATED;
	__u32 hl = (h[0] & 0x0F) * 4;
	if (hl < 20)
		return PARSE_TRUNCATED;
	if (avail < hl)
		return PARSE_TRUNCATED;
	__u32 total = be16(h + 2);
	__u32 end = c->len;
	p->fingerprint = (4u << 28) | (total << 8) | h[9];
	if (total == 0) {
		/* Captured before segmentation offload filled it in. */
		total = avail;
	} else if (total < hl) {
		return PARSE_TRUNCATED;
	} else if (total < avail) {
		end = off + total; /* trailing padding is not L4 */
	}
	p->length = total;
	p->proto = h[9];
	p->hdr_len = hl;
	__builtin_memcpy(p->src, h + 12, 4);
	__builtin_memcpy(p->dst, h + 16, 4);

	__u16 frag = be16(h + 6);
	p->frag_hdr = hl;
	if (frag & 0x1FFF) {
		p->fragment = FRAG_LATER;
		p->frag_id = be16(h + 4);
		return PARSE_OK;
	}
	if (frag & 0x2000) {
		p->fragment = FRAG_FIRST;
		p->frag_id = be16(h + 4);
	}
	transport(c, off + hl, end, p);
	return PARSE_OK;
}

/* ext_walk is the state of the IPv6 extension header walk, which runs in
 * a bpf_loop callback so that a long chain costs no verifier complexity. */
struct ext_walk {
	struct cur c;
	struct pkt p;
	__u32 off;
	__u32 end;
	__u32 start;
	__u8 next;
	__u8 done;
};

/* ext_step walks one extension header; it returns 1 when the walk is over
 * (w->p.proto set), 0 to go on. */
static __always_inline long ext_step(struct ext_walk *w)
{
	__u8 e[8];
	__u32 size;
	__u32 off = w->off;
	__u32 left = off < w->end ? w->end - off : 0;
	__u8 next = w->next;

	switch (next) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		if (left < 2 || load(&w->c, off, e, 2)) {
			w->p.proto = next;
			return 1;
		}
		size = ((__u32)e[1] + 1) * 8;
		break;
	case IPPROTO_AH:
		if (left < 2 || load(&w->c, off, e, 2)) {
			w->p.proto = next;
			return 1;
		}
		size = ((__u32)e[1] + 2) * 4;
		break;
	case IPPROTO_FRAGMENT: {
		if (left < 8 || load(&w->c, off, e, 8)) {
			w->p.proto = next;
			return 1;
		}
		__u16 offflags = be16(e + 2);
		__u32 ident = be32(e + 4);
		if (offflags >> 3) {
			w->p.fragment = FRAG_LATER;
			w->p.frag_id = ident;
			w->p.frag_hdr = off + 8 - w->start;
			w->p.proto = e[0];
			return 1;
		}
		if ((offflags & 1) && w->p.fragment == FRAG_NONE) {
			w->p.fragment = FRAG_FIRST;
			w->p.frag_id = ident;
			w->p.frag_hdr = off + 8 - w->start;
		}
		size = 8;
		break;
	}
	default:
		w->p.proto = next;
		w->p.hdr_len = off - w->start;
		transport(&w->c, off, w->end, &w->p);
		return 1;
	}
	if (left < size) {
		w->p.proto = next;
		return 1;
	}
	w->next = e[0];
	w->off = off + size;
	return 0;
}

/* Two callbacks, so that each reads packets one way only (a tracing
 * program may not call bpf_skb_load_bytes, even on a dead branch). */
static long ext_step_skb(__u64 i, void *data)
{
	struct ext_walk *w = data;
	w->c.kern = 0;
	w->done = ext_step(w);
	return w->done;
}

static long ext_step_kern(__u64 i, void *data)
{
	struct ext_walk *w = data;
	w->c.kern = 1;
	w->done = ext_step(w);
	return w->done;
}

static __always_inline int parse_ipv6(struct cur *c, __u32 off, struct pkt *p)
{
	__u8 h[40];
	__u32 avail = c->len - off;

	if (off > c->len || avail < 40)
		return PARSE_TRUNCATED;
	if (load(c, off, h, 40))
		return PARSE_TRUNCATED;
	if (h[0] >> 4 != 6)
		return PARSE_TRUNCATED;
	__u32 plen = be16(h + 4);
	__u32 end = c->len;
	p->fingerprint = (6u << 28) | (plen << 8) | h[6];
	if (plen == 0) {
		/* A jumbogram, or captured before segmentation offload. */
		p->length = avail;
	} else {
		p->length = 40 + plen;
		if (40 + plen < avail)
			end = off + 40 + plen;
	}
	p->ipv6 = 1;
	__builtin_memcpy(p->src, h + 8, 16);
	__builtin_memcpy(p->dst, h + 24, 16);

	struct ext_walk w = {
		.c = *c,
		.p = *p,
		.off = off + 40,
		.end = end,
		.start = off,
		.next = h[6],
	};
	/* Every extension header is at least 8 bytes long, so a chain ends
	 * within the packet's length / 8 steps; MAX_IPV6_EXT covers any
	 * chain within the first 4 KiB. Past it, the protocol is the next
	 * header not walked, as if it could not be read. */
	if (c->kern)
		bpf_loop(MAX_IPV6_EXT, ext_step_kern, &w, 0);
	else
		bpf_loop(MAX_IPV6_EXT, ext_step_skb, &w, 0);
	if (!w.done)
		w.p.proto = w.next;
	*p = w.p;
	return PARSE_OK;
}

/* parse_ip picks the IP version from the first nibble (raw IP, MPLS). */
static __always_inline int parse_ip(struct cur *c, __u32 off, struct pkt *p)
{
	__u8 v;

	if (load(c, off, &v, 1))
		return PARSE_TRUNCATED;
	if (v >> 4 == 4)
		return parse_ipv4(c, off, p);
	if (v >> 4 == 6)
		return parse_ipv6(c, off, p);
	return PARSE_NOT_IP;
}

/* parse_frame follows the link-layer headers of an Ethernet frame down to
 * the IP header, like decode.decodeEtherType. */
static __always_inline int parse_frame(struct cur *c, struct pkt *p)
{
	__u8 b[8];
	__u32 off = 14;

	if (raw_ip)
		return parse_ip(c, 0, p);
	if (load(c, 12, b, 2))
		return PARSE_TRUNCATED;
	__u16 etype = be16(b);

	for (int i = 0; i < MAX_L2_STEPS; i++) {
		switch (etype) {
		case ETH_P_IP:
			return parse_ipv4(c, off, p);
		case ETH_P_IPV6:
			return parse_ipv6(c, off, p);
		case ETH_P_8021Q:
		case ETH_P_8021AD:
		case ETH_P_QINQ_OLD:
			if (load(c, off, b, 4))
				return PARSE_TRUNCATED;
			etype = be16(b + 2);
			off += 4;
			continue;
		case ETH_P_PPP_SES: {
			/* Version/type, code, session, length; then PPP protocol,
			 * one byte when compressed (odd first byte). */
			__u16 proto;
			if (load(c, off, b, 6) || load(c, off + 6, b, 1))
				return PARSE_TRUNCATED;
			if (b[0] & 1) {
				proto = b[0];
				off += 7;
			} else {
				if (load(c, off + 6, b, 2))
					return PARSE_TRUNCATED;
				proto = be16(b);
				off += 8;
			}
			if (proto == 0x0021)
				return parse_ipv4(c, off, p);
			if (proto == 0x0057)
				return parse_ipv6(c, off, p);
			if (proto == 0x0281 || proto == 0x0283) {
				etype = ETH_P_MPLS_UC;
				continue;
			}
			return PARSE_NOT_IP;
		}
		case ETH_P_MPLS_UC:
		case ETH_P_MPLS_MC:
			for (int j = 0; j < MAX_MPLS_LABELS; j++) {
				if (load(c, off, b, 4))
					return PARSE_TRUNCATED;
				off += 4;
				if (b[2] & 1)
					return parse_ip(c, off, p);
			}
			return PARSE_NOT_IP;
		default:
			if (etype > 1500)
				return PARSE_NOT_IP;
			/* An 802.3 length: only LLC/SNAP with an ethertype leads on. */
			if (load(c, off, b, 3))
				return PARSE_TRUNCATED;
			if (b[0] != 0xAA || b[1] != 0xAA || b[2] != 0x03)
				return PARSE_NOT_IP;
			if (load(c, off, b, 8))
				return PARSE_TRUNCATED;
			etype = be16(b + 6);
			if (etype < 0x0600)
				return PARSE_NOT_IP;
			off += 8;
			continue;
		}
	}
	return PARSE_NOT_IP;
}

/* resolve_fragment gives later fragments the ports of their first
 * fragment (decode.Fragments.Resolve) and returns the datagram's record
 * (NULL for protocols without ports). A later fragment seen before its
 * first creates a record only when create is set (ingress with REJECT
 * tracking), to note that it was counted without ports. */
static __always_inline struct frag_ports *resolve_fragment(struct pkt *p, int create)
{
	struct frag_key fk;

	if (p->fragment == FRAG_NONE)
		return NULL;
	if (p->fragment == FRAG_LATER) {
		p->tcp_flags = 0;
		p->src_port = 0;
		p->dst_port = 0;
	}
	if (!has_ports(p->proto))
		return NULL;
	__builtin_memset(&fk, 0, sizeof(fk));
	__builtin_memcpy(fk.src, p->src, 16);
	__builtin_memcpy(fk.dst, p->dst, 16);
	fk.id = p->frag_id;
	fk.proto = p->proto;
	struct frag_ports *r = bpf_map_lookup_elem(&frags, &fk);
	if (p->fragment == FRAG_FIRST) {
		if (!r) {
			struct frag_ports n;
			__builtin_memset(&n, 0, sizeof(n));
			n.src_port = p->src_port;
			n.dst_port = p->dst_port;
			n.have_first = 1;
			bpf_map_update_elem(&frags, &fk, &n, BPF_ANY);
			return bpf_map_lookup_elem(&frags, &fk);
		}
		if (!r->have_first && r->packets) {
			r->split = 1; /* later fragments were counted without ports */
		} else if (r->have_first) {
			/* A new datagram under a reused id, or a repeated first
			 * fragment: start counting again. */
			r->packets = 0;
			r->bytes = 0;
			r->split = 0;
		}
		r->src_port = p->src_port;
		r->dst_port = p->dst_port;
		r->have_first = 1;
		return r;
	}
	if (r) {
		if (r->have_first) {
			p->src_port = r->src_port;
			p->dst_port = r->dst_port;
		}
		return r;
	}
	if (!create)
		return NULL;
	struct frag_ports n;
	__builtin_memset(&n, 0, sizeof(n));
	bpf_map_update_elem(&frags, &fk, &n, BPF_NOEXIST);
	return bpf_map_lookup_elem(&frags, &fk);
}

/* frag_count adds one counted ingress fragment to its datagram's record. */
static __always_inline void frag_count(struct frag_ports *r, struct pkt *p, __u32 gen, __u64 window, __u64 packets,
				       __u64 bytes, __u8 flags)
{
	if (r->packets == 0) {
		r->gen = gen;
		r->window = window;
		r->attach_id = attach_id;
		r->hdr_len = p->frag_hdr;
	} else if (r->gen != gen || r->window != window || r->attach_id != attach_id || r->hdr_len != p->frag_hdr) {
		r->split = 1;
	}
	r->packets += packets;
	r->bytes += bytes;
	if (p->fragment == FRAG_FIRST)
		r->flags = flags;
}

/* reported reduces raw TCP flags to what tcp-flags reports
 * (flow.ReportedTCPFlags). */
static __always_inline __u8 reported(__u8 raw)
{
	__u8 f = raw & (TCP_FIN | TCP_SYN | TCP_RST);
	if (raw & TCP_SYN)
		f |= raw & TCP_ACK;
	return f;
}

static __always_inline void stat_add(__u32 i, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		*v += n;
}

static __always_inline void count_lost(__u32 slot, __u64 packets)
{
	__u64 *v = bpf_map_lookup_elem(&lost, &slot);
	if (v)
		*v += packets;
	stat_add(STAT_MAP_FULL, packets);
}

static __always_inline void value_add(struct flow_value *v, __u64 packets, __u64 bytes, __u64 ts, __u8 flags)
{
	v->packets += packets;
	v->bytes += bytes;
	if (ts < v->first_ns || v->first_ns == 0)
		v->first_ns = ts;
	if (ts > v->last_ns)
		v->last_ns = ts;
	if (flags & TCP_FIN)
		v->fin++;
	if (flags & TCP_SYN)
		v->syn++;
	if (flags & TCP_RST)
		v->rst++;
	if (flags & TCP_ACK)
		v->synack++;
}

/* account adds packets to key's entry in map (this CPU's share), creating
 * it if needed. Returns 1 when counted, 0 when the map was full (the
 * packets are then counted as lost for the interface). */
static __always_inline int account(void *map, struct flow_key *k, __u64 packets, __u64 bytes, __u64 ts,
				   __u8 flags, __u32 slot)
{
	struct flow_value *v = bpf_map_lookup_elem(map, k);
	if (!v) {
		struct flow_value nv;
		__builtin_memset(&nv, 0, sizeof(nv));
		value_add(&nv, packets, bytes, ts, flags);
		long err = bpf_map_update_elem(map, k, &nv, BPF_NOEXIST);
		if (err == 0)
			return 1;
		if (err == -EEXIST) /* another CPU created it meanwhile */
			v = bpf_map_lookup_elem(map, k);
		if (!v) {
			count_lost(slot, packets);
			return 0;
		}
	}
	value_add(v, packets, bytes, ts, flags);
	return 1;
}

static __always_inline int account_gen(__u32 gen, struct flow_key *k, __u64 packets, __u64 bytes, __u64 ts,
				       __u8 flags, __u32 slot)
{
	/* Two call sites rather than one map pointer chosen at run time,
	 * so that the verifier can inline each lookup. */
	if (gen)
		return account(&flows1, k, packets, bytes, ts, flags, slot);
	return account(&flows0, k, packets, bytes, ts, flags, slot);
}

static __always_inline __u64 window_of(__u64 now, struct control *ctl)
{
	__s64 wall = (__s64)now + ctl->wall_offset_ns;
	if (wall < 0)
		return 0;
	return (__u64)wall / window_ns;
}

static __always_inline void fill_key(struct flow_key *k, struct pkt *p, __u64 window, __u32 id, __u8 dir,
				     __u8 action)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->window = window;
	__builtin_memcpy(k->src, p->src, 16);
	__builtin_memcpy(k->dst, p->dst, 16);
	k->attach_id = id;
	k->src_port = p->src_port;
	k->dst_port = p->dst_port;
	k->proto = p->proto;
	k->action = action;
	k->direction = dir;
	k->ipv6 = p->ipv6;
}

/* ip_bytes is what a packet adds to bytes. A GSO packet (one skb that the
 * NIC or a later stage cuts into gso_segs packets) counts as the packets
 * that leave or arrived on the wire: every segment repeats the IP and L4
 * headers. */
static __always_inline __u64 ip_bytes(struct pkt *p, __u32 segs)
{
	__u64 b = p->length;
	if (segs > 1)
		b += (__u64)(segs - 1) * p->hdr_len;
	return b;
}

/* ptr_lo returns the low 32 bits of a kernel pointer as a plain number.
 * The 32-bit move is written out because the verifier accepts it (for
 * privileged programs) where it refuses arithmetic on the pointer itself,
 * which is what the compiler would otherwise emit. */
static __always_inline __u32 ptr_lo(void *ptr)
{
	__u32 lo;
	asm volatile("%[lo] = %[p]" : [lo] "=w"(lo) : [p] "w"((__u32)(unsigned long)ptr));
	return lo;
}

/* inflight_set returns the first slot of the cache set of an skb
 * address (Fibonacci hashing: the top bits of the product). */
static __always_inline __u32 inflight_set(void *skb)
{
	return ((ptr_lo(skb) * 2654435761u) >> 22) * INFLIGHT_WAYS; /* INFLIGHT_SETS == 1024 */
}

/* inflight_slot returns the cache slot to fill for skb: its own, a free
 * one, or the least recently filled of its set. */
static __always_inline struct inflight *inflight_slot(void *skb)
{
	__u64 addr = (__u64)(unsigned long)skb;
	__u32 base = inflight_set(skb);
	struct inflight *victim = NULL;
	__u64 oldest = ~0ULL;

	for (__u32 i = 0; i < INFLIGHT_WAYS; i++) {
		__u32 idx = base + i;
		struct inflight *e = bpf_map_lookup_elem(&inflight_cache, &idx);
		if (!e)
			continue;
		if (e->skb == addr || e->skb == 0)
			return e;
		if (e->ts < oldest) {
			oldest = e->ts;
			victim = e;
		}
	}
	return victim;
}

/* inflight_find returns skb's cache slot, or NULL. */
static __always_inline struct inflight *inflight_find(void *skb)
{
	__u64 addr = (__u64)(unsigned long)skb;
	__u32 base = inflight_set(skb);

	for (__u32 i = 0; i < INFLIGHT_WAYS; i++) {
		__u32 idx = base + i;
		struct inflight *e = bpf_map_lookup_elem(&inflight_cache, &idx);
		if (e && e->skb == addr)
			return e;
	}
	return NULL;
}

static __always_inline int tc_count(struct __sk_buff *skb, __u8 dir)
{
	struct pkt p;
	struct cur c = {.ctx = skb, .len = skb->len};
	__u32 zero = 0;

	__builtin_memset(&p, 0, sizeof(p));
	int r = parse_frame(&c, &p);
	if (r != PARSE_OK) {
		stat_add(r == PARSE_NOT_IP ? STAT_NOT_IP : STAT_TRUNCATED, 1);
		return TC_ACT_UNSPEC;
	}
	int tracking = track_reject && dir == DIR_INGRESS;
	struct frag_ports *fr = resolve_fragment(&p, tracking);

	struct control *ctl = bpf_map_lookup_elem(&control_map, &zero);
	if (!ctl)
		return TC_ACT_UNSPEC;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 gen = ctl->gen;
	struct flow_key k;
	fill_key(&k, &p, window_of(now, ctl), attach_id, dir, ACTION_ACCEPT);

	__u32 segs = skb->gso_segs;
	if (segs == 0)
		segs = 1;
	__u64 bytes = ip_bytes(&p, segs);
	__u8 flags = reported(p.tcp_flags);
	int counted = account_gen(gen, &k, segs, bytes, now, flags, iface_slot);
	stat_add(STAT_PACKETS, 1);

	if (tracking && counted) {
		if (fr)
			frag_count(fr, &p, gen, k.window, segs, bytes, flags);
		struct inflight *f = inflight_slot(skb);
		if (f) {
			f->skb = (__u64)(unsigned long)skb;
			f->ts = now;
			f->bytes = bytes;
			f->key = k;
			f->packets = segs;
			f->fingerprint = p.fingerprint;
			f->gen = gen;
			f->slot = iface_slot;
			f->flags = flags;
			f->is_frag = p.fragment != FRAG_NONE;
			f->frag_id = p.frag_id;
		}
	}
	return TC_ACT_UNSPEC; /* == TCX_NEXT: never decide the packet's fate */
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return tc_count(skb, DIR_INGRESS);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return tc_count(skb, DIR_EGRESS);
}

/* Kernel structures the drop tracepoint reads, relocated by CO-RE against
 * the running kernel's BTF (only the members used are declared). */
struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	int ifindex;
	possible_net_t nd_net;
} __attribute__((preserve_access_index));

struct dst_entry {
	struct net_device *dev;
} __attribute__((preserve_access_index));

struct skb_shared_info {
	unsigned short gso_segs;
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned int len;
	int skb_iif;
	unsigned long _skb_refdst;
	__u16 network_header;
	unsigned int tail;
	unsigned int end;
	unsigned char *head;
} __attribute__((preserve_access_index));

/* move_to_reject takes what the ingress program counted for one skb off
 * its ACCEPT entry and counts it as REJECT in the same window, on the same
 * CPU share. */
static __always_inline void move_to_reject(void *map, struct inflight *f)
{
	struct flow_value *v = bpf_map_lookup_elem(map, &f->key);
	if (v && v->packets >= f->packets && v->bytes >= f->bytes) {
		v->packets -= f->packets;
		v->bytes -= f->bytes;
		if ((f->flags & TCP_FIN) && v->fin)
			v->fin--;
		if ((f->flags & TCP_SYN) && v->syn)
			v->syn--;
		if ((f->flags & TCP_RST) && v->rst)
			v->rst--;
		if ((f->flags & TCP_ACK) && v->synack)
			v->synack--;
	} else {
		stat_add(STAT_REJECT_UNMATCHED, 1);
		return;
	}
	struct flow_key rk = f->key;
	rk.action = ACTION_REJECT;
	account(map, &rk, f->packets, f->bytes, f->ts, f->flags, f->slot);
	stat_add(STAT_REJECT_MOVED, f->packets);
}

/* egress_reject counts a locally generated packet that netfilter dropped
 * before it reached the egress program, on the interface it was routed
 * to. */
static __always_inline void egress_reject(struct sk_buff *skb)
{
	unsigned long refdst = skb->_skb_refdst & ~1UL; /* SKB_DST_NOREF */
	if (!refdst) {
		stat_add(STAT_REJECT_UNMATCHED, 1);
		return;
	}
	struct dst_entry *dst = (struct dst_entry *)refdst;
	struct net_device *dev = BPF_CORE_READ(dst, dev);
	if (!dev) {
		stat_add(STAT_REJECT_UNMATCHED, 1);
		return;
	}
	struct iface_key ik = {
		.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum),
		.ifindex = BPF_CORE_READ(dev, ifindex),
	};
	struct iface_value *iv = bpf_map_lookup_elem(&ifaces, &ik);
	if (!iv) {
		stat_add(STAT_REJECT_UNMATCHED, 1);
		return;
	}
	__u32 id = iv->attach_id, slot = iv->slot;

	unsigned char *head = skb->head;
	__u32 nh = skb->network_header, tail = skb->tail;
	struct cur c = {.base = (__u64)(unsigned long)head + nh, .len = tail > nh ? tail - nh : 0, .kern = 1};
	struct pkt p;
	__builtin_memset(&p, 0, sizeof(p));
	if (parse_ip(&c, 0, &p) != PARSE_OK) {
		stat_add(STAT_REJECT_UNMATCHED, 1);
		return;
	}
	resolve_fragment(&p, 0);

	struct skb_shared_info *sh = (struct skb_shared_info *)(head + skb->end);
	__u32 segs = BPF_CORE_READ(sh, gso_segs);
	if (segs == 0)
		segs = 1;

	__u32 zero = 0;
	struct control *ctl = bpf_map_lookup_elem(&control_map, &zero);
	if (!ctl)
		return;
	__u64 now = bpf_ktime_get_boot_ns();
	struct flow_key k;
	fill_key(&k, &p, window_of(now, ctl), id, DIR_EGRESS, ACTION_REJECT);
	account_gen(ctl->gen, &k, segs, ip_bytes(&p, segs), now, reported(p.tcp_flags), slot);
	stat_add(STAT_REJECT_EGRESS, segs);
}

/* reassembled_reject handles a datagram that netfilter dropped after IP
 * reassembly (local delivery reassembles before the input hook). The
 * reassembled skb lives at the address of the fragment that completed the
 * datagram, so f is that fragment's cache slot; the datagram's record says
 * what the ingress program counted for all its fragments. They are moved
 * only if the record accounts for exactly this datagram: every fragment
 * counted on this interface, in one window and generation, with the first
 * one seen before the others, and byte counts that add up to the
 * reassembled length. Otherwise the fragments stay ACCEPT (counted as
 * unmatched). */
static __always_inline int reassembled_reject(struct inflight *f, __u8 *h)
{
	struct frag_key fk;
	__builtin_memset(&fk, 0, sizeof(fk));
	__builtin_memcpy(fk.src, f->key.src, 16);
	__builtin_memcpy(fk.dst, f->key.dst, 16);
	fk.id = f->frag_id;
	fk.proto = f->key.proto;
	struct frag_ports *r = bpf_map_lookup_elem(&frags, &fk);
	if (!r || !r->have_first || r->split || r->packets == 0 || r->attach_id != f->key.attach_id ||
	    r->gen != f->gen || r->window != f->key.window)
		return 0;
	__u64 length, extra = 0;
	if (h[0] >> 4 == 4) {
		length = be16(h + 2);
	} else {
		length = (__u64)be16(h + 4) + 40;
		extra = 8; /* the fragment header is gone after reassembly */
	}
	if (r->bytes != length + (__u64)(r->packets - 1) * r->hdr_len + extra)
		return 0;
	struct inflight m = *f;
	m.packets = r->packets;
	m.bytes = r->bytes;
	m.flags = r->flags;
	bpf_map_delete_elem(&frags, &fk);
	if (m.gen)
		move_to_reject(&flows1, &m);
	else
		move_to_reject(&flows0, &m);
	return 1;
}

/* on_kfree_skb sees every freed skb with its drop reason. Packets that
 * netfilter dropped (NF_DROP from nftables or iptables, including reject
 * rules) become REJECT:
 *  - a received packet was already counted as ACCEPT by the ingress
 *    program, moments earlier in the same softirq on the same CPU; the
 *    inflight cache says exactly what was added, and that is moved;
 *  - a locally generated packet is dropped before the egress program saw
 *    it, so it is only counted, as egress REJECT on its route's device.
 */
SEC("tp_btf/kfree_skb")
int on_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	__u32 reason = (__u32)ctx[2];

	if (reason != netfilter_drop_reason || !skb)
		return 0;

	int received = skb->skb_iif != 0;
	struct inflight *f = received ? inflight_find(skb) : NULL;
	if (f) {
		/* The cache slot is this skb's if the address matches, it was
		 * counted within the last second, and its IP header still has
		 * the same version, length, first protocol byte and source
		 * address (DNAT and forwarding change none of them). An skb
		 * freed normally leaves its slot behind, but a later skb at the
		 * same address that was received on an attached interface
		 * overwrote it in the ingress program; one received elsewhere
		 * would have to match all of these. */
		__u8 h[24];
		__u32 fp = 0;
		int same_src = 0;
		unsigned char *head = skb->head;
		__u32 nh = skb->network_header;
		if (bpf_probe_read_kernel(h, sizeof(h), head + nh) == 0) {
			if (h[0] >> 4 == 4) {
				fp = (4u << 28) | ((__u32)be16(h + 2) << 8) | h[9];
				same_src = __builtin_memcmp(h + 12, f->key.src, 4) == 0;
			} else if (h[0] >> 4 == 6) {
				fp = (6u << 28) | ((__u32)be16(h + 4) << 8) | h[6];
				same_src = __builtin_memcmp(h + 8, f->key.src, 16) == 0;
			}
		}
		__u64 now = bpf_ktime_get_boot_ns();
		f->skb = 0; /* a second free of the same skb must not move twice */
		if (same_src && now - f->ts < 1000000000ULL) {
			if (fp == f->fingerprint) {
				if (f->gen)
					move_to_reject(&flows1, f);
				else
					move_to_reject(&flows0, f);
				return 0;
			}
			if (f->is_frag && reassembled_reject(f, h))
				return 0;
		}
	}
	if (!received) {
		egress_reject(skb);
		return 0;
	}
	/* Received on an interface that is not attached, or counted so long
	 * ago (queued to user space) that the cache forgot it. */
	stat_add(STAT_REJECT_UNMATCHED, 1);
	return 0;
}
