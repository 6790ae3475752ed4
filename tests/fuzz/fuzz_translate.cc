// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: cBPF -> eBPF translator (engine/filter/filter.h) against the real verifier.
//
// Property (issue 7): for every cBPF program, ehp::filter::translate either refuses it with an
// error string, or its output is ACCEPTED by the kernel verifier when loaded as the ehp_filter
// subprogram of a sched_cls program. Where libpcap's bpf_validate accepts the program too, the
// kernel's verdict (BPF_PROG_TEST_RUN) on a packet taken from the input must equal
// pcap_offline_filter's (only for programs that never read a scratch word M[k] before storing
// it: libpcap leaves M[] uninitialised, so its verdict for those is undefined).
//
// Input byte 0 picks how the cBPF program is made (the rest of the input is its material):
//   0 mod 3  raw: 8 bytes per sock_filter, at most 512 instructions (mostly refused);
//   1 mod 3  valid by construction: 4 bytes per instruction mapped onto the real cBPF opcode
//            set, jumps kept in range, small load offsets, M[] indexes < 16, ending in RET
//            (these reach the translator's code generation, and the verifier, every time);
//   2 mod 3  a pcap filter expression (byte 1 bit 0: DLT_EN10MB or DLT_RAW), via compile_cbpf;
//            here translate must also ACCEPT libpcap's output, unless the program has a backward
//            jump (`protochain` does; the kernel's cBPF loader refuses those too).
// BPF_PROG_TEST_RUN refusing a frame (EINVAL) skips the verdict comparison for that input.
//
// Loading: each accepted translation is loaded directly with bpf_prog_load as
//   [0] call +1 (BPF_PSEUDO_CALL)   [1] exit   [2..] body
// which is how install() lays it out (a static subprogram: the verifier checks it in its
// caller's context, R1 = ctx). Every EHP_FUZZ_INSTALL_EVERY-th accepted translation (default
// 64; 0 = never) also goes through the engine's real mechanism: filter_test skeleton + install() +
// load with BTF func_info. Measured: ~1300 inputs/s with every translation loaded (76k verifier
// loads in 60 s), so there is no need to load only every Nth one.
// Without root (EPERM at the first load) the target says so once and checks translation only.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "filter/filter.h"
#include "filter_pcap_oracle.h"
#include "filter_test.skel.h"
#include "fuzz_util.h"

