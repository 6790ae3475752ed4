/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* TC capture: clsact ingress/egress classifier that copies each packet (up to snaplen) plus
 * its process attribution into the ringbuf of the CPU that saw it. Never drops or alters
 * traffic: always returns TC_ACT_UNSPEC, which lets the next filter on the hook run
 * (TC_ACT_OK would end classification and silently bypass foreign filters).
 * Layouts: bpf/abi/capture_abi.h. Userspace: engine/capture. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "abi/capture_abi.h"
#include "filter_stub.h"
#include "attribution.h"

#ifndef TC_ACT_UNSPEC
#define TC_ACT_UNSPEC (-1)
#endif
#define EHP_ETH_P_8021Q 0x8100
#define EHP_ETH_P_8021AD 0x88A8

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs, set by userspace between open and load. */
const volatile __u32 snaplen = EHP_CAPTURE_DEFAULT_SNAPLEN;
const volatile __u32 filter_pid_on = 0;
const volatile __u32 filter_pid = 0;
const volatile __u32 filter_uid_on = 0;
const volatile __u32 filter_uid = 0;
/* Unread bytes in a CPU's ring at which the consumer is woken (edge-triggered). */
const volatile __u64 wakeup_bytes = 256 * 1024;

/* Map catalog:
 * rings       ARRAY_OF_MAPS of RINGBUF, index = CPU id. Per-CPU rings keep producers from
 *             contending on one ring's spinlock; userspace creates and inserts the inner rings
 *             after load (inner template fd set before load), sized per CPU.
 * reader_pos  mmapable ARRAY indexed by CPU: how far the userspace reader has READ (not
 *             released) each ring. Lets the wakeup decision look at unread bytes, so a writer that
 *             holds ring space does not suppress wakeups forever.
 * counters    PERCPU_ARRAY(1) of ehp_capture_counters: every outcome counted, per CPU.
 * ifaces_idx  ARRAY ifindex -> ehp_capture_iface (L2 header length for attribution), for
 *             ifindex < EHP_CAPTURE_IFINDEX_ARRAY: the verifier inlines the lookup (a hash lookup
 *             cost ~20-30 ns per packet).
 * ifaces      HASH ifindex -> ehp_capture_iface, for larger ifindexes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, EHP_CAPTURE_MAX_CPUS_DEFAULT);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_RINGBUF);
		__uint(max_entries, 1 << 20);
	});
} rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, EHP_CAPTURE_MAX_CPUS_DEFAULT);
	__type(key, __u32);
	__type(value, __u64);
} reader_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ehp_capture_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct ehp_capture_iface);
} ifaces SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EHP_CAPTURE_IFINDEX_ARRAY);
	__type(key, __u32);
	__type(value, struct ehp_capture_iface);
} ifaces_idx SEC(".maps");

/* L3 offset: the device's L2 length plus up to two in-band VLAN tags. */
static __always_inline __u32 l3_offset(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct ehp_capture_iface *ifc;
	if (ifindex < EHP_CAPTURE_IFINDEX_ARRAY) {
		ifc = bpf_map_lookup_elem(&ifaces_idx, &ifindex);
		if (ifc && !ifc->known)
			ifc = 0;
	} else {
		ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	}
	__u32 off = ifc ? ifc->l2_len : 14;
	if (off != 14)
		return off;
	for (int i = 0; i < 2; i++) {
		__be16 proto;
		if (ehp_skb_load(skb, off - 2, &proto, sizeof(proto)) < 0)
			break;
		if (proto != bpf_htons(EHP_ETH_P_8021Q) && proto != bpf_htons(EHP_ETH_P_8021AD))
			break;
		off += 4;
	}
	return off;
}

/* Ring record size classes (header + frame bytes): eight per power of two from 128 up, so a
 * record wastes at most 1/8 (typically ~1/16) of its ring space. bpf_ringbuf_reserve takes
 * only constant sizes; every return below is a constant, which the verifier follows per path. */
