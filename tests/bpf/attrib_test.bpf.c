/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test-only object for bpf/attribution.h (tests/bpf/attribution_bpf_test.cc).
 *
 * attr_test_ingress / attr_test_egress: clsact classifiers on the test's veths. For every
 *   Ethernet+IP packet they call ehp_attr_lookup exactly as tc_capture.bpf.c does and emit one
 *   ehp_attr_test_rec into `attr_test_rb`, so the test can compare, packet by packet, the
 *   attributed process with the process that really owns the flow. Never alter traffic.
 * attr_test_run: BPF_PROG_TEST_RUN entry for crafted frames and the per-packet cost measurement;
 *   the direction comes from `test_egress`, the result goes to `test_out`/`test_found`; with
 *   `test_receiver` set (not during the cost measurement), on ingress ehp_attr_lookup_receiver's
 *   result goes to `test_recv_out`/`test_recv_found`.
 * attr_test_empty: baseline for that measurement. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "attribution.h"
#include "attribution_test_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} attr_test_rb SEC(".maps");

__u32 test_egress;
__u32 test_found;
struct ehp_proc_info test_out;
__u32 test_receiver;
__u32 test_recv_found;
struct ehp_proc_info test_recv_out;

static __always_inline int record(struct __sk_buff *skb, int egress)
{
	struct ehp_attr_test_rec rec = {};
	__u8 h[60];
	rec.egress = egress;
	__u16 eth_proto;
	if (bpf_skb_load_bytes(skb, 12, &eth_proto, 2) < 0)
		return -1;
	if (eth_proto == bpf_htons(0x0800)) {
		if (bpf_skb_load_bytes(skb, 14, h, 20) < 0)
			return -1;
		rec.ipver = 4;
		rec.proto = h[9];
		ehp_attr_map_v4(rec.src_addr, *(__u32 *)(h + 12));
		ehp_attr_map_v4(rec.dst_addr, *(__u32 *)(h + 16));
		__u32 l4 = 14 + (h[0] & 0xf) * 4;
		/* TCP: through the flags byte; UDP: ports only (tiny datagrams are shorter). */
		if (bpf_skb_load_bytes(skb, l4, h, rec.proto == 6 ? 14 : 4) < 0)
			return -1;
	} else if (eth_proto == bpf_htons(0x86DD)) {
		if (bpf_skb_load_bytes(skb, 14, h, 44) < 0)
			return -1;
		rec.ipver = 6;
		rec.proto = h[6];
		if (rec.proto == 6 && bpf_skb_load_bytes(skb, 14, h, 54) < 0)
			return -1;
		__builtin_memcpy(rec.src_addr, h + 8, 16);
		__builtin_memcpy(rec.dst_addr, h + 24, 16);
		__builtin_memmove(h, h + 40, 14);
	} else {
		return -1;
	}
	if (rec.proto != 6 && rec.proto != 17)
		return -1;
	__builtin_memcpy(&rec.sport, h, 2);
	__builtin_memcpy(&rec.dport, h + 2, 2);
	if (rec.proto == 6)
		rec.tcp_flags = h[13];
	rec.found = ehp_attr_lookup(skb, 14, egress, &rec.proc);
	bpf_ringbuf_output(&attr_test_rb, &rec, sizeof(rec), 0);
	return -1; /* TC_ACT_UNSPEC: observe only */
}

SEC("tc")
int attr_test_ingress(struct __sk_buff *skb)
{
	return record(skb, 0);
}

SEC("tc")
int attr_test_egress(struct __sk_buff *skb)
{
	return record(skb, 1);
}

SEC("tc")
int attr_test_run(struct __sk_buff *skb)
{
	struct ehp_proc_info out;
	int found = ehp_attr_lookup(skb, 14, test_egress, &out);
	test_found = found;
	if (found)
		__builtin_memcpy(&test_out, &out, sizeof(out));
	if (!test_egress && test_receiver) {
		struct ehp_proc_info recv;
		test_recv_found = ehp_attr_lookup_receiver(skb, 14, &recv);
		if (test_recv_found)
			__builtin_memcpy(&test_recv_out, &recv, sizeof(recv));
	}
	return found;
}

/* Baseline for the cost measurement: the run loop and program entry without the lookup. */
SEC("tc")
int attr_test_empty(struct __sk_buff *skb)
{
	return 0;
}