namespace {

using ehp::fuzz::fail;
constexpr const char* kT = "fuzz_translate";

bool g_no_root = false;
uint64_t g_accepted = 0;
// Totals printed at exit so a run shows how much reached the verifier (tools/fuzz.sh logs them).
struct Counts {
  uint64_t inputs, translated, refused, verifier_loads, install_loads, verdicts_compared;
} g_n{};
void print_counts() {
  std::fprintf(stderr,
               "fuzz_translate: inputs %llu, translated %llu, refused by translate %llu, verifier loads %llu "
               "(via install(): %llu), kernel-vs-libpcap verdicts compared %llu\n",
               (unsigned long long)g_n.inputs, (unsigned long long)g_n.translated, (unsigned long long)g_n.refused,
               (unsigned long long)g_n.verifier_loads, (unsigned long long)g_n.install_loads,
               (unsigned long long)g_n.verdicts_compared);
}

uint64_t env_u64(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

// ---- valid-by-construction cBPF -------------------------------------------------------
constexpr uint16_t kOps[] = {
    BPF_LD | BPF_W | BPF_ABS,  BPF_LD | BPF_H | BPF_ABS,  BPF_LD | BPF_B | BPF_ABS,
    BPF_LD | BPF_W | BPF_IND,  BPF_LD | BPF_H | BPF_IND,  BPF_LD | BPF_B | BPF_IND,
    BPF_LD | BPF_W | BPF_LEN,  BPF_LD | BPF_IMM,          BPF_LD | BPF_MEM,
    BPF_LDX | BPF_W | BPF_IMM, BPF_LDX | BPF_W | BPF_MEM, BPF_LDX | BPF_W | BPF_LEN,
    BPF_LDX | BPF_B | BPF_MSH, BPF_ST,                    BPF_STX,
    BPF_ALU | BPF_ADD | BPF_K, BPF_ALU | BPF_SUB | BPF_K, BPF_ALU | BPF_MUL | BPF_K,
    BPF_ALU | BPF_DIV | BPF_K, BPF_ALU | BPF_MOD | BPF_K, BPF_ALU | BPF_AND | BPF_K,
    BPF_ALU | BPF_OR | BPF_K,  BPF_ALU | BPF_XOR | BPF_K, BPF_ALU | BPF_LSH | BPF_K,
    BPF_ALU | BPF_RSH | BPF_K, BPF_ALU | BPF_ADD | BPF_X, BPF_ALU | BPF_SUB | BPF_X,
    BPF_ALU | BPF_MUL | BPF_X, BPF_ALU | BPF_DIV | BPF_X, BPF_ALU | BPF_MOD | BPF_X,
    BPF_ALU | BPF_AND | BPF_X, BPF_ALU | BPF_OR | BPF_X,  BPF_ALU | BPF_XOR | BPF_X,
    BPF_ALU | BPF_LSH | BPF_X, BPF_ALU | BPF_RSH | BPF_X, BPF_ALU | BPF_NEG,
    BPF_JMP | BPF_JA,          BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGT | BPF_K,
    BPF_JMP | BPF_JGE | BPF_K, BPF_JMP | BPF_JSET | BPF_K, BPF_JMP | BPF_JEQ | BPF_X,
    BPF_JMP | BPF_JGT | BPF_X, BPF_JMP | BPF_JGE | BPF_X,  BPF_JMP | BPF_JSET | BPF_X,
    BPF_RET | BPF_K,           BPF_RET | BPF_A,           BPF_MISC | BPF_TAX,
    BPF_MISC | BPF_TXA,
};

std::vector<sock_filter> construct(const uint8_t* d, size_t n_bytes) {
  const size_t n = std::min<size_t>(n_bytes / 4, 200) + 1;
  std::vector<sock_filter> prog(n);
  for (size_t i = 0; i + 1 < n; ++i) {
    const uint8_t* b = d + 4 * i;
    sock_filter& f = prog[i];
    f.code = kOps[b[0] % std::size(kOps)];
    const size_t left = n - 1 - i;  // instructions after this one
    f.jt = static_cast<uint8_t>(b[1] % std::min<size_t>(left, 256));
    f.jf = static_cast<uint8_t>(b[2] % std::min<size_t>(left, 256));
    const uint32_t raw = b[3];
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_MEM) f.k = raw % 16;
        else if (BPF_MODE(f.code) == BPF_IMM) f.k = raw * 0x01010101u;
        else f.k = raw < 0xf0 ? raw % 128 : raw * 0x10101u;  // mostly inside the prefix, some far
        break;
      case BPF_ST:
      case BPF_STX: f.k = raw % 16; break;
      case BPF_ALU: f.k = (BPF_OP(f.code) == BPF_LSH || BPF_OP(f.code) == BPF_RSH) ? raw % 40 : raw; break;
      case BPF_JMP: f.k = BPF_OP(f.code) == BPF_JA ? raw % left : raw; break;
      case BPF_RET: f.k = raw & 1 ? 262144 : 0; break;
      default: f.k = raw;
    }
  }
  prog[n - 1] = sock_filter{static_cast<uint16_t>(BPF_RET | BPF_K), 0, 0, n_bytes % 2 ? 262144u : 0u};
  return prog;
}

