/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The kernel <-> userspace contract of the TC capture path (bpf/tc_capture.bpf.c and
 * engine/capture). This is the only definition of these layouts; both sides include it and
 * static-assert every size and offset.
 *
 * One ring record, as written by bpf_ringbuf_output into the ringbuf of the CPU that saw the
 * packet (the 8-byte ringbuf header in front of it belongs to the kernel):
 *
 *   0        8        12       16       20    21    22      24                         56
 *   +--------+--------+--------+--------+-----+-----+-------+--------------------------+----------
 *   | ts_ns  |ifindex |wire_len|cap_len | dir |flags| rsvd  | proc (ehp_proc_info, 32) | frame ...
 *   +--------+--------+--------+--------+-----+-----+-------+--------------------------+----------
 *   ts_ns     bpf_ktime_get_ns(): CLOCK_MONOTONIC. Userspace adds a wall-clock offset; this value
 *             must never be written to a file as is.
 *   wire_len  skb->len (may exceed 64 KiB-1 only with BIG TCP; GSO super-packets reach 64 KiB)
 *   cap_len   bytes of frame that follow: min(wire_len, snaplen, EHP_CAPTURE_MAX_FRAME)
 *   dir       EHP_DIR_INGRESS / EHP_DIR_EGRESS relative to the interface
 *   flags     EHP_CAP_F_*
 *   proc      valid only with EHP_CAP_F_ATTRIBUTED
 */
#pragma once
#include "abi/attribution_abi.h"

#ifdef __cplusplus
#include <cstddef>
#include <cstdint>
typedef uint8_t ehp_cap_u8;
typedef uint16_t ehp_cap_u16;
typedef uint32_t ehp_cap_u32;
typedef uint64_t ehp_cap_u64;
#define EHP_CAP_STATIC_ASSERT(c, m) static_assert(c, m)
#define EHP_CAP_OFFSETOF(t, f) offsetof(t, f)
#else
typedef __u8 ehp_cap_u8;
typedef __u16 ehp_cap_u16;
typedef __u32 ehp_cap_u32;
typedef __u64 ehp_cap_u64;
#define EHP_CAP_STATIC_ASSERT(c, m) _Static_assert(c, m)
#define EHP_CAP_OFFSETOF(t, f) __builtin_offsetof(t, f)
#endif

#define EHP_CAPTURE_ABI_VERSION 1

/* Largest frame a record can carry. TC egress sees GSO super-packets up to 64 KiB
 * (docs/facts.md, "This kernel"); the largest ring-record size class is header + this, so the
 * verifier can bound the copy. */
#define EHP_CAPTURE_MAX_FRAME 65536u
#define EHP_CAPTURE_DEFAULT_SNAPLEN 262144u
/* Array sizes in the BPF object; userspace resizes them to the possible CPU count before load. */
#define EHP_CAPTURE_MAX_CPUS_DEFAULT 256u

#define EHP_DIR_INGRESS 0
#define EHP_DIR_EGRESS 1

#define EHP_CAP_F_ATTRIBUTED (1u << 0) /* proc holds the owning process */
#define EHP_CAP_F_TRUNCATED (1u << 1)  /* cap_len < wire_len */

struct ehp_capture_hdr {
	ehp_cap_u64 ts_ns;
	ehp_cap_u32 ifindex;
	ehp_cap_u32 wire_len;
	ehp_cap_u32 cap_len;
	ehp_cap_u8 direction;
	ehp_cap_u8 flags;
	ehp_cap_u16 reserved;
	struct ehp_proc_info proc;
};

EHP_CAP_STATIC_ASSERT(sizeof(struct ehp_capture_hdr) == 56, "ehp_capture_hdr size");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, ts_ns) == 0, "ts_ns");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, ifindex) == 8, "ifindex");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, wire_len) == 12, "wire_len");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, cap_len) == 16, "cap_len");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, direction) == 20, "direction");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, flags) == 21, "flags");
EHP_CAP_STATIC_ASSERT(EHP_CAP_OFFSETOF(struct ehp_capture_hdr, proc) == 24, "proc");


/* Per-CPU counters (PERCPU_ARRAY, one entry). Every packet the program sees ends in exactly one
 * of: records (written), reserve_fail (ring full), no_ring (no ring for this CPU),
 * filtered_out (pcap filter said no), filtered_proc (pid/uid filter said no), load_fail. */
struct ehp_capture_counters {
	ehp_cap_u64 seen;
	ehp_cap_u64 records;
	ehp_cap_u64 bytes; /* captured frame bytes written */
	ehp_cap_u64 reserve_fail;
	ehp_cap_u64 no_ring;
	ehp_cap_u64 filtered_out;
	ehp_cap_u64 filtered_proc;
	ehp_cap_u64 load_fail;
	ehp_cap_u64 truncated;
	ehp_cap_u64 wakeups; /* forced wakeups (threshold crossings) */
};
EHP_CAP_STATIC_ASSERT(sizeof(struct ehp_capture_counters) == 80, "ehp_capture_counters size");

/* Per-interface config (HASH keyed by ifindex, filled by userspace before attach). */
struct ehp_capture_iface {
	ehp_cap_u32 l2_len; /* 14 for Ethernet, 0 for devices without L2 (LINKTYPE_RAW) */
	ehp_cap_u32 known;  /* 1 in entries userspace wrote (the array's zeroed slots have 0) */
};
EHP_CAP_STATIC_ASSERT(sizeof(struct ehp_capture_iface) == 8, "ehp_capture_iface size");
/* ifindexes below this go in the ARRAY `ifaces_idx` (an inlined lookup), others in the HASH. */
#define EHP_CAPTURE_IFINDEX_ARRAY 4096

/* Names of the TC programs: used to recognise our filters left behind by a killed run.
 * BPF object names are truncated to 15 characters by the kernel. */
#define EHP_CAPTURE_PROG_INGRESS "ehp_cap_ingress"
#define EHP_CAPTURE_PROG_EGRESS "ehp_cap_egress"
