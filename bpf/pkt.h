/* SPDX-License-Identifier: GPL-2.0 */
/* Parse IPv4/IPv6 -> TCP from a packet and emit a segment record. The same
 * code serves the TC classifier (reads the linear part directly and falls
 * back to bpf_skb_load_bytes for bytes outside it, so non-linear packets
 * parse too) and the transmit tracepoint (reads kernel memory from
 * skb->head). The classifier sees frames before the stack has
 * validated them, so every length and offset is checked before use: a
 * packet that is not a well-formed TCP segment is counted as malformed and
 * skipped, never reported with made-up numbers. Only header bytes (IP,
 * TCP and its options) are read; no payload byte reaches a record. */
#ifndef TCPTRACER_PKT_H
#define TCPTRACER_PKT_H

#include "common.h"
#include "track.h"
#include "sender.h"

#define TCP_MAX_OPTS 40
#define TCP_HDR_MIN 20
#define IPV6_HDR_LEN 40

/* The packet being parsed. Offsets are relative to the start the reader
 * uses: skb->data for TC, skb->head for the tracepoint. tc is a
 * compile-time constant in every caller, so each program keeps only its
 * own reader (the other is not a helper its program type may call). */
struct pkt {
	struct __sk_buff *skb;     /* TC */
	void *data;                /* TC: skb->data, for direct access */
	void *data_end;            /* TC: end of the linear part */
	const unsigned char *head; /* tracepoint */
	__u32 end;                 /* offset just after the packet's last byte */
	__u32 ifindex;
	__u16 gso_segs;
	__u16 gso_size;
	__u8 point;
	__u8 egress;
};

/* TC reads of a constant length come straight from the linear part when
 * it holds them (headers always are on lo and after GRO): a bounds check
 * instead of a helper call. Anything else goes through the helper. */
static __always_inline int pkt_load(const struct pkt *p, bool tc, __u32 off, void *dst, __u32 len)
{
	if (tc) {
		if (__builtin_constant_p(len) && off < 0xffff) {
			void *src = p->data + off;

			if (src + len <= p->data_end) {
				__builtin_memcpy(dst, src, len);
				return 0;
			}
		}
		return bpf_skb_load_bytes(p->skb, off, dst, len);
	}
	return bpf_probe_read_kernel(dst, len, p->head + off);
}

/* Where the TCP header starts and where the IP packet ends. */
struct l3_info {
	__u32 l4_off;
	__u32 l4_end;
};

enum parse_result {
	PARSE_OK = 0,
	PARSE_SKIP = 1,      /* not TCP, or not for us */
	PARSE_MALFORMED = 2, /* lengths or offsets that do not hold together */
};

/* IPv4. A total length of 0 is legal only on a GSO super-packet (BIG TCP),
 * whose length is then the skb's. */
static __always_inline int parse_ipv4(const struct pkt *p, bool tc, __u32 off, struct rec_hdr *h,
				      struct l3_info *l3)
{
	struct iphdr ip;
	__u32 hl, tot;

	if (pkt_load(p, tc, off, &ip, sizeof(ip)))
		return PARSE_SKIP;
	if (ip.version != 4 || ip.protocol != IPPROTO_TCP)
		return PARSE_SKIP;
	if (ip.frag_off & bpf_htons(0x1fff)) /* not the first fragment */
		return PARSE_SKIP;
	hl = ip.ihl * 4;
	tot = bpf_ntohs(ip.tot_len);
	if (tot == 0 && p->gso_size)
		tot = p->end - off;
	if (ip.ihl < 5 || tot < hl + TCP_HDR_MIN || off + tot > p->end)
		return PARSE_MALFORMED;
	h->family = AF_INET;
	__builtin_memcpy(h->saddr, &ip.saddr, 4);
	__builtin_memcpy(h->daddr, &ip.daddr, 4);
	l3->l4_off = off + hl;
	l3->l4_end = off + tot;
	return PARSE_OK;
}

#define NEXTHDR_HOP 0
#define NEXTHDR_ROUTING 43
#define NEXTHDR_FRAGMENT 44
#define NEXTHDR_DEST 60

/* One IPv6 extension header at *off: advance past it, or say why not. A
 * fragment header with a non-zero offset means the TCP header is not in
 * this packet. */
static __always_inline int ipv6_ext(const struct pkt *p, bool tc, __u32 *off, __u32 end, __u8 *next)
{
	struct ipv6_opt_hdr ext;
	__u16 frag_off;

	if (*next != NEXTHDR_HOP && *next != NEXTHDR_ROUTING && *next != NEXTHDR_DEST &&
	    *next != NEXTHDR_FRAGMENT)
		return PARSE_SKIP;
	if (*off + 8 > end || pkt_load(p, tc, *off, &ext, sizeof(ext)))
		return PARSE_MALFORMED;
	if (*next == NEXTHDR_FRAGMENT) {
		if (pkt_load(p, tc, *off + 2, &frag_off, sizeof(frag_off)))
			return PARSE_MALFORMED;
		if (bpf_ntohs(frag_off) & 0xfff8)
			return PARSE_SKIP;
		*off += 8;
	} else {
		*off += (ext.hdrlen + 1) * 8;
	}
	*next = ext.nexthdr;
	return PARSE_OK;
}

