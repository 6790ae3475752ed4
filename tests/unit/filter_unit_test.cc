// SPDX-License-Identifier: BSD-2-Clause
// Pure tests of engine/filter (no privileges): compile errors are one clear line, the
// translator refuses what it cannot turn into verifier-safe code, its output has the shape the
// load-time patch relies on (self-contained, ends in exit, forward jumps in range), and -- run
// by a userspace eBPF interpreter -- gives libpcap's verdicts. filter_bpf_test repeats the
// differential in the kernel.
#include <gtest/gtest.h>

#include "filter/filter.h"
#include "filter_ebpf_interp.h"
#include "filter_exprs.h"
#include "filter_frames.h"
#include "filter_pcap_oracle.h"

namespace {

using ehp::filter::compile_cbpf;
using ehp::filter::translate;
using Cbpf = std::vector<struct sock_filter>;

sock_filter S(uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) { return sock_filter{code, jt, jf, k}; }

TEST(FilterCompile, InvalidSyntaxIsOneLine) {
  std::string err;
  EXPECT_FALSE(compile_cbpf("tcp prt 80", 1, 262144, &err));
  EXPECT_EQ(err, "invalid filter 'tcp prt 80': syntax error");
  EXPECT_FALSE(compile_cbpf("host 999.1.1.1", 1, 262144, &err));
  EXPECT_EQ(err.rfind("invalid filter 'host 999.1.1.1': ", 0), 0u) << err;
  EXPECT_FALSE(compile_cbpf("tcp and\nudp port", 1, 262144, &err));
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_FALSE(compile_cbpf("ip[0] / 0 > 1", 1, 262144, &err));
  EXPECT_EQ(err, "invalid filter 'ip[0] / 0 > 1': division by zero");
  EXPECT_FALSE(compile_cbpf("tcp", 100000, 262144, &err));
  EXPECT_EQ(err.rfind("invalid filter 'tcp': ", 0), 0u) << err;
}

TEST(FilterCompile, EmptyMatchesEverythingAndLinktypesDiffer) {
  std::string err;
  auto all = compile_cbpf("", 1, 262144, &err);
  ASSERT_TRUE(all) << err;
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->at(0).code, BPF_RET | BPF_K);
  EXPECT_NE(all->at(0).k, 0u);
  // "ip" on Ethernet checks the ethertype at offset 12; on raw IP (DLT_RAW or LINKTYPE_RAW) the
  // version nibble at offset 0.
  auto eth = compile_cbpf("ip", 1, 262144, &err);
  auto raw = compile_cbpf("ip", 12, 262144, &err);
  auto raw101 = compile_cbpf("ip", ehp::filter::kLinktypeRaw, 262144, &err);
  ASSERT_TRUE(eth && raw && raw101) << err;
  EXPECT_EQ(eth->at(0).k, 12u);
  EXPECT_EQ(raw->size(), raw101->size());
  EXPECT_NE(eth->at(0).k, raw->at(0).k);
}

