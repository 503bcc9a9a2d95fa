/* SPDX-License-Identifier: GPL-2.0 */
/* Header bytes for --write (pcapng): after a wire segment's record, a
 * second record with the packet's own IP and TCP headers, so checksums, IP
 * ids, TTLs and options reach the file as the kernel saw them. Off unless
 * user space sets capture_headers before load: the verifier then prunes
 * all of it, so a run without --write pays nothing. */
#ifndef TCPTRACER_CAPTURE_H
#define TCPTRACER_CAPTURE_H

#include "common.h"

const volatile __u8 capture_headers = 0;

/* off is where the network header starts; h, th and l3 are what
 * handle_pkt parsed. TC egress is never the wire's observation (see the
 * wire rule), so it gets no headers record. */
static __always_inline void emit_headers(const struct pkt *p, bool tc, __u32 off, const struct rec_hdr *h,
					 const struct tcphdr *th, const struct l3_info *l3)
{
	struct headers_event *c;
	__u32 want, n;

	if (!capture_headers || (p->egress && p->point == POINT_TC))
		return;
	c = reserve(sizeof(*c));
	if (!c)
		return;
	c->hdr = *h;
	c->hdr.type = REC_HEADERS;
	c->hdr.ts_ns = bpf_ktime_get_ns();
	c->ifindex = p->ifindex;
	c->seq = bpf_ntohl(th->seq);
	c->ack = bpf_ntohl(th->ack_seq);
	c->dir = p->egress;
	c->point = p->point;
	c->orig_len = l3->l4_end - off;
	want = l3->l4_off - off + th->doff * 4;
	if (want > HEADERS_MAX)
		want = HEADERS_MAX;
	/* Bounded arithmetically, as in load_options: 1..HEADERS_MAX. */
	n = ((want - 1) & (HEADERS_MAX - 1)) + 1;
	c->cap_len = n;
	if (pkt_load(p, tc, off, c->data, n)) {
		bpf_ringbuf_discard(c, BPF_RB_NO_WAKEUP);
		return;
	}
	submit(c);
}

#endif