// ---- loading ---------------------------------------------------------------------------
// Returns the program fd, or -1 after g_no_root was set. Aborts (via fail) on a verifier refusal.
int load_direct(const std::vector<struct bpf_insn>& body, const std::string& what) {
  std::vector<struct bpf_insn> prog;
  prog.reserve(body.size() + 2);
  struct bpf_insn call {};
  call.code = BPF_JMP | BPF_CALL;
  call.src_reg = BPF_PSEUDO_CALL;
  call.imm = 1;
  struct bpf_insn exit_insn {};
  exit_insn.code = BPF_JMP | BPF_EXIT;
  prog.push_back(call);
  prog.push_back(exit_insn);
  prog.insert(prog.end(), body.begin(), body.end());
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ehp_fuzz", "GPL", prog.data(), prog.size(), nullptr);
  if (fd >= 0) return fd;
  const int e = errno;
  if (e == EPERM || e == EACCES) {
    std::fprintf(stderr, "%s: bpf_prog_load: %s; not root? checking translation only\n", kT, std::strerror(e));
    g_no_root = true;
    return -1;
  }
  // Load again with the verifier log to say why.
  static std::vector<char> log(16u << 20);
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = static_cast<__u32>(log.size()),
              .log_buf = log.data());
  log[0] = '\0';
  fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "ehp_fuzz", "GPL", prog.data(), prog.size(), &opts);
  if (fd >= 0) {  // refused once, accepted on retry: transient (e.g. ENOMEM); not a finding
    std::fprintf(stderr, "%s: first load failed with %s, retry succeeded\n", kT, std::strerror(e));
    return fd;
  }
  std::string tail(log.data());
  if (tail.size() > 3000) tail = "..." + tail.substr(tail.size() - 3000);
  fail(kT, "verifier refused the translation of " + what + " (" + std::strerror(e) + "):\n" + tail);
}

void load_via_install(const std::vector<struct bpf_insn>& body, const std::string& what) {
  struct filter_test* skel = filter_test__open();
  if (!skel) fail(kT, "filter_test__open failed");
  std::string err;
  if (!ehp::filter::install(skel->progs.ehp_filter_test, body, &err)) {
    filter_test__destroy(skel);
    fail(kT, "install() refused a translation of " + what + ": " + err);
  }
  const int rc = filter_test__load(skel);
  filter_test__destroy(skel);
  if (rc != 0) fail(kT, "install()+load refused the translation of " + what + ": " + std::to_string(rc) + " " +
                            ehp::filter::last_install_error());
}

// Kernel verdict vs libpcap on one packet (>= 14 bytes: BPF_PROG_TEST_RUN wants an L2 header).
bool compare_verdict(int fd, const std::vector<sock_filter>& prog, const uint8_t* d, size_t n, const std::string& what) {
  std::vector<uint8_t> pkt(d, d + std::min<size_t>(n, 256));
  if (pkt.size() < 14) pkt.resize(14, 0);
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt.data(), .data_size_in = static_cast<__u32>(pkt.size()),
              .repeat = 1);
  // BPF_PROG_TEST_RUN refuses some frames itself (EINVAL, e.g. an IPv4 ethertype with no room
  // for the IP header); those say nothing about the filter: skip them.
  if (bpf_prog_test_run_opts(fd, &o) != 0) {
    if (errno == EINVAL) return false;
    fail(kT, std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
  }
  const bool kernel = o.retval != 0;
  const bool want = ehp::filter::test::pcap_accepts(prog, pkt.data(), static_cast<uint32_t>(pkt.size()));
  if (kernel != want)
    fail(kT, "kernel verdict " + std::to_string(o.retval) + " != libpcap " + std::to_string(want) + " for " + what +
                 " on packet " + ehp::fuzz::hex(pkt.data(), pkt.size()));
  return true;
}

// Every jump lands inside the program, computed without wrap-around.
bool forward_only(const std::vector<sock_filter>& prog) {
  for (size_t i = 0; i < prog.size(); ++i) {
    const sock_filter& f = prog[i];
    if (BPF_CLASS(f.code) != BPF_JMP) continue;
    const uint64_t next = i + 1;
    if (BPF_OP(f.code) == BPF_JA ? next + f.k >= prog.size()
                                 : next + std::max(f.jt, f.jf) >= prog.size())
      return false;
  }
  return true;
}