/* IPv6: the TCP header may follow a few extension headers. A payload
 * length of 0 is legal only on a GSO super-packet (BIG TCP jumbogram). */
static __always_inline int parse_ipv6(const struct pkt *p, bool tc, __u32 off, struct rec_hdr *h,
				      struct l3_info *l3)
{
	struct ipv6hdr ip;
	__u32 end;
	__u8 next;

	if (pkt_load(p, tc, off, &ip, sizeof(ip)))
		return PARSE_SKIP;
	if (ip.version != 6)
		return PARSE_SKIP;
	end = off + IPV6_HDR_LEN + bpf_ntohs(ip.payload_len);
	if (ip.payload_len == 0 && p->gso_size)
		end = p->end;
	if (end > p->end)
		return PARSE_MALFORMED;
	h->family = AF_INET6;
	__builtin_memcpy(h->saddr, &ip.saddr, 16);
	__builtin_memcpy(h->daddr, &ip.daddr, 16);
	next = ip.nexthdr;
	off += IPV6_HDR_LEN;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		int r;

		if (next == IPPROTO_TCP)
			break;
		r = ipv6_ext(p, tc, &off, end, &next);
		if (r != PARSE_OK)
			return r;
	}
	if (next != IPPROTO_TCP)
		return PARSE_SKIP;
	if (off + TCP_HDR_MIN > end)
		return PARSE_MALFORMED;
	l3->l4_off = off;
	l3->l4_end = end;
	return PARSE_OK;
}

/* TCP options as copied from the packet and as parsed. */
struct tcp_opts {
	__u8 raw[64];
	__u32 len;
	__u32 tsval;
	__u32 tsecr;
	__u32 sack[8];
	__u16 mss;
	__u8 wscale;
	__u8 mask;
	__u8 nsack;
	__u8 _pad[3];
};

static __always_inline __u32 opt_u32(const __u8 *o, __u32 i)
{
	return ((__u32)o[i & 63] << 24) | ((__u32)o[(i + 1) & 63] << 16) |
	       ((__u32)o[(i + 2) & 63] << 8) | o[(i + 3) & 63];
}

/* Parse the option at offset i and return the offset of the next one, or
 * 64 to stop. A global (not inlined) function is verified once, with i
 * unknown, so the caller's loop does not multiply verifier states. */
__noinline int parse_option(struct tcp_opts *o, __u32 i)
{
	__u8 kind, len;

	if (!o || i >= o->len || i >= TCP_MAX_OPTS)
		return 64;
	/* Keep the index masks: clang would drop them given the check above,
	 * and the verifier does not link the copies of i it then uses. */
	barrier_var(i);
	kind = o->raw[i & 63];
	if (kind == 0)
		return 64;
	if (kind == 1)
		return i + 1;
	len = o->raw[(i + 1) & 63];
	if (len < 2 || i + len > o->len)
		return 64;
	if (kind == 2 && len == 4) {
		o->mss = ((__u16)o->raw[(i + 2) & 63] << 8) | o->raw[(i + 3) & 63];
		o->mask |= OPT_MSS;
	} else if (kind == 3 && len == 3) {
		o->wscale = o->raw[(i + 2) & 63];
		o->mask |= OPT_WSCALE;
	} else if (kind == 4 && len == 2) {
		o->mask |= OPT_SACK_PERM;
	} else if (kind == 5 && len >= 10) {
		__u32 n = (len - 2) / 8;

		for (__u32 b = 0; b < 4 && b < n; b++) {
			o->sack[(b * 2) & 7] = opt_u32(o->raw, i + 2 + b * 8);
			o->sack[(b * 2 + 1) & 7] = opt_u32(o->raw, i + 6 + b * 8);
			o->nsack = b + 1;
		}
	} else if (kind == 8 && len == 10) {
		o->tsval = opt_u32(o->raw, i + 2);
		o->tsecr = opt_u32(o->raw, i + 6);
		o->mask |= OPT_TS;
	}
	return i + len;
}

static __always_inline void parse_options(struct segment_event *e, struct tcp_opts *o)
{
	__u32 i = 0;

	for (int n = 0; n < TCP_MAX_OPTS && i < TCP_MAX_OPTS; n++)
		i = parse_option(o, i);
	e->mss = o->mss;
	e->wscale = o->wscale;
	e->opt_mask = o->mask;
	e->nsack = o->nsack;
	e->tsval = o->tsval;
	e->tsecr = o->tsecr;
	__builtin_memcpy(e->sack, o->sack, sizeof(e->sack));
}

