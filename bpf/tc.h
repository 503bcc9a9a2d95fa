/* SPDX-License-Identifier: GPL-2.0 */
/* TC classifier: every segment on an interface, ingress and egress. The
 * classifier never changes or drops a packet. */
#ifndef TCPTRACER_TC_H
#define TCPTRACER_TC_H

#include "pkt.h"

#define TC_CONTINUE -1 /* TC_ACT_UNSPEC for cls_bpf, TCX_NEXT for tcx */
#define ETH_HLEN 14

/* Network header offset: 0 on devices without a link-layer header. */
static __always_inline __u32 l3_offset(const struct pkt *p, __u16 skb_proto)
{
	__be16 proto;

	if (pkt_load(p, true, 12, &proto, sizeof(proto)) == 0 && proto == skb_proto)
		return ETH_HLEN;
	return 0;
}

static __always_inline int handle_tc(struct __sk_buff *skb, bool egress)
{
	struct pkt p = {.skb = skb, .point = POINT_TC, .egress = egress};
	__u32 proto = skb->protocol;

	/* One read of the context field: clang may otherwise merge the reads
	 * into a load through a modified ctx pointer, which the verifier rejects. */
	barrier_var(proto);
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return TC_CONTINUE;
	p.data = (void *)(long)skb->data;
	p.data_end = (void *)(long)skb->data_end;
	p.end = skb->len;
	p.ifindex = skb->ifindex;
	p.gso_segs = skb->gso_segs;
	p.gso_size = skb->gso_size;
	handle_pkt(&p, true, l3_offset(&p, proto), proto, 0);
	return TC_CONTINUE;
}

#endif
