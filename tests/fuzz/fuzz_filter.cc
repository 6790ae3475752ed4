// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target for engine/filter (tests/fuzz/fuzz.cmake builds it with EHP_FUZZ=ON), or by hand:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I engine -I tests/bpf \
//     tests/fuzz/fuzz_filter.cc engine/filter/{compile,translate,install,prepared}.cc \
//     tests/bpf/filter_{ebpf_interp,pcap_oracle}.cc -lpcap -lbpf -o fuzz_filter
//
// Input byte 0 picks the mode:
//   even: the rest is a filter expression. compile_cbpf must either fail with one line starting
//         "invalid filter '" or produce cBPF that translate() always accepts (libpcap's own
//         output must never be refused).
//   odd:  the rest is raw cBPF (8 bytes per instruction). translate() may refuse; if it accepts,
//         the body must be self-contained and forward-only, and when libpcap's bpf_validate
//         accepts the program too (and it never reads scratch memory before storing it), the
//         interpreted translation must give pcap_offline_filter's verdict on a few packets
//         derived from the input.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "filter/filter.h"
#include "filter_ebpf_interp.h"
#include "filter_pcap_oracle.h"

namespace {

// libpcap's M[] starts uninitialised (and bpf_validate does not check it), so its verdict is
// garbage for a program that may read a scratch slot before storing it; ours reads 0. Returns
// true when every reachable LD/LDX MEM reads a slot stored on every path to it.
bool mem_reads_initialised(const std::vector<struct sock_filter>& prog) {
  const size_t n = prog.size();
  std::vector<uint32_t> in(n, 0xffff);  // slots definitely stored on entry (intersection)
  std::vector<bool> reached(n, false);
  in[0] = 0;
  reached[0] = true;
  for (size_t pc = 0; pc < n; ++pc) {
    if (!reached[pc]) continue;
    const auto& f = prog[pc];
    const uint16_t cls = BPF_CLASS(f.code);
    if ((cls == BPF_LD || cls == BPF_LDX) && BPF_MODE(f.code) == BPF_MEM && f.k < 16 && !(in[pc] >> f.k & 1))
      return false;
    uint32_t out = in[pc];
    if ((f.code == BPF_ST || f.code == BPF_STX) && f.k < 16) out |= 1u << f.k;
    auto flow = [&](uint64_t t) {
      if (t >= n) return;
      in[t] = reached[t] ? (in[t] & out) : out;
      reached[t] = true;
    };
    if (cls == BPF_RET) continue;
    if (cls == BPF_JMP) {
      if (BPF_OP(f.code) == BPF_JA) flow(uint64_t{pc} + 1 + f.k);
      else { flow(pc + 1 + f.jt); flow(pc + 1 + f.jf); }
    } else {
      flow(pc + 1);
    }
  }
  return true;
}

[[noreturn]] void die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_filter: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  data += 1;
  size -= 1;
  std::string err;
  if ((mode & 1) == 0) {
    const std::string expr(reinterpret_cast<const char*>(data), size);
    const int dlt = (mode & 2) ? 12 : 1;
    auto cbpf = ehp::filter::compile_cbpf(expr, dlt, 262144, &err);
    if (!cbpf) {
      if (err.rfind("invalid filter '", 0) != 0 || err.find('\n') != std::string::npos) die("bad error text", err);
      return 0;
    }
    if (!ehp::filter::translate(*cbpf, &err)) {
      // `protochain` compiles to a backward jump that libpcap's validator lets through (the
      // offset wraps); the translator refuses it, as the kernel's own cBPF checker does, naming
      // it as such (engine/filter/translate.cc) or, when the wrapped offset lands in range of
      // nothing, as a jump out of range.
      if (err.find("backward jump (a loop, e.g. from 'protochain')") != std::string::npos ||
          err.find("jump out of range") != std::string::npos)
        return 0;
      die("libpcap output refused", expr + ": " + err);
    }
    return 0;
  }

  const size_t n = size / 8;
  if (n == 0 || n > 512) return 0;
  std::vector<struct sock_filter> prog(n);
  std::memcpy(prog.data(), data, n * 8);
  auto body = ehp::filter::translate(prog, &err);
  if (!body) {
    if (err.rfind("cannot translate filter: ", 0) != 0) die("bad refusal text", err);
    return 0;
  }
  if (body->empty() || body->back().code != (BPF_JMP | BPF_EXIT)) die("body does not end in exit", "");
  for (size_t i = 0; i < body->size(); ++i) {
    const auto& in = (*body)[i];
    const uint8_t cls = BPF_CLASS(in.code), op = BPF_OP(in.code);
    if ((cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_CALL && op != BPF_EXIT &&
        (in.off < 0 || i + 1 + in.off >= body->size()))
      die("jump out of range", std::to_string(i));
    if (cls == BPF_JMP && op == BPF_CALL && in.src_reg != 0) die("BPF-to-BPF call in body", std::to_string(i));
  }
  // libpcap's interpreter traps on some programs its validator refuses (division by constant 0,
  // jumps past the end); compare verdicts only when it accepts the program.
  if (!ehp::filter::test::pcap_validates(prog) || !mem_reads_initialised(prog)) return 0;
  std::vector<uint8_t> pkt(data, data + size);
  for (size_t len : {size_t{0}, size_t{14}, size / 2, size}) {
    pkt.resize(len);
    auto got = ehp::filter::test::run_ebpf(*body, pkt, &err);
    if (!got) die("interpreter", err);
    const bool want = ehp::filter::test::pcap_accepts(prog, pkt.data(), static_cast<uint32_t>(len));
    if ((*got != 0) != want) die("verdict differs from libpcap", "len " + std::to_string(len));
  }
  return 0;
}
