/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The pcap filter hook of the TC capture program.
 *
 * ehp_filter() returns non-zero to capture the packet, 0 to skip it. As compiled it accepts
 * every packet. Before load, engine/filter (ehp::filter::install) rewrites it: libbpf calls our
 * prog_prepare_load_fn for every program in SEC(EHP_TC_SEC) after relocation, when all
 * subprograms sit at their final offsets; install() then finds this stub by its marker, turns
 * it into "call <translated filter>; exit" and appends the translated pcap filter as a new
 * subprogram (with func_info/line_info records), so no other instruction moves.
 *
 * Rules the stub must keep for that to work:
 *  - __noinline, so it exists as its own subprogram that every capture program calls;
 *  - it uses `skb` in the asm, so clang cannot drop the argument (R1 must hold ctx on entry,
 *    the translated filter reads packet bytes through it);
 *  - its body contains the 64-bit marker EHP_FILTER_MARKER (one ld_imm64), exactly once per
 *    program, which is how userspace finds it after libbpf has laid the subprograms out.
 *    Its low 32 bits are non-zero, so the untouched stub accepts everything.
 */
#pragma once
#ifndef EHP_TC_SEC
/* libbpf's "tc" section (SCHED_CLS). engine/filter registers its own handler for exactly
 * this name, so the load-time patch runs; programs it was not asked to patch load unchanged. */
#define EHP_TC_SEC "tc"
#endif

/* "EHPFILTR" read as little-endian bytes. Keep in sync with engine/filter/filter.cc. */
#define EHP_FILTER_MARKER 0x52544c4946504845ULL

static __noinline int ehp_filter(struct __sk_buff *skb)
{
	long verdict;

	asm volatile("%[v] = 0x52544c4946504845 ll" : [v] "=r"(verdict) : "r"(skb));
	return (int)verdict;
}
