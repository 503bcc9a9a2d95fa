/* SPDX-License-Identifier: GPL-2.0 */
/* The snapshot at start: a BPF iterator over the TCP sockets of the
 * tracer's network namespace writes one record per full socket (listeners
 * and connections; request and time-wait sockets have no owner to find)
 * that passes the port and family filters. User space joins the records
 * with /proc/PID/fd by socket inode to find each owner, seeds the owners
 * and tracked maps, and emits each socket's kernel view before the first
 * event. */
#ifndef TCPTRACER_ITER_H
#define TCPTRACER_ITER_H

#include "common.h"

struct snapshot_rec {
	__u64 sk;     /* the socket's address: the owners map's key */
	__u64 cookie;
	__u64 ino;    /* the socket inode, as in /proc/PID/fd */
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 snd_una;
	__u32 snd_nxt;
	__u32 rcv_nxt;
	__u16 sport;
	__u16 dport;
	__u8 family;
	__u8 state;
	__u8 _pad[6];
};

/* Keeps the type in BTF for bpf2go: records go out through
 * bpf_seq_write, which no map or record type declares. */
const struct snapshot_rec *unused_snapshot_rec __attribute__((unused));

static __always_inline int snapshot_sock(struct seq_file *seq, struct sock_common *skc)
{
	struct snapshot_rec r = {};
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
	const struct sock *sk = (const void *)tp;

	if (!tp)
		return 0;
	r.family = skc->skc_family;
	r.sport = skc->skc_num;
	r.dport = bpf_ntohs(skc->skc_dport);
	if (!family_ok(r.family) || !port_ok(r.sport, r.dport))
		return 0;
	if (r.family == AF_INET) {
		__builtin_memcpy(r.saddr, &skc->skc_rcv_saddr, 4);
		__builtin_memcpy(r.daddr, &skc->skc_daddr, 4);
	} else {
		__builtin_memcpy(r.saddr, &skc->skc_v6_rcv_saddr, 16);
		__builtin_memcpy(r.daddr, &skc->skc_v6_daddr, 16);
	}
	r.state = skc->skc_state;
	r.sk = (__u64)sk;
	r.cookie = bpf_get_socket_cookie((void *)sk);
	r.ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	r.snd_una = tp->snd_una;
	r.snd_nxt = tp->snd_nxt;
	r.rcv_nxt = tp->rcv_nxt;
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

#endif
