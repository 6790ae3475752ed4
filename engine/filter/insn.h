// SPDX-License-Identifier: BSD-2-Clause
// Building one eBPF instruction; shared by the translator and the stub patcher.
#pragma once
#include <linux/bpf.h>

#include <cstdint>

namespace ehp::filter::detail {

inline struct bpf_insn make_insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  struct bpf_insn i {};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

}  // namespace ehp::filter::detail