/* Copy and parse the options; the caller checked that the TCP header
 * (doff * 4 bytes) lies inside the IP packet. */
/* The options Linux puts on every segment after the handshake: NOP, NOP,
 * timestamps. Taken without the generic parser. */
static __always_inline bool load_ts_only(const struct pkt *p, bool tc, struct segment_event *e,
					 __u32 l4_off)
{
	__u8 o[12];

	if (pkt_load(p, tc, l4_off + TCP_HDR_MIN, o, sizeof(o)) ||
	    o[0] != 1 || o[1] != 1 || o[2] != 8 || o[3] != 10)
		return false;
	e->tsval = opt_u32(o, 4);
	e->tsecr = opt_u32(o, 8);
	e->opt_mask = OPT_TS;
	return true;
}

static __always_inline void load_options(const struct pkt *p, bool tc, struct segment_event *e,
					 __u32 l4_off, __u32 optlen)
{
	struct tcp_opts opts;
	/* The length is bounded arithmetically, not by a branch: clang turns
	 * range checks into comparisons on a copy, and verifiers then see a
	 * length that may be zero or negative. For 1..40 this is optlen. */
	__u32 n = ((optlen - 1) & 63) + 1;

	if (optlen == 0 || (optlen == 12 && load_ts_only(p, tc, e, l4_off)))
		return;
	__builtin_memset(&opts, 0, sizeof(opts));
	if (optlen <= TCP_MAX_OPTS &&
	    pkt_load(p, tc, l4_off + TCP_HDR_MIN, opts.raw, n) == 0) {
		opts.len = optlen;
		parse_options(e, &opts);
	}
}

static __always_inline void emit_segment(const struct pkt *p, bool tc, const struct rec_hdr *h,
					 const struct tcphdr *th, const struct l3_info *l3, __u16 flags,
					 __u64 cookie)
{
	__u32 doff = th->doff * 4;
	struct segment_event *e;

	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr = *h;
	e->hdr.type = REC_SEGMENT;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.cookie = cookie;
	e->ifindex = p->ifindex;
	e->dir = p->egress;
	e->point = p->point;
	e->gso_segs = p->gso_segs;
	e->gso_size = p->gso_size;
	e->seq = bpf_ntohl(th->seq);
	e->ack = bpf_ntohl(th->ack_seq);
	e->flags = flags;
	e->win = bpf_ntohs(th->window);
	e->hdr_len = doff;
	e->len = l3->l4_end - l3->l4_off - doff;
	load_options(p, tc, e, l3->l4_off, doff - TCP_HDR_MIN);
	if (tc && p->egress)
		sender_from_skb(p->skb, h->sport, h->dport, &e->sender);
	submit(e);
}

#include "capture.h"

/* Parse the packet whose network header is at off (protocol in network
 * byte order) and emit its record if it passes the filters. Returns true
 * when a record was due (emitted or lost). */
static __always_inline bool handle_pkt(const struct pkt *p, bool tc, __u32 off, __u16 proto, __u64 cookie)
{
	struct rec_hdr h = {};
	struct l3_info l3 = {};
	struct tcphdr th;
	__u16 flags;
	int r;

	if (proto == bpf_htons(ETH_P_IP)) {
		if (filter_family == AF_INET6)
			return false;
		r = parse_ipv4(p, tc, off, &h, &l3);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (filter_family == AF_INET)
			return false;
		r = parse_ipv6(p, tc, off, &h, &l3);
	} else {
		return false;
	}
	if (r == PARSE_OK && pkt_load(p, tc, l3.l4_off, &th, sizeof(th)))
		r = PARSE_MALFORMED;
	if (r == PARSE_OK && (th.doff < 5 || l3.l4_off + th.doff * 4 > l3.l4_end))
		r = PARSE_MALFORMED;
	if (r != PARSE_OK) {
		if (r == PARSE_MALFORMED)
			count_malformed();
		return false;
	}
	h.sport = bpf_ntohs(th.source);
	h.dport = bpf_ntohs(th.dest);
	if (!port_ok(h.sport, h.dport))
		return false;
	flags = ((__u8 *)&th)[13] | ((((__u8 *)&th)[12] & 1) << 8);
	if (filter_pid && !track_pass(&h, flags, p->egress))
		return false;
	/* The sending socket's cookie, only for packets that are recorded. */
	if (tc && p->egress)
		cookie = bpf_get_socket_cookie(p->skb);
	emit_segment(p, tc, &h, &th, &l3, flags, cookie);
	emit_headers(p, tc, off, &h, &th, &l3);
	return true;
}

#endif