TEST(FilterTranslate, RefusesWhatItCannotHandle) {
  const std::vector<std::pair<std::string, Cbpf>> bad = {
      {"empty program", {}},
      {"jump out of range", {S(BPF_JMP | BPF_JA, 5), S(BPF_RET | BPF_K, 1)}},
      {"jump out of range", {S(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 9), S(BPF_RET | BPF_K, 1)}},
      {"falls off the end", {S(BPF_LD | BPF_IMM, 1)}},
      {"scratch memory index", {S(BPF_ST, 16), S(BPF_RET | BPF_K, 1)}},
      {"scratch memory index", {S(BPF_LD | BPF_W | BPF_MEM, 99), S(BPF_RET | BPF_K, 1)}},
      {"unsupported return", {S(BPF_RET | 0x08, 0)}},
      {"unsupported load", {S(BPF_LDX | BPF_W | BPF_ABS, 0), S(BPF_RET | BPF_K, 1)}},
      {"unsupported ALU", {S(BPF_ALU | 0xf0 | BPF_K, 1), S(BPF_RET | BPF_K, 1)}},
      {"unsupported jump", {S(BPF_JMP | 0x70 | BPF_K, 1), S(BPF_RET | BPF_K, 1)}},
      {"unsupported misc", {S(BPF_MISC | 0x20, 0), S(BPF_RET | BPF_K, 1)}},
      {"opcode above 8 bits (libpcap aborts on it)", {S(0x6600, 1), S(BPF_RET | BPF_K, 1)}},
      {"return with stray bits", {S(BPF_RET | BPF_K | 0x20, 1)}},
      {"neg with X bit", {S(BPF_ALU | BPF_NEG | BPF_X, 0), S(BPF_RET | BPF_K, 1)}},
  };
  for (const auto& [why, prog] : bad) {
    std::string err;
    EXPECT_FALSE(translate(prog, &err)) << why;
    EXPECT_EQ(err.rfind("cannot translate filter: ", 0), 0u) << err;
  }
  Cbpf huge(BPF_MAXINSNS + 1, S(BPF_RET | BPF_K, 1));
  std::string err;
  EXPECT_FALSE(translate(huge, &err));
  EXPECT_NE(err.find("4096"), std::string::npos) << err;
}

// libpcap's protochain emits a loop (a backward JA); eBPF could loop, but the verifier would
// have to prove it terminates. Refused with a message that says so.
TEST(FilterTranslate, RefusesProtochainLoop) {
  std::string err;
  auto cbpf = compile_cbpf("ip6 protochain 6", 1, 262144, &err);
  ASSERT_TRUE(cbpf) << err;
  EXPECT_FALSE(translate(*cbpf, &err));
  EXPECT_NE(err.find("protochain"), std::string::npos) << err;
}

// Unreachable instructions are not emitted at all (the verifier refuses unreachable code), even
// if they would be refused: libpcap's optimiser can leave dead blocks.
TEST(FilterTranslate, SkipsUnreachableCode) {
  std::string err;
  auto body = translate(Cbpf{S(BPF_RET | BPF_K, 1), S(BPF_MISC | 0x20, 0)}, &err);
  ASSERT_TRUE(body) << err;
  EXPECT_EQ(body->back().code, BPF_JMP | BPF_EXIT);
}

TEST(FilterTranslate, RealFiltersAreSelfContainedForwardOnly) {
  for (const char* expr : {"", "tcp port 443", "vlan and ip6 and udp", "tcp[0:2] + tcp[2:2] > 10000",
                           "host 10.0.0.1 and (port 80 or port 443) and len > 100"}) {
    std::string err;
    auto cbpf = compile_cbpf(expr, 1, 262144, &err);
    ASSERT_TRUE(cbpf) << err;
    auto body = translate(*cbpf, &err);
    ASSERT_TRUE(body) << expr << ": " << err;
    ASSERT_FALSE(body->empty());
    EXPECT_EQ(body->back().code, BPF_JMP | BPF_EXIT) << expr;
    for (size_t i = 0; i < body->size(); ++i) {
      const auto& in = (*body)[i];
      const uint8_t cls = BPF_CLASS(in.code);
      EXPECT_FALSE(in.code == (BPF_JMP | BPF_CALL) && in.src_reg == BPF_PSEUDO_CALL) << expr;
      EXPECT_NE(in.code, BPF_LD | BPF_DW | BPF_IMM) << expr;
      if ((cls == BPF_JMP || cls == BPF_JMP32) && BPF_OP(in.code) != BPF_CALL && BPF_OP(in.code) != BPF_EXIT) {
        EXPECT_GE(in.off, 0) << expr << " insn " << i;
        EXPECT_LT(i + 1 + in.off, body->size()) << expr << " insn " << i;
      }
    }
  }
}

