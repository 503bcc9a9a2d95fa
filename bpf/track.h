/* SPDX-License-Identifier: GPL-2.0 */
/* With a pid filter, TC cannot see which process a segment belongs to, so
 * the hooks that run in process context register the endpoints of the
 * sockets the process owns, and the classifier passes only those:
 *   TRACK_FULL    both endpoints, stored in both orientations;
 *   TRACK_REMOTE  a connect in progress: remote endpoint only, until the
 *                 SYN leaves and names the local port;
 *   TRACK_LISTEN  a listening port: SYNs to it are taken in. */
#ifndef TCPTRACER_TRACK_H
#define TCPTRACER_TRACK_H

#include "common.h"

enum track_kind {
	TRACK_FULL = 1,
	TRACK_REMOTE = 2,
	TRACK_LISTEN = 3,
};

struct track_key {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u8 family;
	__u8 kind;
	__u8 _pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct track_key);
	__type(value, __u8);
} tracked SEC(".maps");

static __always_inline void track_put(struct track_key *k)
{
	__u8 one = 1;

	bpf_map_update_elem(&tracked, k, &one, BPF_ANY);
}

static __always_inline void track_full(const struct rec_hdr *h)
{
	struct track_key k = {.family = h->family, .kind = TRACK_FULL};

	if (filter_pid == 0 || h->sport == 0 || h->dport == 0)
		return;
	__builtin_memcpy(k.laddr, h->saddr, 16);
	__builtin_memcpy(k.raddr, h->daddr, 16);
	k.lport = h->sport;
	k.rport = h->dport;
	track_put(&k);
	__builtin_memcpy(k.laddr, h->daddr, 16);
	__builtin_memcpy(k.raddr, h->saddr, 16);
	k.lport = h->dport;
	k.rport = h->sport;
	track_put(&k);
}

static __always_inline void track_remote(__u8 family, const __u8 *raddr, __u16 rport)
{
	struct track_key k = {.family = family, .kind = TRACK_REMOTE, .rport = rport};

	if (filter_pid == 0)
		return;
	__builtin_memcpy(k.raddr, raddr, 16);
	track_put(&k);
}

static __always_inline void track_listen(__u8 family, __u16 lport)
{
	struct track_key k = {.family = family, .kind = TRACK_LISTEN, .lport = lport};

	if (filter_pid == 0)
		return;
	track_put(&k);
}

/* Whether the classifier should pass a segment of hdr under a pid filter;
 * a SYN that matches a pending connect or a listener becomes tracked. */
static __always_inline bool track_pass(const struct rec_hdr *h, __u16 flags, bool egress)
{
	struct track_key k = {.family = h->family, .kind = TRACK_FULL};

	__builtin_memcpy(k.laddr, h->saddr, 16);
	__builtin_memcpy(k.raddr, h->daddr, 16);
	k.lport = h->sport;
	k.rport = h->dport;
	if (bpf_map_lookup_elem(&tracked, &k))
		return true;
	if ((flags & 0x12) != 0x02) /* only a bare SYN opens a tracked tuple */
		return false;

	__builtin_memset(&k, 0, sizeof(k));
	k.family = h->family;
	if (egress) {
		k.kind = TRACK_REMOTE;
		__builtin_memcpy(k.raddr, h->daddr, 16);
		k.rport = h->dport;
	} else {
		k.kind = TRACK_LISTEN;
		k.lport = h->dport;
	}
	if (!bpf_map_lookup_elem(&tracked, &k))
		return false;
	if (egress)
		bpf_map_delete_elem(&tracked, &k);
	track_full(h);
	return true;
}

#endif
