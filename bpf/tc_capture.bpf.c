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

char LICENSE[] SEC("license") = "GPL";

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
 * scratch     ARRAY indexed by CPU holding one whole record: bpf_ringbuf_reserve needs a
 *             constant size, so the variable-length frame is staged here and copied with one
 *             bpf_ringbuf_output of a verifier-bounded length. A plain ARRAY, because
 *             PERCPU_ARRAY values are capped at 32 KiB. Safe: TC programs don't nest on a CPU.
 * reader_pos  mmapable ARRAY indexed by CPU: how far the userspace reader has READ (not
 *             released) each ring. Lets the wakeup decision look at unread bytes, so a writer that
 *             holds ring space does not suppress wakeups forever.
 * counters    PERCPU_ARRAY(1) of ehp_capture_counters: every outcome counted, per CPU.
 * ifaces      HASH ifindex -> ehp_capture_iface (L2 header length for attribution). */
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
	__uint(max_entries, EHP_CAPTURE_MAX_CPUS_DEFAULT);
	__type(key, __u32);
	__type(value, struct ehp_capture_scratch);
} scratch SEC(".maps");

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

/* L3 offset: the device's L2 length plus up to two in-band VLAN tags. */
static __always_inline __u32 l3_offset(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct ehp_capture_iface *ifc = bpf_map_lookup_elem(&ifaces, &ifindex);
	__u32 off = ifc ? ifc->l2_len : 14;
	if (off != 14)
		return off;
	for (int i = 0; i < 2; i++) {
		__be16 proto;
		if (bpf_skb_load_bytes(skb, off - 2, &proto, sizeof(proto)) < 0)
			break;
		if (proto != bpf_htons(EHP_ETH_P_8021Q) && proto != bpf_htons(EHP_ETH_P_8021AD))
			break;
		off += 4;
	}
	return off;
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
	struct ehp_capture_scratch *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s) {
		cnt->no_ring++;
		return TC_ACT_UNSPEC;
	}

	__builtin_memset(&s->hdr.proc, 0, sizeof(s->hdr.proc));
	__u8 flags = 0;
	if (ehp_attr_lookup(skb, l3_offset(skb), direction == EHP_DIR_EGRESS, &s->hdr.proc))
		flags |= EHP_CAP_F_ATTRIBUTED;
	if (filter_pid_on || filter_uid_on) {
		/* -p/-u keep a packet when the process it is named after matches, or -- on ingress,
		 * where the name is the sender's when the sender is local -- when the local receiver
		 * matches: "packets of that process" in both directions. */
		int ok = (flags & EHP_CAP_F_ATTRIBUTED) &&
			 (!filter_pid_on || s->hdr.proc.pid == filter_pid) &&
			 (!filter_uid_on || s->hdr.proc.uid == filter_uid);
		if (!ok && direction != EHP_DIR_EGRESS) {
			struct ehp_proc_info r = {};
			if (ehp_attr_lookup_receiver(skb, l3_offset(skb), &r) &&
			    (!filter_pid_on || r.pid == filter_pid) && (!filter_uid_on || r.uid == filter_uid))
				ok = 1;
		}
		if (!ok) {
			cnt->filtered_proc++;
			return TC_ACT_UNSPEC;
		}
	}

	void *ring = bpf_map_lookup_elem(&rings, &cpu);
	if (!ring) {
		cnt->no_ring++;
		return TC_ACT_UNSPEC;
	}

	__u32 wire_len = skb->len;
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
	/* Bound the copy length in a form the verifier tracks: clang folds the min() chain above
	 * into something the verifier reads as <= snaplen only. cap_len is in [1, 65536], so
	 * ((cap_len - 1) & 0xffff) + 1 == cap_len, and the verifier sees [1, 65536]. */
	__u32 copy_len = cap_len - 1;
	asm volatile("" : "+r"(copy_len));
	copy_len = (copy_len & (EHP_CAPTURE_MAX_FRAME - 1)) + 1;
	if (bpf_skb_load_bytes(skb, 0, s->frame, copy_len) < 0) {
		cnt->load_fail++;
		return TC_ACT_UNSPEC;
	}
	cap_len = copy_len;

	s->hdr.ts_ns = bpf_ktime_get_ns();
	s->hdr.ifindex = skb->ifindex;
	s->hdr.wire_len = wire_len;
	s->hdr.cap_len = cap_len;
	s->hdr.direction = direction;
	s->hdr.flags = flags;
	s->hdr.reserved = 0;

	/* Batched wakeups: no wakeup per record; force one only when the unread bytes cross the
	 * threshold (edge). Level-triggered wakeups storm when the reader lags. The consumer's
	 * poll timeout drains whatever stays below the threshold. */
	__u64 rec_bytes = ((__u64)sizeof(struct ehp_capture_hdr) + cap_len + 8 + 7) & ~7ull;
	__u64 wake = BPF_RB_NO_WAKEUP;
	__u64 *rpos = bpf_map_lookup_elem(&reader_pos, &cpu);
	if (rpos) {
		__u64 prod = bpf_ringbuf_query(ring, BPF_RB_PROD_POS);
		__u64 read = *(volatile __u64 *)rpos;
		__u64 unread = prod > read ? prod - read : 0;
		if (unread < wakeup_bytes && unread + rec_bytes >= wakeup_bytes)
			wake = BPF_RB_FORCE_WAKEUP;
	}

	__u64 size = sizeof(struct ehp_capture_hdr) + (__u64)cap_len;
	if (bpf_ringbuf_output(ring, s, size, wake) < 0) {
		cnt->reserve_fail++;
		return TC_ACT_UNSPEC;
	}
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
