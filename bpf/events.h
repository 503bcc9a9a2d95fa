/* SPDX-License-Identifier: GPL-2.0 */
/* Records shared with user space. bpf2go generates the Go twins from these
 * declarations: fixed-width fields, largest first, explicit padding. */
#ifndef TCPTRACER_EVENTS_H
#define TCPTRACER_EVENTS_H

/* Record kinds; the numbers match tcptracer/event.Type. */
enum record_type {
	REC_SEGMENT = 2,
	REC_CONNECT = 3,
	REC_STATE = 4,
	REC_RCV_STATE = 5,
	REC_RETRANSMIT = 6,
	REC_RESET = 7,
	REC_DROP = 9, /* 8 is user space's lost report */
};

enum pid_src {
	PID_NONE = 0,
	PID_OWNER = 1,
	PID_CURRENT = 2,
};

/* TCP option presence bits in segment_event.opt_mask. */
enum opt_bits {
	OPT_MSS = 1,
	OPT_WSCALE = 2,
	OPT_SACK_PERM = 4,
	OPT_TS = 8,
};

/* Common head of every record. Addresses are in network byte order (IPv4 in
 * the first four bytes), ports in host order. For kernel-hook records saddr
 * is the socket's local side. */
struct rec_hdr {
	__u64 ts_ns;
	__u64 cookie;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 type;
	__u8 family;
	__u8 _pad[2];
	__u32 lost; /* failed reservations so far (low 32 bits), stamped at submit */
	__u32 _pad2;
};

struct proc_info {
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u8 comm[16];
	__u8 src;
	__u8 _pad[3];
};

/* Where a segment record was taken. */
enum seg_point {
	POINT_TC = 0,   /* TC ingress or egress classifier */
	POINT_XMIT = 1, /* net:net_dev_start_xmit: handed to the driver, after qdisc and software GSO */
};

/* The sending socket's state when a segment left (TC egress) or when the
 * kernel retransmitted (tcp_retransmit_skb): tcp_sock and
 * inet_connection_sock fields as the kernel holds them, read through BTF.
 * valid is 0 when the skb had no full TCP socket (a SYN-ACK from a request
 * socket, a RST from the control socket, forwarded traffic). */
struct sender_state {
	__u32 snd_una;
	__u32 snd_nxt;
	__u32 rcv_nxt;
	__u32 snd_wnd;
	__u32 snd_cwnd;
	__u32 ssthresh;
	__u32 srtt_us; /* smoothed RTT << 3, as tcp_sock keeps it */
	__u32 mdev_us;
	__u32 rttvar_us;
	__u32 rto_us; /* icsk_rto converted from jiffies; 0 if CONFIG_HZ is unknown */
	__u32 packets_out;
	__u32 retrans_out;
	__u32 lost_out;
	__u32 sacked_out;
	__u32 delivered;
	__u32 total_retrans;
	__u32 dsack_dups;
	__u32 tlp_high_seq;
	__u32 mss;
	__u8 ca_state;    /* icsk_ca_state: TCP_CA_Open .. TCP_CA_Loss */
	__u8 retransmits; /* icsk_retransmits: RTOs without progress */
	__u8 backoff;     /* icsk_backoff */
	__u8 valid;
};

struct segment_event {
	struct rec_hdr hdr;
	__u32 ifindex;
	__u32 seq;
	__u32 ack;
	__u32 len;
	__u32 tsval;
	__u32 tsecr;
	__u32 sack[8];
	__u16 flags;
	__u16 win;
	__u16 mss;
	__u16 gso_segs; /* the skb's GSO geometry: segments and their size, 0 for a plain skb */
	__u16 gso_size;
	__u8 dir;
	__u8 hdr_len;
	__u8 wscale;
	__u8 opt_mask;
	__u8 nsack;
	__u8 point; /* enum seg_point */
	struct sender_state sender; /* TC egress only */
};

struct connect_event {
	struct rec_hdr hdr;
	struct proc_info proc;
	__u32 isn;
	__s32 ret;
};

/* REC_STATE and REC_RCV_STATE. For a state change old_state/new_state are
 * the transition; for rcv_state old_state is the state before the segment
 * and seq/ack/flags/len describe it. */
struct state_event {
	struct rec_hdr hdr;
	struct proc_info proc;
	__u32 snd_una;
	__u32 snd_nxt;
	__u32 rcv_nxt;
	__u32 seq;
	__u32 ack;
	__u32 len;
	__u16 flags;
	__u8 old_state;
	__u8 new_state;
	__u32 _pad;
	struct sender_state sender; /* REC_STATE: the socket as it changed state */
};

/* REC_RETRANSMIT and REC_RESET. */
struct sock_event {
	struct rec_hdr hdr;
	struct proc_info proc;
	__u32 seq;
	__u32 len;
	__u8 state;
	__u8 reason;
	__u8 _pad[2];
	__u32 _pad3;
	struct sender_state sender; /* REC_RETRANSMIT: the socket as it retransmits */
};

/* REC_DROP: skb:kfree_skb freed a TCP segment that passes the filters.
 * The tuple is the packet's (source first), as on a segment record. */
struct drop_event {
	struct rec_hdr hdr;
	__u64 location; /* the caller that freed it: a kernel text address */
	__u32 reason;   /* enum skb_drop_reason of the running kernel */
	__u32 ifindex;
	__u32 seq;
	__u32 ack;
	__u32 len;
	__u16 flags;
	__u8 has_reason; /* 0: the tracepoint has no reason argument (before 5.17) */
	__u8 _pad;
};

/* The counters map's value. */
struct counter_set {
	__u64 lost;
	__u64 malformed;
};

/* Key of the interfaces whose transmissions the xmit hook records. */
struct xmit_key {
	__u32 ifindex;
	__u32 netns; /* network namespace inode */
};

/* Every record kind, so that BTF (and so bpf2go) sees them all. */
union record {
	struct segment_event segment;
	struct connect_event connect;
	struct state_event state;
	struct sock_event sock;
	struct drop_event drop;
};

#endif
