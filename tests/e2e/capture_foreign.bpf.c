/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A "foreign" TC filter for the capture e2e test: counts the packets it sees in an array map
 * whose name the test picks (-DCNT_NAME=...), and passes them on (TC_ACT_UNSPEC). If our
 * capture program ended classification (TC_ACT_OK), this counter would stay 0. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} CNT_NAME SEC(".maps");

SEC("tc")
int p5_foreign(struct __sk_buff *skb)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&CNT_NAME, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
