/* SPDX-License-Identifier: GPL-2.0 */
/* TC classifier: parse Ethernet -> IPv4/IPv6 -> TCP and emit a segment
 * record. Reads go through bpf_skb_load_bytes so non-linear packets parse
 * too; the classifier never changes or drops a packet. */
#ifndef TCPTRACER_TC_H
#define TCPTRACER_TC_H

#include "common.h"
#include "track.h"

#define TC_CONTINUE -1 /* TC_ACT_UNSPEC for cls_bpf, TCX_NEXT for tcx */
#define ETH_HLEN 14
#define TCP_MAX_OPTS 40

struct l3_info {
	__u32 l4_off;
	__u32 l4_len; /* TCP header + payload, from the IP header's length */
};

static __always_inline int parse_ipv4(struct __sk_buff *skb, __u32 off, struct rec_hdr *h,
				      struct l3_info *l3)
{
	struct iphdr ip;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return -1;
	if (ip.version != 4 || ip.ihl < 5 || ip.protocol != IPPROTO_TCP)
		return -1;
	if (ip.frag_off & bpf_htons(0x1fff)) /* not the first fragment */
		return -1;
	h->family = AF_INET;
	__builtin_memcpy(h->saddr, &ip.saddr, 4);
	__builtin_memcpy(h->daddr, &ip.daddr, 4);
	l3->l4_off = off + ip.ihl * 4;
	l3->l4_len = bpf_ntohs(ip.tot_len) - ip.ihl * 4;
	if (ip.tot_len == 0) /* GSO super-packet with no length: trust the skb */
		l3->l4_len = skb->len - l3->l4_off;
	return 0;
}

/* IPv6: the TCP header may follow a few extension headers. */
static __always_inline int parse_ipv6(struct __sk_buff *skb, __u32 off, struct rec_hdr *h,
				      struct l3_info *l3)
{
	struct ipv6hdr ip;
	__u32 end;
	__u8 next;

	if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return -1;
	if (ip.version != 6)
		return -1;
	h->family = AF_INET6;
	__builtin_memcpy(h->saddr, &ip.saddr, 16);
	__builtin_memcpy(h->daddr, &ip.daddr, 16);
	next = ip.nexthdr;
	end = off + sizeof(ip) + bpf_ntohs(ip.payload_len);
	if (ip.payload_len == 0) /* jumbogram (BIG TCP): no length in the header */
		end = skb->len;
	off += sizeof(ip);
#pragma unroll
	for (int i = 0; i < 4; i++) {
		struct ipv6_opt_hdr ext;

		if (next == IPPROTO_TCP)
			break;
		if (next != 0 && next != 43 && next != 60 && next != 44)
			return -1;
		if (bpf_skb_load_bytes(skb, off, &ext, sizeof(ext)))
			return -1;
		off += next == 44 ? 8 : (ext.hdrlen + 1) * 8;
		next = ext.nexthdr;
	}
	if (next != IPPROTO_TCP)
		return -1;
	l3->l4_off = off;
	l3->l4_len = end - off;
	return 0;
}

/* Network header offset: 0 on devices without a link-layer header. */
static __always_inline __u32 l3_offset(struct __sk_buff *skb, __u16 skb_proto)
{
	__be16 proto;

	if (bpf_skb_load_bytes(skb, 12, &proto, sizeof(proto)) == 0 && proto == skb_proto)
		return ETH_HLEN;
	return 0;
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

static __always_inline void emit_segment(struct __sk_buff *skb, const struct rec_hdr *h,
					 const struct tcphdr *th, __u32 l4_off, __u32 l4_len,
					 __u16 flags, bool egress)
{
	struct tcp_opts opts = {};
	__u32 doff = th->doff * 4;
	__u32 optlen = doff - sizeof(*th);
	struct segment_event *e;

	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr = *h;
	e->hdr.type = REC_SEGMENT;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	if (egress)
		e->hdr.cookie = bpf_get_socket_cookie(skb);
	e->ifindex = skb->ifindex;
	e->dir = egress;
	e->seq = bpf_ntohl(th->seq);
	e->ack = bpf_ntohl(th->ack_seq);
	e->flags = flags;
	e->win = bpf_ntohs(th->window);
	e->hdr_len = doff;
	e->len = l4_len > doff ? l4_len - doff : 0;
	/* The length is bounded arithmetically, not by a branch: clang turns
	 * range checks into comparisons on a copy, and verifiers then see a
	 * length that may be zero or negative. For 1..40 this is optlen. */
	__u32 n = ((optlen - 1) & 63) + 1;

	if (optlen >= 1 && optlen <= TCP_MAX_OPTS &&
	    bpf_skb_load_bytes(skb, l4_off + sizeof(*th), opts.raw, n) == 0) {
		opts.len = optlen;
		parse_options(e, &opts);
	}
	submit(e);
}

static __always_inline int handle_tc(struct __sk_buff *skb, bool egress)
{
	struct rec_hdr h = {};
	struct l3_info l3 = {};
	struct tcphdr th;
	__u32 off, proto = skb->protocol;
	__u16 flags;

	/* One read of the context field: clang may otherwise merge the reads
	 * into a load through a modified ctx pointer, which the verifier rejects. */
	barrier_var(proto);
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return TC_CONTINUE;
	off = l3_offset(skb, proto);
	if (proto == bpf_htons(ETH_P_IP)) {
		if (filter_family == AF_INET6 || parse_ipv4(skb, off, &h, &l3))
			return TC_CONTINUE;
	} else if (filter_family == AF_INET || parse_ipv6(skb, off, &h, &l3)) {
		return TC_CONTINUE;
	}
	if (bpf_skb_load_bytes(skb, l3.l4_off, &th, sizeof(th)))
		return TC_CONTINUE;
	h.sport = bpf_ntohs(th.source);
	h.dport = bpf_ntohs(th.dest);
	if (!port_ok(h.sport, h.dport) || th.doff < 5)
		return TC_CONTINUE;
	flags = ((__u8 *)&th)[13] | ((((__u8 *)&th)[12] & 1) << 8);
	if (filter_pid && !track_pass(&h, flags, egress))
		return TC_CONTINUE;

	emit_segment(skb, &h, &th, l3.l4_off, l3.l4_len, flags, egress);
	return TC_CONTINUE;
}

#endif
