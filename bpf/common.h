/* SPDX-License-Identifier: GPL-2.0 */
/* Maps, run-time settings and helpers shared by every hook. */
#ifndef TCPTRACER_COMMON_H
#define TCPTRACER_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>
#include "events.h"

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6

/* Set by the loader before load; the verifier prunes what they disable. */
const volatile __u16 filter_port = 20000; /* 0: every port */
const volatile __u32 filter_pid = 0;      /* 0: every process */
const volatile __u8 filter_family = 0;    /* 0, AF_INET or AF_INET6 */
const volatile __u8 connect_via_tp = 0;   /* tracepoint mode: connect record from state changes */

const union record *unused_record __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Counters user space reports: failed ring buffer reservations and packets
 * the classifier skipped as malformed. One shared slot, updated atomically,
 * so every record can carry the lost count at the time it was written and
 * user space sees where in the stream records went missing. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter_set);
} counters SEC(".maps");

/* Socket owner, recorded in process context, keyed by struct sock address. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct proc_info);
} owners SEC(".maps");

/* Sockets whose entry in owners is known to exist, as a flag in the
 * socket's own storage: the send/receive hooks test it with a pointer
 * chase instead of a hash lookup on every call, and it goes away with the
 * socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} owner_known SEC(".maps");


/* Socket being connected, by pid_tgid, between kprobe and kretprobe. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u64);
} connecting SEC(".maps");

static __always_inline struct counter_set *counters_slot(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline void *reserve(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e) {
		struct counter_set *c = counters_slot();

		if (c)
			__sync_fetch_and_add(&c->lost, 1);
	}
	return e;
}

/* No wakeup: the reader polls on a short timer, which costs far less than
 * a wakeup per record when the reader keeps up. Every record starts with a
 * rec_hdr; its lost field is stamped last, just before it is published. */
static __always_inline void submit(void *e)
{
	struct counter_set *c = counters_slot();

	((struct rec_hdr *)e)->lost = c ? c->lost : 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

static __always_inline void count_malformed(void)
{
	struct counter_set *c = counters_slot();

	if (c)
		__sync_fetch_and_add(&c->malformed, 1);
}

static __always_inline bool port_ok(__u16 sport, __u16 dport)
{
	return filter_port == 0 || sport == filter_port || dport == filter_port;
}

static __always_inline bool family_ok(__u8 family)
{
	return filter_family == 0 || family == filter_family;
}

static __always_inline void current_proc(struct proc_info *p)
{
	__u64 id = bpf_get_current_pid_tgid();

	p->pid = (__u32)id;
	p->tgid = id >> 32;
	p->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(p->comm, sizeof(p->comm));
	p->src = PID_CURRENT;
}

/* The owner if one was recorded, else the current task, marked as such. */
static __always_inline void sock_proc(const struct sock *sk, struct proc_info *p)
{
	__u64 key = (__u64)sk;
	struct proc_info *o = bpf_map_lookup_elem(&owners, &key);

	if (o) {
		*p = *o;
		p->src = PID_OWNER;
		return;
	}
	current_proc(p);
}

static __always_inline bool pid_ok(const struct proc_info *p)
{
	return filter_pid == 0 || p->tgid == filter_pid;
}

/* Fill family, addresses and ports of hdr from a socket (local side first). */
static __always_inline void sock_tuple(const struct sock *sk, struct rec_hdr *h)
{
	h->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	h->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* tcp_set_state(CLOSE) releases the port (skc_num = 0) before an
	 * abortive close sends its RST; inet_sport still holds it. */
	if (!h->sport)
		h->sport = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	h->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (h->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)h->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)h->daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&h->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&h->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

static __always_inline bool is_tcp(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

static __always_inline bool tuple_ok(const struct rec_hdr *h)
{
	return (h->family == AF_INET || h->family == AF_INET6) && family_ok(h->family) &&
	       port_ok(h->sport, h->dport);
}

#endif
