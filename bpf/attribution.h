/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Socket -> process attribution for the TC capture program.
 *
 * Included by exactly one .bpf.c per object (tc_capture.bpf.c, tests/bpf/attrib_test.bpf.c): it defines
 * the map `ehp_attr_flows` and the tracing programs that fill it, which the skeleton's attach
 * attaches (tp_btf/raw_tp need no tracefs). Layout and semantics of the map: abi/attribution_abi.h.
 *
 * Who fills the map (all in the owning task's context unless said otherwise):
 *   sock_send_length / sock_recv_length  every sendmsg/recvmsg on a TCP/UDP socket: exact
 *       5-tuple (connected) or wildcard (unconnected UDP) -> current task. Refreshed only when
 *       the owner changes, so steady traffic costs a lookup, not an update.
 *   inet_sock_set_state -> TCP_LISTEN    listen(): wildcard (tcp, lport) -> listener. Covers SYN
 *       and SYN-ACK of every connection accepted later (they precede accept()).
 *   inet_sock_set_state SYN_SENT         connect(): ehp_attr_socks (sk -> task), consumed by TC
 *       on the SYN or, failing that, turned into the tuple entry at SYN_SENT -> ESTABLISHED.
 *   inet_sock_set_state -> TCP_CLOSE     (any context) marks the entry closed_ns = now.
 *   syscalls bind/connect (exit), sendto/sendmsg/sendmmsg (entry), UDP only: a receiver's
 *       port is known before its first datagram arrives (recvmsg's tracepoint fires only after
 *       it); an unbound sender's socket goes to ehp_attr_socks before autobind.
 *   TC egress, in ehp_attr_lookup        on a miss, skb->sk is looked up in ehp_attr_socks:
 *       covers a client's first SYN (inet_sock_set_state(SYN_SENT) fires before connect() picks
 *       the source port) and the first datagram of a new UDP socket. The exact tuple is
 *       inserted so the reply (SYN-ACK, UDP answer) matches.
 *   userspace seed_attribution()        sockets already open at start; sweep_attribution()
 *       marks UDP/other sockets that vanished without a state change as closed.
 *   inet_sock_set_state SYN_RECV -> ESTABLISHED (softirq) copies the listener's wildcard to
 *       the accepted child's exact tuple, until the accepting task's recv/send replaces it.
 *
 * Whom a packet is attributed to (ehp_attr_lookup):
 *   egress   the owner of the source end: exact tuple, then the listener/unconnected wildcard
 *            of the source port, then (first packet of a socket) ehp_attr_socks.
 *   ingress  the SENDER when it is a process on this host too (both ends local: another netns
 *            behind a veth, a container; its key is the packet's tuple reversed), otherwise
 *            the local receiver. Lookups, first hit wins:
 *              1. sender exact tuple
 *              2. SYN-ACK only: sender wildcard (a listener answers SYNs before accept())
 *              3. receiver exact tuple, unless it is a UDP entry TC made for an unconnected
 *                 socket (then it goes after 4: it is not a real 5-tuple and exists or not
 *                 depending on a race, see the lookup)
 *              4. sender wildcard (not for SYN-ACKs, tried in 2)
 *              5. receiver wildcard
 *            So a remote sender whose source port happens to equal a local listener's or
 *            unconnected socket's port is still named after the local receiver when the
 *            receiver has a real exact entry (connected socket, TCP client/accepted socket).
 *   -p/-u filters must also keep what a process RECEIVES from another local process:
 *            ehp_attr_lookup_receiver names the host's receiving end of an ingress packet
 *            (its exact tuple, then its wildcard) for that second check.
 * Known ambiguities (the map holds no network namespace, and wildcards hold no address):
 *   - A packet from a remote sender to a local UNCONNECTED socket, whose source port equals a
 *     local wildcard (e.g. remote :5353 -> local unconnected client while a local mDNS
 *     responder listens on 5353), is named after that local wildcard's owner.
 *   - A TCP SYN-ACK from a remote server whose port equals a local listener's (curl to a
 *     remote :443 on a host running a server on :443) is named after the local listener.
 *   - A bare ACK a server's kernel sends before its process touched the accepted socket
 *     (the quick-ACK of the first request bytes) has no sender entry of its own: it is named
 *     after the server only through the child entry copied from the listener at
 *     SYN_RECV -> ESTABLISHED. Without that (listener wildcard missing: a listener older than
 *     the capture and not seeded, or evicted) it can only be named after the receiver, which
 *     has an exact entry and so beats the sender's wildcard (rule 3 before 4, needed for the
 *     remote case above).
 *   - A local sender whose socket has no entry at all (it never sent/received/bound while we
 *     ran, and seeding missed it) is indistinguishable from a remote one.
 *
 * Cost on the per-packet path: one header read for IPv4 without options (two for IPv6), in place
 * when the headers are in the skb's linear part (ehp_skb_load), else a bpf_skb_load_bytes call.
 * Egress: one hash lookup on an exact hit, two for wildcard hits; the ehp_attr_socks fallback
 * runs only on misses. Ingress: one lookup when the sender is local and exact, up to four (plus
 * a one-byte load of the TCP flags) for a remote sender to a local wildcard. Measured with
 * BPF_PROG_TEST_RUN (LookupCostPerPacket, incl. ~35 ns empty-program baseline): ~95 ns egress
 * exact hit, ~170-250 ns ingress to a receiver wildcard, ~130 ns miss. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "abi/attribution_abi.h"

