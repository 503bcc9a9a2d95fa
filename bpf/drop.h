/* SPDX-License-Identifier: GPL-2.0 */
/* skb:kfree_skb: the kernel freed an skb it did not deliver, and (since
 * 5.17) says why. It fires for every dropped skb on the host, so the
 * checks run cheapest first: the reason (a context load), the protocol
 * (one skb field), then the IP and TCP headers and the filters. */
#ifndef TCPTRACER_DROP_H
#define TCPTRACER_DROP_H

#include "pkt.h"

/* A consumed skb is not a drop; kernels that name it send it to
 * skb:consume_skb, so this only guards against one that does not. */
static __always_inline bool drop_reason_wanted(__u32 reason)
{
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED))
		return false;
	return true;
}

/* Under a pid filter: a segment of a tracked connection, or a SYN to a
 * tracked listener. Full entries are stored in both orientations. */
static __always_inline bool drop_tracked(const struct rec_hdr *h, __u16 flags)
{
	struct track_key k = {.family = h->family, .kind = TRACK_FULL};

	__builtin_memcpy(k.laddr, h->saddr, 16);
	__builtin_memcpy(k.raddr, h->daddr, 16);
	k.lport = h->sport;
	k.rport = h->dport;
	if (bpf_map_lookup_elem(&tracked, &k))
		return true;
	if ((flags & 0x12) != 0x02)
		return false;
	__builtin_memset(&k, 0, sizeof(k));
	k.family = h->family;
	k.kind = TRACK_LISTEN;
	k.lport = h->dport;
	return bpf_map_lookup_elem(&tracked, &k) != NULL;
}

static __always_inline void emit_drop(const struct rec_hdr *h, const struct tcphdr *th,
				      const struct l3_info *l3, __u16 flags, __u32 ifindex,
				      __u64 location, __u32 reason, bool has_reason)
{
	struct drop_event *e = reserve(sizeof(*e));

	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr = *h;
	e->hdr.type = REC_DROP;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->location = location;
	e->reason = reason;
	e->has_reason = has_reason;
	e->ifindex = ifindex;
	e->seq = bpf_ntohl(th->seq);
	e->ack = bpf_ntohl(th->ack_seq);
	e->flags = flags;
	e->len = l3->l4_end - l3->l4_off - th->doff * 4;
	submit(e);
}

static __always_inline void on_kfree_skb(const struct sk_buff *skb, __u64 location, __u32 reason,
					 bool has_reason)
{
	struct pkt p = {.point = POINT_TC};
	struct rec_hdr h = {};
	struct l3_info l3 = {};
	struct tcphdr th;
	__u16 proto, nh, flags;
	int r;

	if (has_reason && !drop_reason_wanted(reason))
		return;
	proto = skb->protocol;
	if (proto == bpf_htons(ETH_P_IP))
		r = filter_family == AF_INET6 ? PARSE_SKIP : PARSE_OK;
	else if (proto == bpf_htons(ETH_P_IPV6))
		r = filter_family == AF_INET ? PARSE_SKIP : PARSE_OK;
	else
		return;
	nh = skb->network_header;
	if (r != PARSE_OK || nh == (__u16)~0U)
		return;
	p.head = skb->head;
	p.end = (__u32)(skb->data - skb->head) + skb->len;
	if (proto == bpf_htons(ETH_P_IP))
		r = parse_ipv4(&p, false, nh, &h, &l3);
	else
		r = parse_ipv6(&p, false, nh, &h, &l3);
	/* Not counted as malformed: the classifier already counted it, or
	 * the kernel dropped it for being so. */
	if (r != PARSE_OK || pkt_load(&p, false, l3.l4_off, &th, sizeof(th)) || th.doff < 5 ||
	    l3.l4_off + th.doff * 4 > l3.l4_end)
		return;
	h.sport = bpf_ntohs(th.source);
	h.dport = bpf_ntohs(th.dest);
	if (!port_ok(h.sport, h.dport))
		return;
	flags = ((__u8 *)&th)[13] | ((((__u8 *)&th)[12] & 1) << 8);
	if (filter_pid && !drop_tracked(&h, flags))
		return;
	emit_drop(&h, &th, &l3, flags, skb->dev ? skb->dev->ifindex : skb->skb_iif, location, reason,
		  has_reason);
}

#endif
