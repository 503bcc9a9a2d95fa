/* SPDX-License-Identifier: GPL-2.0 */
/* The sending socket's state beside a segment: what tcp_sock held when TC
 * egress saw the segment leave, or when the kernel retransmitted. Read
 * through BTF (bpf_skc_to_tcp_sock, then direct loads), so the field
 * offsets follow the running kernel. */
#ifndef TCPTRACER_SENDER_H
#define TCPTRACER_SENDER_H

#include "common.h"

/* Microseconds per jiffy (icsk_rto is in jiffies), set by the loader from
 * the kernel's CONFIG_HZ; 0 when that is not readable. */
const volatile __u32 jiffy_us = 0;

static __always_inline void sender_fill(struct sender_state *s, struct tcp_sock *tp)
{
	struct inet_connection_sock *icsk = &tp->inet_conn;

	s->snd_una = tp->snd_una;
	s->snd_nxt = tp->snd_nxt;
	s->rcv_nxt = tp->rcv_nxt;
	s->snd_wnd = tp->snd_wnd;
	s->snd_cwnd = tp->snd_cwnd;
	s->ssthresh = tp->snd_ssthresh;
	s->srtt_us = tp->srtt_us;
	s->mdev_us = tp->mdev_us;
	s->rttvar_us = tp->rttvar_us;
	s->rto_us = icsk->icsk_rto * jiffy_us;
	s->packets_out = tp->packets_out;
	s->retrans_out = tp->retrans_out;
	s->lost_out = tp->lost_out;
	s->sacked_out = tp->sacked_out;
	s->delivered = tp->delivered;
	s->total_retrans = tp->total_retrans;
	s->dsack_dups = tp->dsack_dups;
	s->tlp_high_seq = tp->tlp_high_seq;
	s->mss = tp->mss_cache;
	s->ca_state = BPF_CORE_READ_BITFIELD(icsk, icsk_ca_state);
	s->retransmits = icsk->icsk_retransmits;
	s->backoff = icsk->icsk_backoff;
	s->valid = 1;
}

/* TC egress: the skb still belongs to the socket that sent it. Request
 * sockets (SYN-ACK), forwarded packets and replies a kernel control
 * socket sends for a connection (a time-wait socket's ACK, an RST without
 * socket) have no full TCP socket of their own; the record then says so
 * (valid 0). The control socket is a raw socket, which
 * bpf_skc_to_tcp_sock does not tell from a TCP one, so the socket's ports
 * must be the segment's (sport, dport in host order). */
static __always_inline void sender_from_skb(struct __sk_buff *skb, __u16 sport, __u16 dport,
					    struct sender_state *s)
{
	struct bpf_sock *sk = skb->sk;
	struct tcp_sock *tp;

	if (!sk || sk->src_port != sport || bpf_ntohs(sk->dst_port) != dport)
		return;
	tp = bpf_skc_to_tcp_sock(sk);
	if (tp)
		sender_fill(s, tp);
}

/* Tracing hooks: sk is the kernel's struct sock. */
static __always_inline void sender_from_sock(const struct sock *sk, struct sender_state *s)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock((void *)sk);

	if (tp)
		sender_fill(s, tp);
}

#endif