#define EHP_REC_MAX (sizeof(struct ehp_capture_hdr) + EHP_CAPTURE_MAX_FRAME)
#define EHP_CLASS_OCTAVE(base)                                          \
	if (need <= (base) * 2) {                                           \
		if (need <= (base) + (base) / 8 * 4) {                          \
			if (need <= (base) + (base) / 8 * 1) return (base) + (base) / 8 * 1; \
			if (need <= (base) + (base) / 8 * 2) return (base) + (base) / 8 * 2; \
			if (need <= (base) + (base) / 8 * 3) return (base) + (base) / 8 * 3; \
			return (base) + (base) / 8 * 4;                                     \
		}                                                               \
		if (need <= (base) + (base) / 8 * 5) return (base) + (base) / 8 * 5; \
		if (need <= (base) + (base) / 8 * 6) return (base) + (base) / 8 * 6; \
		if (need <= (base) + (base) / 8 * 7) return (base) + (base) / 8 * 7; \
		return (base) * 2;                                              \
	}
static __always_inline __u32 ehp_size_class(__u32 need)
{
	if (need <= 128)
		return 128;
	if (need <= 2048) {
		EHP_CLASS_OCTAVE(128)
		EHP_CLASS_OCTAVE(256)
		EHP_CLASS_OCTAVE(512)
		EHP_CLASS_OCTAVE(1024)
	}
	EHP_CLASS_OCTAVE(2048)
	EHP_CLASS_OCTAVE(4096)
	EHP_CLASS_OCTAVE(8192)
	EHP_CLASS_OCTAVE(16384)
	EHP_CLASS_OCTAVE(32768)
	return EHP_REC_MAX;
}

/* -p/-u keep a packet when the process it is named after matches, or -- on ingress, where the
 * name is the sender's when the sender is local -- when the local receiver matches: "packets of
 * that process" in both directions. */
static __always_inline int process_filter_keeps(struct __sk_buff *skb, __u32 l3_off, __u8 direction,
						int attributed, const struct ehp_proc_info *named)
{
	if (attributed && (!filter_pid_on || named->pid == filter_pid) &&
	    (!filter_uid_on || named->uid == filter_uid))
		return 1;
	if (direction == EHP_DIR_EGRESS)
		return 0;
	struct ehp_proc_info r = {};
	return ehp_attr_lookup_receiver(skb, l3_off, &r) && (!filter_pid_on || r.pid == filter_pid) &&
	       (!filter_uid_on || r.uid == filter_uid);
}

/* Batched wakeups: BPF_RB_FORCE_WAKEUP only when this record makes the unread bytes cross the
 * threshold (edge), else no wakeup. Level-triggered wakeups storm when the reader lags; the
 * consumer's poll timeout drains whatever stays below the threshold. */
