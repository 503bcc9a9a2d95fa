/* SPDX-License-Identifier: GPL-2.0 */
/* Logic of the socket hooks; the entry points in tcptracer.bpf.c differ only
 * in how they get their arguments (fentry, kprobe or tracepoint). */
#ifndef TCPTRACER_SOCK_H
#define TCPTRACER_SOCK_H

#include "common.h"
#include "track.h"
#include "sender.h"

/* Record the current task as the owner of sk. Called only in process
 * context (connect, listen, accept, send/recv). */
static __always_inline void record_owner(const struct sock *sk)
{
	struct proc_info p = {};
	__u64 key = (__u64)sk;

	current_proc(&p);
	if (!pid_ok(&p))
		return;
	p.src = PID_OWNER;
	bpf_map_update_elem(&owners, &key, &p, BPF_NOEXIST);
}

/* A send or receive: record its task as the owner of a traced socket that
 * has none yet. Only tp_btf programs call it, so sk is a trusted pointer
 * read with plain loads, not a helper call per field, and it may carry
 * socket storage: this runs on every send and receive of every socket. */
static __always_inline void owner_from_io(struct sock *sk)
{
	__u64 key = (__u64)sk;
	__u16 sport = sk->__sk_common.skc_num;
	__u16 dport = bpf_ntohs(sk->__sk_common.skc_dport);

	if (!port_ok(sport, dport) || sk->sk_protocol != IPPROTO_TCP ||
	    bpf_sk_storage_get(&owner_known, sk, 0, 0))
		return;
	if (!bpf_map_lookup_elem(&owners, &key)) {
		record_owner(sk);
		if (!bpf_map_lookup_elem(&owners, &key))
			return; /* not a process the pid filter takes */
	}
	bpf_sk_storage_get(&owner_known, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

/* connect() entry: the owner is the caller; with a pid filter the remote
 * endpoint is registered so the classifier takes the SYN. */
static __always_inline void on_connect_enter(const struct sock *sk, const struct sockaddr *uaddr)
{
	struct proc_info p = {};
	__u64 key = (__u64)sk;
	__u16 family, port;
	__u8 raddr[16] = {};

	current_proc(&p);
	if (!pid_ok(&p))
		return;
	p.src = PID_OWNER;
	bpf_map_update_elem(&owners, &key, &p, BPF_ANY);
	if (filter_pid == 0)
		return;
	family = BPF_CORE_READ(uaddr, sa_family);
	if (family == AF_INET) {
		const struct sockaddr_in *in = (const void *)uaddr;
		BPF_CORE_READ_INTO((__u32 *)raddr, in, sin_addr.s_addr);
		port = BPF_CORE_READ(in, sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)uaddr;
		BPF_CORE_READ_INTO(&raddr, in6, sin6_addr.in6_u.u6_addr8);
		port = BPF_CORE_READ(in6, sin6_port);
	}
	track_remote(family, raddr, bpf_ntohs(port));
}

/* A connect record. h holds the socket's tuple, p its owner. */
static __always_inline void emit_connect(const struct rec_hdr *h, const struct proc_info *p, __u32 isn,
					 int ret, __u64 cookie)
{
	struct connect_event *e;

	if (!tuple_ok(h) || !pid_ok(p))
		return;
	track_full(h);
	e = reserve(sizeof(*e));
	if (!e)
		return;
	e->hdr = *h;
	e->hdr.type = REC_CONNECT;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.cookie = cookie;
	e->proc = *p;
	e->isn = isn;
	e->ret = ret;
	submit(e);
}

/* tcp_v4_connect/tcp_v6_connect returned (fexit, kretprobe): the caller is
 * the owner, and tcp_connect_init left snd_una at the ISN. */
static __always_inline void on_connect_return(const struct sock *sk, int ret, __u64 cookie)
{
	const struct tcp_sock *tp = (const void *)sk;
	struct rec_hdr h = {};
	struct proc_info p = {};

	sock_tuple(sk, &h);
	current_proc(&p);
	p.src = PID_OWNER;
	emit_connect(&h, &p, BPF_CORE_READ(tp, snd_una), ret, cookie);
}

#define ECONNABORTED 103

/* Tracepoint mode: no tracepoint sits in tcp_v4_connect, so the connect
 * record is written when the socket leaves SYN_SENT, with the outcome of
 * the handshake: 0 when established (snd_una is then ISN+1), else the
 * socket's error (-ECONNREFUSED, -ETIMEDOUT), or -ECONNABORTED when it was
 * closed first. sk_state still reads SYN_SENT here. */
static __always_inline void connect_from_state(const struct sock *sk, const struct rec_hdr *h,
					       const struct proc_info *p, int newstate, __u64 cookie)
{
	const struct tcp_sock *tp = (const void *)sk;
	__u32 una = BPF_CORE_READ(tp, snd_una);
	int err = BPF_CORE_READ(sk, sk_err);

	if (newstate == TCP_ESTABLISHED)
		emit_connect(h, p, una - 1, 0, cookie);
	else
		emit_connect(h, p, una, err ? -err : -ECONNABORTED, cookie);
}

/* Owner bookkeeping for a state change that happens in process context. */
static __always_inline void state_owner(const struct sock *sk, const struct rec_hdr *h, int newstate)
{
	if (newstate == TCP_LISTEN) {
		record_owner(sk);
		if (filter_pid) {
			struct proc_info p = {};
			current_proc(&p);
			if (pid_ok(&p))
				track_listen(h->family, h->sport);
		}
	} else if (newstate == TCP_SYN_SENT && connect_via_tp) {
		struct proc_info p = {};

		record_owner(sk);
		current_proc(&p);
		if (filter_pid && pid_ok(&p) && tuple_ok(h))
			track_remote(h->family, h->daddr, h->dport);
	}
}

static __always_inline void sock_view(const struct sock *sk, struct state_event *e)
{
	const struct tcp_sock *tp = (const void *)sk;

	e->snd_una = BPF_CORE_READ(tp, snd_una);
	e->snd_nxt = BPF_CORE_READ(tp, snd_nxt);
	e->rcv_nxt = BPF_CORE_READ(tp, rcv_nxt);
}

static __always_inline void emit_state(const struct state_event *s, const struct rec_hdr *h)
{
	struct state_event *e = reserve(sizeof(*e));

	if (!e)
		return;
	*e = *s;
	e->hdr = *h;
	e->hdr.type = REC_STATE;
	e->hdr.ts_ns = s->hdr.ts_ns;
	e->hdr.cookie = s->hdr.cookie;
	submit(e);
}

/* A child socket reports LISTEN->SYN_RECV before its remote side is set (the
 * gave it its remote side. That record waits here, by socket, for the
 * socket's next change (to ESTABLISHED or CLOSE, in the same receive
 * path), and goes out just before it with the tuple then known. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct state_event);
} held_children SEC(".maps");

/* Whether the socket does not know its peer yet (port or address unset). */
static __always_inline bool remote_unset(const struct rec_hdr *h)
{
	const __u64 *a = (const __u64 *)h->daddr;

	if (h->dport == 0)
		return true;
	if (h->family == AF_INET)
		return *(const __u32 *)h->daddr == 0;
	return a[0] == 0 && a[1] == 0;
}

static __always_inline void release_child(const struct sock *sk, const struct rec_hdr *h)
{
	__u64 key = (__u64)sk;
	struct state_event *held = bpf_map_lookup_elem(&held_children, &key);

	if (!held)
		return;
	emit_state(held, h);
	bpf_map_delete_elem(&held_children, &key);
}

static __always_inline void on_state(const struct sock *sk, int oldstate, int newstate, __u64 cookie)
{
	struct state_event s = {};
	struct rec_hdr h = {};
	__u64 key = (__u64)sk;

	if (!is_tcp(sk))
		return;
	sock_tuple(sk, &h);
	state_owner(sk, &h, newstate);
	s.hdr.type = REC_STATE;
	s.hdr.ts_ns = bpf_ktime_get_ns();
	s.hdr.cookie = cookie;
	s.old_state = oldstate;
	s.new_state = newstate;
	sock_view(sk, &s);
	if (newstate == TCP_SYN_RECV && remote_unset(&h) && port_ok(h.sport, 0)) {
		s.hdr.family = h.family;
		sock_proc(sk, &s.proc);
		bpf_map_update_elem(&held_children, &key, &s, BPF_ANY);
		return;
	}
	if (!tuple_ok(&h))
		return;
	sock_proc(sk, &s.proc);
	if (!pid_ok(&s.proc))
		return;
	sender_from_sock(sk, &s.sender); /* only for sockets that pass the filters */
	if (s.proc.src == PID_OWNER)
		track_full(&h);
	if (oldstate == TCP_SYN_RECV)
		release_child(sk, &h);
	if (oldstate == TCP_SYN_SENT && connect_via_tp)
		connect_from_state(sk, &h, &s.proc, newstate, cookie);
	emit_state(&s, &h);
}

/* Tuple of a received skb, oriented as the receiving socket sees it (local
 * side first), and its TCP header. */
static __always_inline int skb_tuple(const struct sk_buff *skb, __u8 family, struct rec_hdr *h,
				     struct tcphdr *th)
{
	unsigned char *head = BPF_CORE_READ(skb, head);
	__u16 l3 = BPF_CORE_READ(skb, network_header);
	__u16 l4 = BPF_CORE_READ(skb, transport_header);

	if (bpf_probe_read_kernel(th, sizeof(*th), head + l4))
		return -1;
	h->family = family;
	h->sport = bpf_ntohs(th->dest);
	h->dport = bpf_ntohs(th->source);
	if (family == AF_INET) {
		struct iphdr *ip = (void *)(head + l3);
		BPF_CORE_READ_INTO((__u32 *)h->saddr, ip, daddr);
		BPF_CORE_READ_INTO((__u32 *)h->daddr, ip, saddr);
	} else {
		struct ipv6hdr *ip6 = (void *)(head + l3);
		BPF_CORE_READ_INTO(&h->saddr, ip6, daddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&h->daddr, ip6, saddr.in6_u.u6_addr8);
	}
	return 0;
}

/* tcp_rcv_state_process(sk, skb): the segment the state machine is about to
 * handle, the state before it, and the kernel's view of the sequence space.
 * The tuple comes from the packet, since a listener has no remote side. */
static __always_inline void on_rcv_state(const struct sock *sk, const struct sk_buff *skb, __u64 cookie)
{
	struct state_event *e;
	struct rec_hdr h = {};
	struct proc_info p = {};
	struct tcphdr th;

	if (skb_tuple(skb, BPF_CORE_READ(sk, __sk_common.skc_family), &h, &th) || !tuple_ok(&h))
		return;
	sock_proc(sk, &p);
	if (!pid_ok(&p))
		return;
	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr = h;
	e->hdr.type = REC_RCV_STATE;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.cookie = cookie;
	e->proc = p;
	e->old_state = BPF_CORE_READ(sk, __sk_common.skc_state);
	e->seq = bpf_ntohl(th.seq);
	e->ack = bpf_ntohl(th.ack_seq);
	e->flags = ((__u8 *)&th)[13] | ((((__u8 *)&th)[12] & 1) << 8);
	e->len = BPF_CORE_READ(skb, len) - th.doff * 4;
	sock_view(sk, e);
	submit(e);
}

/* Owner of an accepted socket, recorded when accept() returns it. */
static __always_inline void on_accept(const struct sock *newsk)
{
	struct rec_hdr h = {};

	if (!newsk)
		return;
	record_owner(newsk);
	sock_tuple(newsk, &h);
	if (filter_pid && tuple_ok(&h)) {
		struct proc_info p = {};
		current_proc(&p);
		if (pid_ok(&p))
			track_full(&h);
	}
}

/* A retransmit or reset record; sk may be NULL for a reset answering a
 * segment no socket wanted, then the tuple is already in h. */
static __always_inline void emit_sock_event(const struct sock *sk, struct rec_hdr *h, __u8 type,
					    __u32 seq, __u32 len, __u8 reason, __u64 cookie)
{
	struct sock_event *e;
	struct proc_info p = {};

	if (sk)
		sock_tuple(sk, h);
	if (!tuple_ok(h))
		return;
	if (sk)
		sock_proc(sk, &p);
	if (!pid_ok(&p))
		return;
	e = reserve(sizeof(*e));
	if (!e)
		return;
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr = *h;
	e->hdr.type = type;
	e->hdr.ts_ns = bpf_ktime_get_ns();
	e->hdr.cookie = cookie;
	e->proc = p;
	e->seq = seq;
	e->len = len;
	e->state = sk ? BPF_CORE_READ(sk, __sk_common.skc_state) : 0;
	e->reason = reason;
	if (sk && type == REC_RETRANSMIT)
		sender_from_sock(sk, &e->sender);
	submit(e);
}

/* TCP_SKB_CB(skb)->seq and end_seq live at the start of skb->cb. */
static __always_inline void on_retransmit(const struct sock *sk, const struct sk_buff *skb, __u64 cookie)
{
	const struct tcp_skb_cb *cb = (const void *)__builtin_preserve_access_index(&skb->cb);
	__u32 seq = BPF_CORE_READ(cb, seq);
	__u32 end = BPF_CORE_READ(cb, end_seq);

	struct rec_hdr h = {};

	emit_sock_event(sk, &h, REC_RETRANSMIT, seq, end - seq, 0, cookie);
}

enum reset_reason {
	RESET_SENT = 1,
	RESET_RECEIVED = 2,
};

/* tcp_send_reset(sk, skb): sk is NULL when no socket wanted the segment
 * skb; skb is NULL for an active reset (abortive close). */
static __always_inline void on_send_reset(const struct sock *sk, const struct sk_buff *skb, __u64 cookie)
{
	struct rec_hdr h = {};
	struct tcphdr th;
	__u8 family = AF_INET;

	if (!sk) {
		if (!skb)
			return;
		if (BPF_CORE_READ(skb, protocol) == bpf_htons(ETH_P_IPV6))
			family = AF_INET6;
		if (skb_tuple(skb, family, &h, &th))
			return;
	}
	emit_sock_event(sk, &h, REC_RESET, 0, 0, RESET_SENT, cookie);
}

#endif
