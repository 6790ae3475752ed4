// SPDX-License-Identifier: BSD-2-Clause
// A small userspace interpreter for the eBPF subset the filter translator emits (ALU/ALU64,
// byte swaps, stack and ctx loads/stores, JMP/JMP32, bpf_skb_load_bytes, exit). It lets the
// translation be checked against libpcap without root (unit tests, fuzzing); the kernel
// (filter_bpf_test, BPF_PROG_TEST_RUN) stays the authority on what really runs.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace ehp::filter::test {

// Runs `prog` as the ehp_filter body on `pkt` (skb->len = pkt.size()). Returns R0, or nullopt
// with *err on anything the kernel would not do either (memory access outside the 512-byte
// stack or a read outside the ctx (struct __sk_buff, only len and ifindex set), a write to the
// ctx, unknown opcode, falling off the end, running too long).
// `ifindex` is what the program reads as skb->ifindex.
std::optional<uint64_t> run_ebpf(std::span<const struct bpf_insn> prog, std::span<const uint8_t> pkt,
                                 std::string* err, uint32_t ifindex = 1);

}  // namespace ehp::filter::test
