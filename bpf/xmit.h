/* SPDX-License-Identifier: GPL-2.0 */
/* net:net_dev_start_xmit: the skb a driver is handed, after the qdisc and
 * after software GSO has cut a super-packet into the segments the wire
 * carries. This is where packet capture taps outgoing packets, so on the
 * interfaces TC is attached to (loopback excepted: there capture and TC
 * ingress see the same incoming copy) these records are what the wire
 * carried, and TC egress records are the stack's view before the split. */
#ifndef TCPTRACER_XMIT_H
#define TCPTRACER_XMIT_H

#include "pkt.h"

/* Interfaces to record, set by user space: the traced non-loopback ones. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct xmit_key);
	__type(value, __u8);
} xmit_ifaces SEC(".maps");

static __always_inline void handle_xmit(const struct sk_buff *skb, const struct net_device *dev)
{
	struct xmit_key k = {};
	__u16 proto = BPF_CORE_READ(skb, protocol);
	const struct skb_shared_info *sh;
	const unsigned char *head;
	struct pkt p = {.point = POINT_XMIT, .egress = 1};

	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return;
	k.ifindex = BPF_CORE_READ(dev, ifindex);
	k.netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	if (!bpf_map_lookup_elem(&xmit_ifaces, &k))
		return;
	head = BPF_CORE_READ(skb, head);
	sh = (const void *)(head + BPF_CORE_READ(skb, end));
	p.head = head;
	p.end = (__u32)(BPF_CORE_READ(skb, data) - head) + BPF_CORE_READ(skb, len);
	p.ifindex = k.ifindex;
	p.gso_segs = BPF_CORE_READ(sh, gso_segs);
	p.gso_size = BPF_CORE_READ(sh, gso_size);
	handle_pkt(&p, false, BPF_CORE_READ(skb, network_header), proto, 0);
}

#endif
