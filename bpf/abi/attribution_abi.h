/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Process attribution: the kernel <-> userspace contract (bpf/attribution.h fills and reads the
 * map, engine/capture/attribution.cc seeds and sweeps it). The only definition of these
 * layouts; both sides static-assert them.
 *
 * Map `ehp_attr_flows` (LRU_HASH, EHP_ATTR_MAX_ENTRIES): ehp_attr_key -> ehp_attr_value.
 *
 *   key   0                16               32      34      36    37
 *         +----------------+----------------+-------+-------+-----+-----+
 *         | local_addr[16] | remote_addr[16]| lport | rport |proto| pad |
 *         +----------------+----------------+-------+-------+-----+-----+
 *   Addresses are always 16 bytes: IPv4 is stored v4-mapped (::ffff:a.b.c.d), which is also what a
 *   dual-stack AF_INET6 socket reports for an IPv4 peer, so both match the same IPv4 packets.
 *   Ports are in network byte order (as on the wire; the per-packet side does no swapping).
 *   "Local" is the host's end: egress -> local = source, ingress -> local = destination.
 *
 *   Wildcard entries (listening TCP sockets, unconnected UDP sockets) have both addresses and
 *   rport zero: key = {0, 0, lport, 0, proto}. The lookup tries the exact 5-tuple first and
 *   falls back to the wildcard, so a SYN to a listener, the SYN-ACK before accept(), and
 *   datagrams to/from an unconnected UDP socket are attributed to the socket's process.
 *
 *   value 0                32          40          48      52
 *         +----------------+-----------+-----------+-------+-------+
 *         | proc (32)      | closed_ns | sock_ino  |source | rsvd  |
 *         +----------------+-----------+-----------+-------+-------+
 *   closed_ns  bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the socket was seen closing, 0 while
 *              open. An entry stays valid EHP_ATTR_GRACE_NS after close so in-flight packets
 *              (FIN/ACK, TIME_WAIT ACK) still match; after that the lookup ignores it, and the
 *              userspace sweeper or the LRU removes it.
 *   sock_ino   socket inode (as in /proc/PID/fd -> socket:[ino]) when known, else 0; lets the
 *              userspace sweeper tell a closed UDP socket (UDP has no state tracepoint).
 *   source     EHP_ATTR_SRC_*: which hook wrote it (diagnostics, tests). */
#pragma once
#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
typedef uint8_t ehp_u8;
typedef uint16_t ehp_u16;
typedef uint32_t ehp_u32;
typedef uint64_t ehp_u64;
#define EHP_ATTR_STATIC_ASSERT(c, m) static_assert(c, m)
#define EHP_ATTR_OFFSETOF(t, f) offsetof(t, f)
#else
typedef __u8 ehp_u8;
typedef __u16 ehp_u16;
typedef __u32 ehp_u32;
typedef __u64 ehp_u64;
#define EHP_ATTR_STATIC_ASSERT(c, m) _Static_assert(c, m)
#define EHP_ATTR_OFFSETOF(t, f) __builtin_offsetof(t, f)
#endif

#define EHP_COMM_LEN 16

struct ehp_proc_info {
	ehp_u32 pid; /* tgid */
	ehp_u32 tid;
	ehp_u32 uid;
	ehp_u32 gid;
	char comm[EHP_COMM_LEN];
};

/* Bounded: about 100 bytes per entry with LRU overhead -> ~6.5 MiB at 65536 flows. */
#define EHP_ATTR_MAX_ENTRIES 65536u
/* How long an entry keeps matching after its socket closed. */
#define EHP_ATTR_GRACE_NS (5ull * 1000 * 1000 * 1000)

/* ehp_attr_value.source */
#define EHP_ATTR_SRC_STATE 1   /* inet_sock_set_state (listen) in process context */
#define EHP_ATTR_SRC_SEND 2    /* sock_send_length */
#define EHP_ATTR_SRC_RECV 3    /* sock_recv_length */
#define EHP_ATTR_SRC_TC 4      /* TC egress in the sending task's context (first SYN/datagram) */
#define EHP_ATTR_SRC_SEED 5    /* userspace seed from /proc at capture start */

struct ehp_attr_key {
	ehp_u8 local_addr[16];
	ehp_u8 remote_addr[16];
	ehp_u16 local_port;  /* network byte order */
	ehp_u16 remote_port; /* network byte order; 0 in wildcard entries */
	ehp_u8 proto;        /* IPPROTO_TCP / IPPROTO_UDP */
	ehp_u8 pad[3];       /* always zero: part of the hash key */
};

struct ehp_attr_value {
	struct ehp_proc_info proc;
	ehp_u64 closed_ns;
	ehp_u64 sock_ino;
	ehp_u32 source;
	ehp_u32 reserved;
};

EHP_ATTR_STATIC_ASSERT(sizeof(struct ehp_proc_info) == 32, "ehp_proc_info layout");
EHP_ATTR_STATIC_ASSERT(EHP_ATTR_OFFSETOF(struct ehp_proc_info, comm) == 16, "ehp_proc_info.comm");
EHP_ATTR_STATIC_ASSERT(sizeof(struct ehp_attr_key) == 40, "ehp_attr_key layout");
EHP_ATTR_STATIC_ASSERT(EHP_ATTR_OFFSETOF(struct ehp_attr_key, local_port) == 32, "ehp_attr_key.local_port");
EHP_ATTR_STATIC_ASSERT(EHP_ATTR_OFFSETOF(struct ehp_attr_key, proto) == 36, "ehp_attr_key.proto");
EHP_ATTR_STATIC_ASSERT(sizeof(struct ehp_attr_value) == 56, "ehp_attr_value layout");
EHP_ATTR_STATIC_ASSERT(EHP_ATTR_OFFSETOF(struct ehp_attr_value, closed_ns) == 32, "ehp_attr_value.closed_ns");
EHP_ATTR_STATIC_ASSERT(EHP_ATTR_OFFSETOF(struct ehp_attr_value, sock_ino) == 40, "ehp_attr_value.sock_ino");