static __always_inline __u64 wakeup_flag(void *ring, __u32 cpu, __u32 rec_size)
{
	__u64 rec_bytes = ((__u64)rec_size + 8 + 7) & ~7ull;
	__u64 *rpos = bpf_map_lookup_elem(&reader_pos, &cpu);
	if (!rpos)
		return BPF_RB_NO_WAKEUP;
	__u64 prod = bpf_ringbuf_query(ring, BPF_RB_PROD_POS);
	__u64 read = *(volatile __u64 *)rpos;
	__u64 unread = prod > read ? prod - read : 0;
	return unread < wakeup_bytes && unread + rec_bytes >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline int capture(struct __sk_buff *skb, __u8 direction)
{
	__u32 zero = 0;
	struct ehp_capture_counters *cnt = bpf_map_lookup_elem(&counters, &zero);
	if (!cnt)
		return TC_ACT_UNSPEC;
	cnt->seen++;

	if (!ehp_filter(skb)) {
		cnt->filtered_out++;
		return TC_ACT_UNSPEC;
	}

	__u32 cpu = bpf_get_smp_processor_id();
	struct ehp_capture_hdr h;
	__builtin_memset(&h.proc, 0, sizeof(h.proc));
	__u8 flags = 0;
	__u32 l3_off = l3_offset(skb);
	if (ehp_attr_lookup(skb, l3_off, direction == EHP_DIR_EGRESS, &h.proc))
		flags |= EHP_CAP_F_ATTRIBUTED;
	if ((filter_pid_on || filter_uid_on) &&
	    !process_filter_keeps(skb, l3_off, direction, flags & EHP_CAP_F_ATTRIBUTED, &h.proc)) {
		cnt->filtered_proc++;
		return TC_ACT_UNSPEC;
	}

	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		cnt->no_ring++;
		return TC_ACT_UNSPEC;
	}

	/* A VLAN tag the device took out of the frame (rx offload; tx offload of a VLAN device on
	 * top) lives in skb metadata: put it back after the MAC addresses, as libpcap does from
	 * PACKET_AUXDATA, so the file holds the frame as it was on the wire. Ethernet only. */
	__u32 vlan = 0;
	if (skb->vlan_present && l3_off >= 14 && skb->len >= 14 && snaplen >= 16) /* room for MACs + tag */
		vlan = (__u32)bpf_ntohs((__u16)skb->vlan_proto) << 16 | (skb->vlan_tci & 0xffff);
	__u32 wire_len = skb->len + (vlan ? 4 : 0);
	__u32 cap_len = wire_len;
	if (cap_len > snaplen)
		cap_len = snaplen;
	if (cap_len > EHP_CAPTURE_MAX_FRAME)
		cap_len = EHP_CAPTURE_MAX_FRAME;
	if (cap_len < wire_len) {
		flags |= EHP_CAP_F_TRUNCATED;
		cnt->truncated++;
	}
	if (cap_len == 0) { /* never for a real device; keeps the bounded copy below non-empty */
		cnt->load_fail++;
		return TC_ACT_UNSPEC;
	}

	h.ts_ns = bpf_ktime_get_ns();
	h.ifindex = skb->ifindex;
	h.wire_len = wire_len;
	h.cap_len = cap_len;
	h.direction = direction;
	h.flags = flags;
	h.reserved = 0;

	/* The record goes straight into ring space reserved in the smallest size class that holds
	 * it (bpf_ringbuf_reserve takes constant sizes only), so the frame is copied once. The
	 * reader takes the frame length from hdr.cap_len; the class's unused tail is ignored. */
	__u32 rec_size = ehp_size_class(sizeof(struct ehp_capture_hdr) + cap_len);

	__u64 wake = wakeup_flag(ring, cpu, rec_size);

	struct ehp_capture_hdr *rec = bpf_ringbuf_reserve(ring, rec_size, 0);
	if (!rec) {
		cnt->reserve_fail++;
		return TC_ACT_UNSPEC;
	}
	__builtin_memcpy(rec, &h, sizeof(h));
	/* Bound the length in a form the verifier tracks: cap_len is in [1, frame_max] by choice
	 * of the class, but clang drops a C clamp it can prove redundant (or applies it to a copy
	 * of the register), so the clamp is written in asm on the register passed to the helper.
	 * frame_max is a known constant on every verifier path. */
	__u64 copy_len = cap_len;
	__u64 frame_max = rec_size - sizeof(struct ehp_capture_hdr);
	asm volatile("if %[n] <= %[m] goto +1\n\t%[n] = %[m]\n\t"
		     "if %[n] != 0 goto +1\n\t%[n] = 1"
		     : [n] "+r"(copy_len)
		     : [m] "r"(frame_max));
	__u8 *frame = (__u8 *)rec + sizeof(struct ehp_capture_hdr);
	long lrc;
	if (!vlan) {
		lrc = bpf_skb_load_bytes(skb, 0, frame, copy_len);
	} else {
		/* MACs, the tag, then the rest of the frame from its EtherType on. */
		__u64 rest = copy_len - 16;
		__u64 rest_max = frame_max - 16;
		asm volatile("if %[n] <= %[m] goto +1\n\t%[n] = %[m]\n\t"
			     : [n] "+r"(rest)
			     : [m] "r"(rest_max));
		lrc = bpf_skb_load_bytes(skb, 0, frame, 12);
		__be32 tag = bpf_htonl(vlan);
		__builtin_memcpy(frame + 12, &tag, 4);
		if (lrc == 0 && rest > 0)
			lrc = bpf_skb_load_bytes(skb, 12, frame + 16, rest);
	}
	if (lrc < 0) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		cnt->load_fail++;
		return TC_ACT_UNSPEC;
	}
	bpf_ringbuf_submit(rec, wake);
	if (wake == BPF_RB_FORCE_WAKEUP)
		cnt->wakeups++;
	cnt->records++;
	cnt->bytes += cap_len;
	return TC_ACT_UNSPEC;
}

SEC(EHP_TC_SEC)
int ehp_cap_ingress(struct __sk_buff *skb)
{
	return capture(skb, EHP_DIR_INGRESS);
}

SEC(EHP_TC_SEC)
int ehp_cap_egress(struct __sk_buff *skb)
{
	return capture(skb, EHP_DIR_EGRESS);
}
