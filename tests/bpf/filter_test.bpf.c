/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Test-only TC program for the filter differential test (tests/bpf/filter_bpf_test.cc):
 * it returns the verdict of the ehp_filter stub, which the test patches through
 * ehp::filter::install() exactly as the engine patches tc_capture. BPF_PROG_TEST_RUN's retval
 * is then 1 (capture) or 0 (skip). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "filter_stub.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC(EHP_TC_SEC)
int ehp_filter_test(struct __sk_buff *skb)
{
	return ehp_filter(skb) != 0;
}

/* A second program in the same section, as tc_capture has ingress and egress: install() must
 * patch each program's own copy of the stub independently. */
SEC(EHP_TC_SEC)
int ehp_filter_test2(struct __sk_buff *skb)
{
	return ehp_filter(skb) != 0;
}