// Userspace differential: translated filter on the interpreter vs pcap_offline_filter. Same
// expressions as the kernel test, more frames (cheap here), plus frames shorter than 14 bytes
// and untagged IP frames cut inside the IP header, which BPF_PROG_TEST_RUN refuses to run.
TEST(FilterTranslate, InterpretedTranslationMatchesLibpcap) {
  using namespace ehp::filter::test;
  auto check = [](const std::vector<std::string>& exprs, int dlt, const std::vector<Frame>& frames) {
    size_t mismatches = 0;
    for (const auto& expr : exprs) {
      std::string err;
      auto cbpf = compile_cbpf(expr, dlt, 262144, &err);
      ASSERT_TRUE(cbpf) << err;
      auto body = translate(*cbpf, &err);
      ASSERT_TRUE(body) << expr << ": " << err;
      for (size_t i = 0; i < frames.size(); ++i) {
        const auto& f = frames[i].bytes;
        auto got = run_ebpf(*body, f, &err);
        ASSERT_TRUE(got) << "'" << expr << "': " << err;
        const bool want = pcap_accepts(*cbpf, f.data(), static_cast<uint32_t>(f.size()));
        if ((*got != 0) != want && ++mismatches <= 10)
          ADD_FAILURE() << "'" << expr << "' frame #" << i << " (" << frames[i].kind << ", " << f.size()
                        << " bytes): translated " << *got << ", libpcap " << want;
      }
    }
    EXPECT_EQ(mismatches, 0u);
  };
  FrameMaker maker(0x5eed1234);
  std::vector<Frame> eth, raw;
  for (int i = 0; i < 4000; ++i) eth.push_back(maker.ethernet());
  for (int i = 0; i < 400; ++i) {  // runts and IP headers cut short
    Frame f = maker.ethernet();
    f.bytes.resize(i % 40 < 14 ? i % 40 : 14 + (i % 26));
    f.kind += "/cut";
    eth.push_back(std::move(f));
  }
  for (int i = 0; i < 2000; ++i) raw.push_back(maker.raw_ip());
  check(kEthernetExprs, 1, eth);
  check(kRawExprs, 12, raw);
}

// A program shared by an Ethernet and a raw-IP interface: the dispatcher runs the right
// linktype's translation per skb->ifindex and rejects unknown interfaces.
TEST(FilterTranslate, DispatchByIfindex) {
  using namespace ehp::filter::test;
  std::string err;
  auto eth = compile_cbpf("tcp port 443 or icmp", 1, 262144, &err);
  auto raw = compile_cbpf("tcp port 443 or icmp", 12, 262144, &err);
  ASSERT_TRUE(eth && raw) << err;
  auto eth_body = translate(*eth, &err), raw_body = translate(*raw, &err);
  ASSERT_TRUE(eth_body && raw_body) << err;
  const std::vector<ehp::filter::InterfaceFilter> table = {{3, *eth_body}, {7, *raw_body}};
  auto both = ehp::filter::dispatch_by_ifindex(table, &err);
  ASSERT_TRUE(both) << err;
  FrameMaker maker(0x5eed4321);
  size_t hits = 0;
  for (int i = 0; i < 2000; ++i) {
    const Frame e = maker.ethernet(), r = maker.raw_ip();
    const auto n_e = static_cast<uint32_t>(e.bytes.size()), n_r = static_cast<uint32_t>(r.bytes.size());
    ASSERT_EQ(*run_ebpf(*both, e.bytes, &err, 3) != 0, pcap_accepts(*eth, e.bytes.data(), n_e)) << e.kind;
    ASSERT_EQ(*run_ebpf(*both, r.bytes, &err, 7) != 0, pcap_accepts(*raw, r.bytes.data(), n_r)) << r.kind;
    ASSERT_EQ(*run_ebpf(*both, e.bytes, &err, 9), 0u);
    hits += pcap_accepts(*eth, e.bytes.data(), n_e) + pcap_accepts(*raw, r.bytes.data(), n_r);
  }
  EXPECT_GT(hits, 100u);
  EXPECT_FALSE(ehp::filter::dispatch_by_ifindex(std::vector<ehp::filter::InterfaceFilter>{}, &err));
  const std::vector<ehp::filter::InterfaceFilter> dup = {{3, *eth_body}, {3, *raw_body}};
  EXPECT_FALSE(ehp::filter::dispatch_by_ifindex(dup, &err));
  EXPECT_NE(err.find("twice"), std::string::npos) << err;
}

}  // namespace