#define EHP_ATTR_AF_INET 2
#define EHP_ATTR_AF_INET6 10
#define EHP_ATTR_IPPROTO_TCP 6
#define EHP_ATTR_IPPROTO_UDP 17
/* x86_64 syscall numbers */
#define EHP_ATTR_NR_SENDTO 44
#define EHP_ATTR_NR_SENDMSG 46
#define EHP_ATTR_NR_CONNECT 42
#define EHP_ATTR_NR_BIND 49
#define EHP_ATTR_NR_SENDMMSG 307

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, EHP_ATTR_MAX_ENTRIES);
	__type(key, struct ehp_attr_key);
	__type(value, struct ehp_attr_value);
} ehp_attr_flows SEC(".maps");

/* Sockets about to send their first packet before their 5-tuple is known, keyed by the kernel
 * address of the struct sock (the TC side reads the same address from skb->sk):
 *   inet_sock_set_state(CLOSE -> SYN_SENT)  connect(): the source port is chosen only after
 *       this tracepoint, and the SYN leaves right after.
 *   sys_enter sendto/sendmsg/sendmmsg on a UDP socket with no local port yet (autobind).
 * TC egress consumes the entry on the first packet (inserting the real 5-tuple) and deletes it.
 * `ts_ns` bounds reuse of a freed socket's address: entries older than EHP_ATTR_SK_MAX_AGE_NS are
 * ignored, and a connect() that fails (SYN_SENT -> CLOSE) deletes its entry. The bound must cover
 * neighbour resolution: an IPv6 SYN waited ~1 s for NDP in the veth test. */
struct ehp_attr_sk_val {
	struct ehp_proc_info proc;
	__u64 ts_ns;
};
#define EHP_ATTR_SK_MAX_AGE_NS (5ull * 1000 * 1000 * 1000)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct ehp_attr_sk_val);
} ehp_attr_socks SEC(".maps");

/* Per-CPU one-entry cache of ehp_attr_lookup's answer, one slot per direction ([0] ingress,
 * [1] egress): a flood of packets of one flow costs one key compare instead of up to four hash
 * lookups (measured: 1400-B UDP ingress from a local sender took 3 lookups per packet).
 * An answer is valid while the generation it was computed at is current. ehp_attr_gen[0] is
 * bumped by every BPF change of ehp_attr_flows / ehp_attr_socks (ehp_attr_changed), [1] by
 * userspace after its own changes (seed, sweep: attribution_changed() in engine/capture);
 * both only grow, so their sum changes with any change. Not cached: answers that depend on
 * time (a closed entry in its grace period) or on the packet beyond its tuple (SYN-ACKs, and an
 * egress miss of a packet that has a socket: ehp_attr_socks is keyed by that socket). LRU
 * evictions happen only on inserts, and every insert bumps the generation. The entry is written
 * without barriers: TC programs do not migrate or get preempted mid-run on a CPU. */
struct ehp_attr_cache_ent {
	struct ehp_attr_key key;
	__u64 gen;
	__u32 valid;
	__u32 found;
	struct ehp_proc_info proc;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct ehp_attr_cache_ent);
} ehp_attr_cache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} ehp_attr_gen SEC(".maps");

static __always_inline void ehp_attr_changed(void)
{
	__u32 k = 0;
	__u64 *g = bpf_map_lookup_elem(&ehp_attr_gen, &k);
	if (g)
		__sync_fetch_and_add(g, 1);
}