// True when no path reads a scratch word M[k] before storing it (the kernel's cBPF checker,
// check_load_and_stores, refuses such programs). libpcap's interpreter leaves M[] uninitialised,
// so its verdict for them is stack garbage and cannot serve as the oracle. Needs forward_only.
bool mem_defined_before_use(const std::vector<sock_filter>& prog) {
  const size_t n = prog.size();
  std::vector<uint32_t> known(n, 0xffff);  // words stored on every path into i (meet = AND)
  known[0] = 0;
  for (size_t i = 0; i < n; ++i) {
    const sock_filter& f = prog[i];
    uint32_t m = known[i];
    const uint16_t cls = BPF_CLASS(f.code);
    if ((cls == BPF_LD || cls == BPF_LDX) && BPF_MODE(f.code) == BPF_MEM) {
      if (f.k >= 16 || !(m & (1u << f.k))) return false;
    } else if (cls == BPF_ST || cls == BPF_STX) {
      if (f.k >= 16) return false;
      m |= 1u << f.k;
    }
    if (cls == BPF_RET) continue;
    if (cls == BPF_JMP) {
      if (BPF_OP(f.code) == BPF_JA) {
        known[i + 1 + f.k] &= m;
      } else {
        known[i + 1 + f.jt] &= m;
        known[i + 1 + f.jf] &= m;
      }
    } else if (i + 1 < n) {
      known[i + 1] &= m;
    }
  }
  return true;
}

std::string describe(const std::vector<sock_filter>& prog) {
  std::string s = std::to_string(prog.size()) + " cBPF insns {";
  char buf[48];
  for (size_t i = 0; i < prog.size() && i < 64; ++i) {
    std::snprintf(buf, sizeof buf, "{0x%x,%u,%u,0x%x},", prog[i].code, prog[i].jt, prog[i].jf, prog[i].k);
    s += buf;
  }
  return s + (prog.size() > 64 ? "...}" : "}");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  libbpf_set_print(nullptr);  // libbpf's own warnings would flood the fuzzer output
  std::atexit(print_counts);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 3;
  const uint8_t* d = data + 1;
  const size_t n = size - 1;

  std::vector<sock_filter> prog;
  std::string what, err;
  if (mode == 0) {
    if (n < 8 || n / 8 > 512) return 0;
    prog.resize(n / 8);
    std::memcpy(prog.data(), d, prog.size() * 8);
    what = "raw " + describe(prog);
  } else if (mode == 1) {
    prog = construct(d, n);
    what = "constructed " + describe(prog);
  } else {
    if (n < 1) return 0;
    const std::string expr(reinterpret_cast<const char*>(d + 1), n - 1);
    if (expr.find('\0') != std::string::npos) return 0;
    auto cbpf = ehp::filter::compile_cbpf(expr, (d[0] & 1) ? 12 : 1, 262144, &err);
    if (!cbpf) {
      if (err.empty()) fail(kT, "compile_cbpf refused without a reason");
      return 0;
    }
    prog = std::move(*cbpf);
    what = "expression '" + expr + "'";
  }

  err.clear();
  ++g_n.inputs;
  auto body = ehp::filter::translate(prog, &err);
  if (!body) {
    ++g_n.refused;
    if (err.empty()) fail(kT, "translate refused without an error string: " + what);
    // libpcap's own output must translate, except what the kernel's cBPF loader would refuse
    // too: `protochain` compiles to a backward `ja` (k wraps around; libpcap's bpf_validate
    // lets it through because from + k is computed mod 2^32) and libpcap then filters in
    // userspace.
    if (mode == 2 && forward_only(prog) && ehp::filter::test::pcap_validates(prog))
      fail(kT, "translate refused libpcap's own (valid) output for " + what + ": " + err);
    return 0;
  }
  if (body->empty()) fail(kT, "translate accepted with an empty body: " + what);
  ++g_n.translated;
  if (g_no_root) return 0;

  const int fd = load_direct(*body, what);
  if (fd < 0) return 0;
  ++g_n.verifier_loads;
  if (ehp::filter::test::pcap_validates(prog) && forward_only(prog) && mem_defined_before_use(prog))
    g_n.verdicts_compared += compare_verdict(fd, prog, d, n, what);
  close(fd);

  static const uint64_t install_every = env_u64("EHP_FUZZ_INSTALL_EVERY", 64);
  if (install_every && g_accepted++ % install_every == 0) load_via_install(*body, what), ++g_n.install_loads;
  return 0;
}
