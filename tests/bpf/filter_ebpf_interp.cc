// SPDX-License-Identifier: BSD-2-Clause
#include "filter_ebpf_interp.h"

#include <cerrno>
#include <cstring>

namespace ehp::filter::test {
namespace {

constexpr size_t kStackBytes = 512;
constexpr uint64_t kMaxSteps = 1'000'000;

// Address space of the interpreted program: the stack (R10 = its end) and the ctx (read only).
// Addresses are real host addresses, checked.
struct Machine {
  alignas(8) uint8_t stack[kStackBytes] = {};
  struct __sk_buff ctx {};

  uint8_t* map(uint64_t addr, size_t n, bool write) {
    auto* p = reinterpret_cast<uint8_t*>(addr);
    if (p >= stack && p + n <= stack + kStackBytes) return p;
    auto* c = reinterpret_cast<uint8_t*>(&ctx);
    if (!write && p >= c && p + n <= c + sizeof(ctx)) return p;
    return nullptr;
  }
};

uint64_t bswap(uint64_t v, int bits) {
  switch (bits) {
    case 16: return __builtin_bswap16(static_cast<uint16_t>(v));
    case 32: return __builtin_bswap32(static_cast<uint32_t>(v));
    default: return __builtin_bswap64(v);
  }
}

}  // namespace

std::optional<uint64_t> run_ebpf(std::span<const struct bpf_insn> prog, std::span<const uint8_t> pkt,
                                 std::string* err, uint32_t ifindex) {
  auto fail = [&](std::string why, size_t pc) -> std::optional<uint64_t> {
    if (err) *err = why + " at insn " + std::to_string(pc);
    return std::nullopt;
  };
  Machine m;
  m.ctx.len = static_cast<uint32_t>(pkt.size());
  m.ctx.ifindex = ifindex;
  uint64_t r[11] = {};
  r[1] = reinterpret_cast<uint64_t>(&m.ctx);
  r[10] = reinterpret_cast<uint64_t>(m.stack + kStackBytes);

  size_t pc = 0;
  for (uint64_t steps = 0; steps < kMaxSteps; ++steps) {
    if (pc >= prog.size()) return fail("fell off the end", pc);
    const auto& in = prog[pc];
    const uint8_t cls = BPF_CLASS(in.code);
    const uint8_t op = BPF_OP(in.code);
    if (in.dst_reg > 10 || in.src_reg > 10) return fail("bad register", pc);
    uint64_t& dst = r[in.dst_reg];
    const uint64_t imm64 = static_cast<uint64_t>(static_cast<int64_t>(in.imm));
    ++pc;
    switch (cls) {
      case BPF_ALU:
      case BPF_ALU64: {
        if (in.dst_reg == 10) return fail("write to R10", pc - 1);
        const bool is64 = cls == BPF_ALU64;
        if (op == BPF_END) {
          if (BPF_SRC(in.code) != BPF_TO_BE || is64) return fail("unsupported byte swap", pc - 1);
          dst = bswap(dst, in.imm);
          break;
        }
        uint64_t a = is64 ? dst : static_cast<uint32_t>(dst);
        uint64_t b = BPF_SRC(in.code) == BPF_X ? r[in.src_reg] : imm64;
        if (!is64) b = static_cast<uint32_t>(b);
        const unsigned mask = is64 ? 63 : 31;
        switch (op) {
          case BPF_ADD: a += b; break;
          case BPF_SUB: a -= b; break;
          case BPF_MUL: a *= b; break;
          case BPF_DIV: a = b ? a / b : 0; break;       // eBPF ISA: x / 0 = 0
          case BPF_MOD: a = b ? a % b : a; break;       // eBPF ISA: x % 0 = x
          case BPF_OR: a |= b; break;
          case BPF_AND: a &= b; break;
          case BPF_XOR: a ^= b; break;
          case BPF_LSH: a <<= (b & mask); break;
          case BPF_RSH: a >>= (b & mask); break;
          case BPF_NEG: a = -a; break;
          case BPF_MOV: a = b; break;
          default: return fail("unsupported ALU op", pc - 1);
        }
        dst = is64 ? a : static_cast<uint32_t>(a);
        break;
      }
      case BPF_LDX:
      case BPF_ST:
      case BPF_STX: {
        if (BPF_MODE(in.code) != BPF_MEM) return fail("unsupported memory mode", pc - 1);
        const size_t n = BPF_SIZE(in.code) == BPF_B ? 1 : BPF_SIZE(in.code) == BPF_H ? 2 : BPF_SIZE(in.code) == BPF_W ? 4 : 8;
        const uint64_t base = cls == BPF_LDX ? r[in.src_reg] : dst;
        uint8_t* p = m.map(base + static_cast<int64_t>(in.off), n, cls != BPF_LDX);
        if (p == nullptr) return fail("memory access out of bounds", pc - 1);
        if (cls == BPF_LDX) {
          uint64_t v = 0;
          std::memcpy(&v, p, n);  // little-endian host
          dst = v;
        } else {
          const uint64_t v = cls == BPF_ST ? imm64 : r[in.src_reg];
          std::memcpy(p, &v, n);
        }
        break;
      }
      case BPF_JMP:
      case BPF_JMP32: {
        if (op == BPF_EXIT) return r[0];
        if (op == BPF_CALL) {
          if (in.src_reg != 0 || in.imm != BPF_FUNC_skb_load_bytes) return fail("unsupported call", pc - 1);
          const uint64_t off = static_cast<uint32_t>(r[2]), len = static_cast<uint32_t>(r[4]);
          uint8_t* to = m.map(r[3], len, true);
          if (r[1] != reinterpret_cast<uint64_t>(&m.ctx) || to == nullptr || len == 0)
            return fail("bad bpf_skb_load_bytes arguments", pc - 1);
          if (off + len > pkt.size()) {
            std::memset(to, 0, len);
            r[0] = static_cast<uint64_t>(-EFAULT);
          } else {
            std::memcpy(to, pkt.data() + off, len);
            r[0] = 0;
          }
          for (int i = 1; i <= 5; ++i) r[i] = 0xdeadbeefdeadbeefULL;  // clobbered by the call
          break;
        }
        const bool is32 = cls == BPF_JMP32;
        uint64_t a = dst, b = BPF_SRC(in.code) == BPF_X ? r[in.src_reg] : imm64;
        if (is32) {
          a = static_cast<uint32_t>(a);
          b = static_cast<uint32_t>(b);
        }
        const int64_t sa = is32 ? static_cast<int32_t>(a) : static_cast<int64_t>(a);
        const int64_t sb = is32 ? static_cast<int32_t>(b) : static_cast<int64_t>(b);
        bool take;
        switch (op) {
          case BPF_JA: take = true; break;
          case BPF_JEQ: take = a == b; break;
          case BPF_JNE: take = a != b; break;
          case BPF_JGT: take = a > b; break;
          case BPF_JGE: take = a >= b; break;
          case BPF_JLT: take = a < b; break;
          case BPF_JLE: take = a <= b; break;
          case BPF_JSET: take = (a & b) != 0; break;
          case BPF_JSGT: take = sa > sb; break;
          case BPF_JSGE: take = sa >= sb; break;
          case BPF_JSLT: take = sa < sb; break;
          case BPF_JSLE: take = sa <= sb; break;
          default: return fail("unsupported jump", pc - 1);
        }
        if (take) {
          const int64_t target = static_cast<int64_t>(pc) + in.off;
          if (target < 0 || target > static_cast<int64_t>(prog.size())) return fail("jump out of range", pc - 1);
          pc = static_cast<size_t>(target);
        }
        break;
      }
      default:
        return fail("unsupported instruction class", pc - 1);
    }
  }
  return fail("too many steps", pc);
}

}  // namespace ehp::filter::test