static __always_inline __u64 ehp_attr_gen_now(void)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *a = bpf_map_lookup_elem(&ehp_attr_gen, &k0);
	__u64 *b = bpf_map_lookup_elem(&ehp_attr_gen, &k1);
	return (a ? *(volatile __u64 *)a : 0) + (b ? *(volatile __u64 *)b : 0);
}

static __always_inline int ehp_attr_key_eq(const struct ehp_attr_key *a, const struct ehp_attr_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

static __always_inline void ehp_attr_map_v4(__u8 dst[16], __u32 addr_be)
{
	__builtin_memset(dst, 0, 10);
	dst[10] = 0xff;
	dst[11] = 0xff;
	__builtin_memcpy(dst + 12, &addr_be, 4);
}

/* Header bytes of a classifier's packet: read in place when they lie in the linear part (the
 * usual case: the stack builds headers there), else through bpf_skb_load_bytes. A helper call
 * costs 20-50 ns on the VMs measured here; an in-place read a few. `len` must be a constant. */
#define EHP_SKB_DIRECT_MAX_OFF 512
static __always_inline int ehp_skb_load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	if (off <= EHP_SKB_DIRECT_MAX_OFF) {
		void *p = data + off;
		if (p + len <= end) {
			__builtin_memcpy(to, p, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* ---------------------------------------------------------------- per-packet lookup */

static __always_inline struct ehp_attr_value *ehp_attr_get(struct ehp_attr_key *key)
{
	struct ehp_attr_value *v = bpf_map_lookup_elem(&ehp_attr_flows, key);
	if (v && v->closed_ns && bpf_ktime_get_ns() - v->closed_ns > EHP_ATTR_GRACE_NS)
		return 0;
	return v;
}

/* Egress miss: the first packet of a socket whose tuple wasn't known when its task started
 * sending (see ehp_attr_socks). Root-only: the socket pointer itself is the key. */
static __always_inline int ehp_attr_from_sock(struct __sk_buff *skb, struct ehp_attr_key *key,
					      struct ehp_proc_info *out)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 0;
	__u64 skaddr = (__u64)sk;
	struct ehp_attr_sk_val *sv = bpf_map_lookup_elem(&ehp_attr_socks, &skaddr);
	if (!sv || bpf_ktime_get_ns() - sv->ts_ns > EHP_ATTR_SK_MAX_AGE_NS)
		return 0;
	struct ehp_attr_value v = {};
	__builtin_memcpy(&v.proc, &sv->proc, sizeof(v.proc));
	v.source = EHP_ATTR_SRC_TC;
	bpf_map_update_elem(&ehp_attr_flows, key, &v, BPF_ANY);
	bpf_map_delete_elem(&ehp_attr_socks, &skaddr);
	ehp_attr_changed();
	__builtin_memcpy(out, &v.proc, sizeof(*out));
	return 1;
}

/* Parses the packet at l3_off into its flow key as the host's end on this hook sees it
 * (egress: local = source; ingress: local = destination), and the L4 header's offset.
 * Returns 1, or 0 for non-IP, non-TCP/UDP, later fragments, more than 3 IPv6 extension
 * headers before L4, or truncation. `key` must be zeroed. */
static __always_inline int ehp_attr_parse(struct __sk_buff *skb, __u32 l3_off, int egress,
					  struct ehp_attr_key *key, __u32 *l4_off)
{
	/* One load covers an option-less IPv4 header plus the ports, or the first 24 bytes of
	 * IPv6 (through the source address). The smallest TCP/UDP packet over IPv4 is 28 bytes. */
	__u8 h[24];
	__u16 ports[2];
	__u32 l4 = 0;

	if (ehp_skb_load(skb, l3_off, h, sizeof(h)) < 0)
		return 0;
	__u8 ver = h[0] >> 4;
	if (ver == 4) {
		__u32 ihl_bytes = (h[0] & 0xf) * 4;
		if (h[6] & 0x1f || h[7]) /* fragment offset != 0: no L4 header here */
			return 0;
		key->proto = h[9];
		l4 = l3_off + ihl_bytes;
		if (ihl_bytes == 20) {
			__builtin_memcpy(ports, h + 20, 4);
		} else {
			if (ihl_bytes < 20 || ehp_skb_load(skb, l3_off + ihl_bytes, ports, 4) < 0)
				return 0;
		}
		__u32 src, dst;
		__builtin_memcpy(&src, h + 12, 4);
		__builtin_memcpy(&dst, h + 16, 4);
		ehp_attr_map_v4(key->local_addr, egress ? src : dst);
		ehp_attr_map_v4(key->remote_addr, egress ? dst : src);
	} else if (ver == 6) {
		struct {
			__u8 daddr[16];
			__u16 ports[2];
		} rest;
		key->proto = h[6];
		if (ehp_skb_load(skb, l3_off + 24, &rest, sizeof(rest)) < 0)
			return 0;
		ports[0] = rest.ports[0];
		ports[1] = rest.ports[1];
		l4 = l3_off + 40;
		if (key->proto != EHP_ATTR_IPPROTO_TCP && key->proto != EHP_ATTR_IPPROTO_UDP) {
			/* Rare: extension headers before L4. Walk a few; only this path pays. */
			__u32 off = l3_off + 40;
#pragma unroll
			for (int i = 0; i < 3; i++) {
				__u8 eh[4];
				if (key->proto == EHP_ATTR_IPPROTO_TCP || key->proto == EHP_ATTR_IPPROTO_UDP)
					break;
				if (bpf_skb_load_bytes(skb, off, eh, sizeof(eh)) < 0)
					return 0;
				if (key->proto == 44) { /* fragment: only the first one carries ports */
					if ((eh[2] << 5 | eh[3] >> 3) != 0)
						return 0;
					off += 8;
				} else if (key->proto == 0 || key->proto == 43 || key->proto == 60) {
					off += ((__u32)eh[1] + 1) * 8; /* hop-by-hop, routing, dest opts */
				} else {
					return 0;
				}
				key->proto = eh[0];
			}
			if ((key->proto != EHP_ATTR_IPPROTO_TCP && key->proto != EHP_ATTR_IPPROTO_UDP) ||
			    bpf_skb_load_bytes(skb, off, ports, 4) < 0)
				return 0;
			l4 = off;
		}
		if (egress) {
			__builtin_memcpy(key->local_addr, h + 8, 16);
			__builtin_memcpy(key->remote_addr, rest.daddr, 16);
		} else {
			__builtin_memcpy(key->local_addr, rest.daddr, 16);
			__builtin_memcpy(key->remote_addr, h + 8, 16);
		}
	} else {
		return 0;
	}
	if (key->proto != EHP_ATTR_IPPROTO_TCP && key->proto != EHP_ATTR_IPPROTO_UDP)
		return 0;
	key->local_port = egress ? ports[0] : ports[1];
	key->remote_port = egress ? ports[1] : ports[0];
	*l4_off = l4;
	return 1;
}

/* The lookup proper (order: see the top of this file). `synack`: an ingress TCP SYN-ACK (its
 * own lookup order; the caller never caches its answer). *cacheable is cleared when the answer
 * depends on more than the tuple and the maps' contents (time, the packet's socket). */
static __always_inline int ehp_attr_resolve(struct __sk_buff *skb, struct ehp_attr_key *key,
					    int synack, int egress, struct ehp_proc_info *out,
					    int *cacheable)
{
	struct ehp_attr_value *v;
	if (!egress) {
		/* Ingress: name the SENDING process when it lives on this host too (another netns
		 * behind a veth, a container): its socket's key is ours reversed. Otherwise the
		 * local receiver. Order (see the top of this file): sender exact, receiver exact,
		 * then the wildcards; a SYN-ACK comes from a listener, so for it the sender's
		 * listener wildcard goes first, and a UDP receiver's TC-made entry (an unconnected
		 * socket, not a real 5-tuple) ranks after the sender's wildcard. */
		struct ehp_attr_key snd = {};
		__builtin_memcpy(snd.local_addr, key->remote_addr, 16);
		__builtin_memcpy(snd.remote_addr, key->local_addr, 16);
		snd.local_port = key->remote_port;
		snd.remote_port = key->local_port;
		snd.proto = key->proto;
		v = ehp_attr_get(&snd);
		if (v)
			goto found;
		/* One key buffer serves the three lookups after the first (program stack is 512 bytes
		 * for everything, the filter subprogram included): now the sender wildcard
		 * {0, 0, sport, 0, proto}, later the receiver wildcard. */
		struct ehp_attr_key *sw = &snd;
		__builtin_memset(sw->local_addr, 0, 32);
		sw->remote_port = 0;
		if (synack) {
			v = ehp_attr_get(sw);
			if (v)
				goto found;
		}
		/* An unconnected UDP socket's exact entry exists only when TC saw its first datagram
		 * before sock_send_length made its wildcard (a race with neighbour resolution), so
		 * letting it beat the sender's wildcard would flip the answer for the same flow. */
		struct ehp_attr_value *weak = 0;
		v = ehp_attr_get(key);
		if (v) {
			if (key->proto != EHP_ATTR_IPPROTO_UDP || v->source != EHP_ATTR_SRC_TC)
				goto found;
			weak = v;
		}
		if (!synack) {
			v = ehp_attr_get(sw);
			if (v)
				goto found;
		}
		if (weak) {
			v = weak;
			goto found;
		}
		struct ehp_attr_key *rw = &snd; /* receiver wildcard {0, 0, dport, 0, proto} */
		rw->local_port = key->local_port;
		v = ehp_attr_get(rw);
		if (v)
			goto found;
		return 0;
	}

	v = ehp_attr_get(key);
	if (v) {
		/* A closed entry still in its grace period may belong to the previous user of a
		 * reused tuple (bound source port): a new socket's pending entry wins. */
		if (v->closed_ns && ehp_attr_from_sock(skb, key, out))
			return 1;
		goto found;
	}

	/* Listener / unconnected UDP socket: {0, 0, lport, 0, proto}. */
	struct ehp_attr_key wild = {};
	wild.local_port = key->local_port;
	wild.proto = key->proto;
	v = ehp_attr_get(&wild);
	if (v)
		goto found;
	/* The answer now depends on skb->sk (its pending entry, its age): not cacheable. Packets
	 * without a socket (forwarded, kernel-made) stay cacheable misses. */
	if (skb->sk)
		*cacheable = 0;
	return ehp_attr_from_sock(skb, key, out);
found:
	if (v->closed_ns) /* expires with time: ask again next packet */
		*cacheable = 0;
	__builtin_memcpy(out, &v->proc, sizeof(*out));
	return 1;
}

/* Fills `out` with the process to name for the packet (see the top of this file: egress the
 * source's owner; ingress the sender when it is local, else the local receiver), from the
 * per-CPU answer cache when it is current.
 * l3_off: offset of the IPv4/IPv6 header in the frame; egress: 1 on the egress hook.
 * Returns 1 when found, 0 otherwise (unparsable, see ehp_attr_parse, or unknown socket). */
static __always_inline int ehp_attr_lookup(struct __sk_buff *skb, __u32 l3_off, int egress,
					   struct ehp_proc_info *out)
{
	struct ehp_attr_key key = {};
	__u32 l4_off = 0;
	if (!ehp_attr_parse(skb, l3_off, egress, &key, &l4_off))
		return 0;
	__u32 slot = egress ? 1 : 0;
	struct ehp_attr_cache_ent *c = bpf_map_lookup_elem(&ehp_attr_cache, &slot);
	__u64 gen = ehp_attr_gen_now();
	int syn = 0;
	if (!egress && key.proto == EHP_ATTR_IPPROTO_TCP) {
		/* SYN-ACKs are looked up in another order: never answered from the cache. */
		__u8 fl = 0;
		if (ehp_skb_load(skb, l4_off + 13, &fl, 1) == 0 && (fl & 0x12) == 0x12)
			syn = 1;
	}
	if (c && !syn && c->valid && c->gen == gen && ehp_attr_key_eq(&c->key, &key)) {
		if (!c->found)
			return 0;
		__builtin_memcpy(out, &c->proc, sizeof(*out));
		return 1;
	}
	int cacheable = 1;
	int found = ehp_attr_resolve(skb, &key, syn, egress, out, &cacheable);
	if (c) {
		c->valid = 0;
		if (cacheable && !syn) {
			__builtin_memcpy(&c->key, &key, sizeof(key));
			c->gen = gen;
			c->found = found;
			if (found)
				__builtin_memcpy(&c->proc, out, sizeof(*out));
			c->valid = 1;
		}
	}
	return found;
}

/* The owner of the host's RECEIVING end of an ingress packet (its exact tuple, then its
 * listener/unconnected wildcard), whoever ehp_attr_lookup names. For -p/-u filters: when both
 * ends are local, ehp_attr_lookup names the sender, yet a filter on a process must keep the
 * packets it receives too. Costs a second parse and up to two lookups; call it only when the
 * named process didn't pass the filter. Returns 1 when found, 0 otherwise. */
static __always_inline int ehp_attr_lookup_receiver(struct __sk_buff *skb, __u32 l3_off,
						    struct ehp_proc_info *out)
{
	struct ehp_attr_key key = {};
	__u32 l4_off = 0;
	if (!ehp_attr_parse(skb, l3_off, 0, &key, &l4_off))
		return 0;
	struct ehp_attr_value *v = ehp_attr_get(&key);
	if (!v) {
		struct ehp_attr_key rw = {};
		rw.local_port = key.local_port;
		rw.proto = key.proto;
		v = ehp_attr_get(&rw);
		if (!v)
			return 0;
	}
	__builtin_memcpy(out, &v->proc, sizeof(*out));
	return 1;
}

/* ---------------------------------------------------------------- map producers */

/* Key of a kernel socket as the host sees it. Returns 0, or -1 for non-TCP/UDP/inet sockets. */
/* Field reads of a struct sock: `typed` (a compile-time constant) when sk is a BTF pointer
 * (tp_btf arguments): plain loads, which the verifier turns into fault-safe PROBE_MEM loads
 * (~1 ns each). Otherwise sk came from probe reads (fd table walk) and each field costs a
 * bpf_probe_read_kernel call (copy_from_kernel_nofault: the hook's main cost in perf). */
#define EHP_SK_READ(typed, sk, field) ((typed) ? (sk)->field : BPF_CORE_READ(sk, field))

static __always_inline int ehp_attr_key_from_sk(const struct sock *sk, struct ehp_attr_key *key,
						const int typed)
{
	__u16 family = EHP_SK_READ(typed, sk, __sk_common.skc_family);
	if (family != EHP_ATTR_AF_INET && family != EHP_ATTR_AF_INET6)
		return -1;
	__u16 proto = EHP_SK_READ(typed, sk, sk_protocol);
	if (proto != EHP_ATTR_IPPROTO_TCP && proto != EHP_ATTR_IPPROTO_UDP)
		return -1;
	__builtin_memset(key, 0, sizeof(*key));
	key->proto = proto;
	key->local_port = bpf_htons(EHP_SK_READ(typed, sk, __sk_common.skc_num));
	key->remote_port = EHP_SK_READ(typed, sk, __sk_common.skc_dport);
	if (key->remote_port == 0) /* listening or unconnected: wildcard, any local address */
		return 0;
	if (family == EHP_ATTR_AF_INET) {
		ehp_attr_map_v4(key->local_addr, EHP_SK_READ(typed, sk, __sk_common.skc_rcv_saddr));
		ehp_attr_map_v4(key->remote_addr, EHP_SK_READ(typed, sk, __sk_common.skc_daddr));
	} else if (typed) {
		/* Dual-stack sockets talking IPv4 already hold ::ffff:a.b.c.d here. */
		__builtin_memcpy(&key->local_addr, &sk->__sk_common.skc_v6_rcv_saddr, 16);
		__builtin_memcpy(&key->remote_addr, &sk->__sk_common.skc_v6_daddr, 16);
	} else {
		BPF_CORE_READ_INTO(&key->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&key->remote_addr, sk, __sk_common.skc_v6_daddr);
	}
	return 0;
}

static __always_inline void ehp_attr_current(struct ehp_proc_info *p)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	p->pid = pid_tgid >> 32;
	p->tid = (__u32)pid_tgid;
	p->uid = (__u32)uid_gid;
	p->gid = uid_gid >> 32;
	bpf_get_current_comm(p->comm, sizeof(p->comm));
}

/* Records the current task as the owner of `sk` unless the map already says so. */
static __always_inline void ehp_attr_remember(const struct sock *sk, __u32 source, const int typed)
{
	struct ehp_attr_key key;
	if (ehp_attr_key_from_sk(sk, &key, typed) < 0 || key.local_port == 0)
		return;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ehp_attr_value *old = bpf_map_lookup_elem(&ehp_attr_flows, &key);
	/* Unchanged owner: nothing to do, except that entries made without the socket's inode
	 * (TC's first packet, an accepted child copied from its listener) get it on the owner's
	 * first send/recv: without it userspace's sweep reads /proc/net/tcp* every second to
	 * judge the entry (measured: 9% of ecapture-hp's CPU under HTTP/2 load). */
	if (old && !old->closed_ns && old->proc.tid == (__u32)pid_tgid &&
	    old->proc.pid == (__u32)(pid_tgid >> 32)) {
		if (!old->sock_ino) /* in place: the answer (proc) and its source stay the same */
			old->sock_ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
		return;
	}
	struct ehp_attr_value v = {};
	ehp_attr_current(&v.proc);
	v.sock_ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
	v.source = source;
	bpf_map_update_elem(&ehp_attr_flows, &key, &v, BPF_ANY);
	ehp_attr_changed();
}

/* The current task is about to send the first packet of `sk`, whose tuple isn't known yet. */
static __always_inline void ehp_attr_remember_sock(const struct sock *sk)
{
	__u64 skaddr = (__u64)sk;
	struct ehp_attr_sk_val v = {};
	ehp_attr_current(&v.proc);
	v.ts_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&ehp_attr_socks, &skaddr, &v, BPF_ANY);
	ehp_attr_changed();
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(ehp_attr_send, struct sock *sk, int ret, int flags)
{
	ehp_attr_remember(sk, EHP_ATTR_SRC_SEND, 1);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(ehp_attr_recv, struct sock *sk, int ret, int flags)
{
	ehp_attr_remember(sk, EHP_ATTR_SRC_RECV, 1);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(ehp_attr_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (newstate == TCP_LISTEN) { /* listen(), in the listener's context */
		ehp_attr_remember(sk, EHP_ATTR_SRC_STATE, 1);
		return 0;
	}
	if (newstate == TCP_SYN_SENT) { /* connect(), in the connecting task, before the SYN */
		ehp_attr_remember_sock(sk);
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_SENT) {
		/* Handshake done (softirq): the tuple is complete now. If no TC program consumed the
		 * pending entry (the SYN left through an interface not captured), convert it here so
		 * a client that only receives is attributed too. */
		__u64 skaddr = (__u64)sk;
		struct ehp_attr_sk_val *sv = bpf_map_lookup_elem(&ehp_attr_socks, &skaddr);
		struct ehp_attr_key key;
		if (!sv || ehp_attr_key_from_sk(sk, &key, 1) < 0)
			return 0;
		struct ehp_attr_value v = {};
		__builtin_memcpy(&v.proc, &sv->proc, sizeof(v.proc));
		v.sock_ino = BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
		v.source = EHP_ATTR_SRC_STATE;
		bpf_map_update_elem(&ehp_attr_flows, &key, &v, BPF_NOEXIST);
		bpf_map_delete_elem(&ehp_attr_socks, &skaddr);
		ehp_attr_changed();
		return 0;
	}
	if (newstate == TCP_ESTABLISHED && oldstate == TCP_SYN_RECV) {
		/* Passive open done (softirq, before accept()): the child inherits its listener's
		 * owner, so the ACKs the server's kernel sends before the process touches the socket
		 * (quick-ack of the first request bytes) are named after the server when they
		 * arrive on ingress of another local interface. recv/send replace it with the real
		 * owner (remember() updates when the task differs); TCP_CLOSE marks it closed. */
		struct ehp_attr_key key, wild = {};
		if (ehp_attr_key_from_sk(sk, &key, 1) < 0 || key.remote_port == 0)
			return 0;
		wild.local_port = key.local_port;
		wild.proto = key.proto;
		struct ehp_attr_value *lv = bpf_map_lookup_elem(&ehp_attr_flows, &wild);
		if (!lv || lv->closed_ns)
			return 0;
		/* A live entry means a task already owns the child (TCP Fast Open lets the server
		 * accept and use it in SYN_RECV): keep it. A closed one belongs to an earlier
		 * connection on the same tuple, still in its grace period: replace it. */
		struct ehp_attr_value *old = bpf_map_lookup_elem(&ehp_attr_flows, &key);
		if (old && !old->closed_ns)
			return 0;
		struct ehp_attr_value v = {};
		__builtin_memcpy(&v.proc, &lv->proc, sizeof(v.proc));
		v.source = EHP_ATTR_SRC_STATE;
		bpf_map_update_elem(&ehp_attr_flows, &key, &v, BPF_ANY);
		ehp_attr_changed();
		return 0;
	}
	if (newstate != TCP_CLOSE)
		return 0;
	if (oldstate == TCP_SYN_SENT) {
		__u64 skaddr = (__u64)sk;
		bpf_map_delete_elem(&ehp_attr_socks, &skaddr);
		ehp_attr_changed();
	}
	struct ehp_attr_key key;
	if (ehp_attr_key_from_sk(sk, &key, 1) < 0)
		return 0;
	if (oldstate == TCP_LISTEN) {
		/* The listener's own key has remote_port 0 already; make sure it is the wildcard. */
		__builtin_memset(key.local_addr, 0, 32);
		key.remote_port = 0;
	} else if (key.remote_port == 0) {
		return 0; /* never connected: nothing of ours to close */
	}
	struct ehp_attr_value *v = bpf_map_lookup_elem(&ehp_attr_flows, &key);
	if (v && !v->closed_ns) {
		v->closed_ns = bpf_ktime_get_ns();
		ehp_attr_changed();
	}
	return 0;
}

/* The struct sock behind file descriptor `fd` of the current task, or NULL (not a socket). */
static __always_inline struct sock *ehp_attr_fd_sock(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd < 0 || (unsigned int)fd >= max_fds)
		return 0;
	struct file *file = 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), fds + fd) < 0 || !file)
		return 0;
	/* Only sockets: their file's private_data is the struct socket. */
	__u16 mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & 00170000) != 0140000)
		return 0;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(sock, sk);
}

