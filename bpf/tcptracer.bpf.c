// SPDX-License-Identifier: GPL-2.0
/* Entry points only; the logic lives in the headers. Each function hook has
 * an fentry/fexit, a kprobe/kretprobe and a tracepoint variant; the loader
 * loads the ones the kernel accepts. */
#include "common.h"
#include "tc.h"
#include "xmit.h"
#include "sock.h"
#include "drop.h"
#include "iter.h"

char LICENSE[] SEC("license") = "GPL";

/* TC, every mode. */

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	return handle_tc(skb, false);
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	return handle_tc(skb, true);
}

/* What each traced non-loopback interface transmits, after the split. */

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tp_xmit, const struct sk_buff *skb, const struct net_device *dev)
{
	handle_xmit(skb, dev);
	return 0;
}

/* The snapshot of existing TCP sockets at start. */

SEC("iter/tcp")
int iter_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;

	if (!skc)
		return 0;
	return snapshot_sock(ctx->meta->seq, skc);
}

/* Socket state changes and kernel ground truth, every mode. */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tp_state, const struct sock *sk, int oldstate, int newstate)
{
	on_state(sk, oldstate, newstate, bpf_get_socket_cookie((void *)sk));
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tp_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	on_retransmit(sk, skb, bpf_get_socket_cookie((void *)sk));
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tp_send_reset, const struct sock *sk, const struct sk_buff *skb)
{
	on_send_reset(sk, skb, sk ? bpf_get_socket_cookie((void *)sk) : 0);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tp_receive_reset, const struct sock *sk)
{
	struct rec_hdr h = {};

	emit_sock_event(sk, &h, REC_RESET, 0, 0, RESET_RECEIVED, bpf_get_socket_cookie((void *)sk));
	return 0;
}

/* Drops. The reason argument exists from 5.17; the loader picks the
 * program whose arguments the kernel's tracepoint has. */

SEC("tp_btf/kfree_skb")
int tp_kfree_skb(__u64 *ctx)
{
	on_kfree_skb((const struct sk_buff *)ctx[0], ctx[1], (__u32)ctx[2], true);
	return 0;
}

SEC("tp_btf/kfree_skb")
int tp_kfree_skb_noreason(__u64 *ctx)
{
	on_kfree_skb((const struct sk_buff *)ctx[0], ctx[1], 0, false);
	return 0;
}

/* fentry mode. */

SEC("fentry/tcp_v4_connect")
int BPF_PROG(fentry_v4_connect, struct sock *sk, struct sockaddr *uaddr)
{
	on_connect_enter(sk, uaddr);
	return 0;
}

SEC("fexit/tcp_v4_connect")
int BPF_PROG(fexit_v4_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	on_connect_return(sk, ret, bpf_get_socket_cookie(sk));
	return 0;
}

SEC("fentry/tcp_v6_connect")
int BPF_PROG(fentry_v6_connect, struct sock *sk, struct sockaddr *uaddr)
{
	on_connect_enter(sk, uaddr);
	return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(fexit_v6_connect, struct sock *sk, struct sockaddr *uaddr, int addr_len, int ret)
{
	on_connect_return(sk, ret, bpf_get_socket_cookie(sk));
	return 0;
}

SEC("fentry/tcp_rcv_state_process")
int BPF_PROG(fentry_rcv_state, struct sock *sk, struct sk_buff *skb)
{
	on_rcv_state(sk, skb, bpf_get_socket_cookie(sk));
	return 0;
}

/* inet_csk_accept's arguments changed across kernels; only its return value
 * is needed. */
SEC("fexit/inet_csk_accept")
int fexit_accept(__u64 *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	on_accept((const struct sock *)ret);
	return 0;
}

/* kprobe mode: no socket cookie helper here. */

static __always_inline void connect_enter_kprobe(struct sock *sk, struct sockaddr *uaddr)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 key = (__u64)sk;

	bpf_map_update_elem(&connecting, &id, &key, BPF_ANY);
	on_connect_enter(sk, uaddr);
}

static __always_inline void connect_exit(int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 *sk = bpf_map_lookup_elem(&connecting, &id);

	if (!sk)
		return;
	on_connect_return((const struct sock *)*sk, ret, 0);
	bpf_map_delete_elem(&connecting, &id);
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(kprobe_v4_connect, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter_kprobe(sk, uaddr);
	return 0;
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(kretprobe_v4_connect, int ret)
{
	connect_exit(ret);
	return 0;
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(kprobe_v6_connect, struct sock *sk, struct sockaddr *uaddr)
{
	connect_enter_kprobe(sk, uaddr);
	return 0;
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(kretprobe_v6_connect, int ret)
{
	connect_exit(ret);
	return 0;
}

SEC("kprobe/tcp_rcv_state_process")
int BPF_KPROBE(kprobe_rcv_state, struct sock *sk, struct sk_buff *skb)
{
	on_rcv_state(sk, skb, 0);
	return 0;
}

SEC("kretprobe/inet_csk_accept")
int BPF_KRETPROBE(kretprobe_accept, struct sock *newsk)
{
	on_accept(newsk);
	return 0;
}

/* tracepoint mode adds no program of its own: the connect record comes from
 * the state changes (see connect_from_state), and tcp_rcv_state_process has
 * no tracepoint equivalent, so the state records carry the kernel's view. */

/* Owner of accepted sockets: the first send or receive in process context.
 * These fire on every send and receive of every socket, so they filter by
 * port first and do nothing once the owner is known. */

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_recv_length, struct sock *sk)
{
	owner_from_io(sk);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_send_length, struct sock *sk)
{
	owner_from_io(sk);
	return 0;
}
