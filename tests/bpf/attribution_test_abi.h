/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Record emitted by the test-only object tests/bpf/attrib_test.bpf.c, one per TCP/UDP packet seen on
 * the test's veths; read by tests/bpf/attribution_bpf_test.cc. Not part of the product ABI. */
#pragma once
#include "abi/attribution_abi.h"

struct ehp_attr_test_rec {
	ehp_u8 egress;
	ehp_u8 ipver;
	ehp_u8 proto;
	ehp_u8 tcp_flags;
	ehp_u16 sport; /* network byte order */
	ehp_u16 dport;
	ehp_u8 src_addr[16]; /* v4-mapped for IPv4 */
	ehp_u8 dst_addr[16];
	ehp_u32 found;
	ehp_u32 pad;
	struct ehp_proc_info proc;
};

EHP_ATTR_STATIC_ASSERT(sizeof(struct ehp_attr_test_rec) == 80, "ehp_attr_test_rec layout");