/* UDP has no state tracepoint and recvmsg's fires only after a datagram arrived, so UDP is
 * followed at the syscalls:
 *   exit of bind/connect (success)   the port (and peer) is known before the first datagram
 *                                    arrives or leaves -> wildcard / exact entry.
 *   entry of sendto/sendmsg/sendmmsg on an unbound socket -> ehp_attr_socks (autobind picks the
 *                                    port inside the call, TC then sees the first datagram).
 * Two flavours of the same hooks:
 *   default  tp_btf/sys_enter + tp_btf/sys_exit: raw tracepoints, no tracefs needed, but a BPF
 *            call on every syscall of every task (measured here: +300-450 ns per syscall).
 *   "?"      tracepoint/syscalls/<one per syscall>: BPF runs only for those five syscalls
 *            (measured: +100-170 ns per syscall, the syscall tracing slow path), but attaching
 *            needs tracefs. Not autoloaded; ehp::capture::prepare_attribution() switches to them
 *            when tracefs is available (engine/capture/attribution.h). */
static __always_inline void ehp_attr_on_bound(int fd)
{
	struct sock *sk = ehp_attr_fd_sock(fd);
	/* TCP gets its wildcard at listen() and its tuple via SYN_SENT. */
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != EHP_ATTR_IPPROTO_UDP)
		return;
	ehp_attr_remember(sk, EHP_ATTR_SRC_STATE, 0);
}

static __always_inline void ehp_attr_on_send(int fd)
{
	struct sock *sk = ehp_attr_fd_sock(fd);
	if (!sk || BPF_CORE_READ(sk, sk_protocol) != EHP_ATTR_IPPROTO_UDP ||
	    BPF_CORE_READ(sk, __sk_common.skc_num) != 0)
		return;
	ehp_attr_remember_sock(sk);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ehp_attr_sys_exit, struct pt_regs *regs, long ret)
{
	if (ret != 0)
		return 0;
	long nr = BPF_CORE_READ(regs, orig_ax);
	if (nr == EHP_ATTR_NR_BIND || nr == EHP_ATTR_NR_CONNECT)
		ehp_attr_on_bound((int)BPF_CORE_READ(regs, di));
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ehp_attr_sys_enter, struct pt_regs *regs, long id)
{
	if (id == EHP_ATTR_NR_SENDTO || id == EHP_ATTR_NR_SENDMSG || id == EHP_ATTR_NR_SENDMMSG)
		ehp_attr_on_send((int)BPF_CORE_READ(regs, di));
	return 0;
}

/* Per-syscall tracepoint records (see /sys/kernel/tracing/events/syscalls/<name>/format). */
struct ehp_attr_sc_enter {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 args[6];
};
struct ehp_attr_sc_exit {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

/* The exit record has no arguments: the fd comes from the task's saved user registers. */
static __always_inline int ehp_attr_exit_fd(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	return (int)BPF_CORE_READ(regs, di);
}

SEC("?tracepoint/syscalls/sys_exit_bind")
int ehp_attr_tp_bind(struct ehp_attr_sc_exit *ctx)
{
	if (ctx->ret == 0)
		ehp_attr_on_bound(ehp_attr_exit_fd());
	return 0;
}

SEC("?tracepoint/syscalls/sys_exit_connect")
int ehp_attr_tp_connect(struct ehp_attr_sc_exit *ctx)
{
	if (ctx->ret == 0)
		ehp_attr_on_bound(ehp_attr_exit_fd());
	return 0;
}

SEC("?tracepoint/syscalls/sys_enter_sendto")
int ehp_attr_tp_sendto(struct ehp_attr_sc_enter *ctx)
{
	ehp_attr_on_send((int)ctx->args[0]);
	return 0;
}

SEC("?tracepoint/syscalls/sys_enter_sendmsg")
int ehp_attr_tp_sendmsg(struct ehp_attr_sc_enter *ctx)
{
	ehp_attr_on_send((int)ctx->args[0]);
	return 0;
}

SEC("?tracepoint/syscalls/sys_enter_sendmmsg")
int ehp_attr_tp_sendmmsg(struct ehp_attr_sc_enter *ctx)
{
	ehp_attr_on_send((int)ctx->args[0]);
	return 0;
}
