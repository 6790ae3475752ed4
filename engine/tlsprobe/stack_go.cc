// SPDX-License-Identifier: BSD-2-Clause
// Go crypto/tls: an entry uprobe on crypto/tls.(*Config).writeKeyLog, which Go 1.17+ calls for
// every secret of every handshake (TLS 1.2's CLIENT_RANDOM, TLS 1.3's four traffic secrets),
// client and server, whether or not the program set a KeyLogWriter. Its arguments are the NSS
// key log line's three parts (bpf/openssl.bpf.c ehp_go_write_key_log), so no struct layout is
// read. The function is found in the runtime's function table (gobin.h), which binaries stripped
// with -ldflags "-s -w" keep. Never a uretprobe: Go moves goroutine stacks. -m text adds
// (*Conn).Write's entry and (*Conn).Read's entry and RET instructions (bpf/openssl.bpf.c).
#include <cstdio>

#include "tlsprobe/gobin.h"
#include "tlsprobe/stack.h"

namespace ehp::tlsprobe {
namespace {

constexpr const char* kKeyLogFunc = "crypto/tls.(*Config).writeKeyLog";
constexpr const char* kWriteFunc = "crypto/tls.(*Conn).Write";
constexpr const char* kReadFunc = "crypto/tls.(*Conn).Read";

class GoStack : public Stack {
 public:
  const char* name() const override { return "Go crypto/tls"; }
  std::optional<Plan> inspect(const Candidate& c) const override;
};

std::optional<Plan> GoStack::inspect(const Candidate& c) const {
  if (!c.elf) return std::nullopt;
  const ElfFile& elf = *c.elf;
  auto build = go_build(elf);
  if (!build) return std::nullopt;
  Plan plan;
  const std::string ver = build->version.empty() ? "Go, version unknown" : build->version;
  const std::string head = "Go binary " + c.lib.path + " (" + ver + "): ";
  // Go 1.17 introduced the register ABI the probe reads (amd64); older ones pass arguments on the stack.
  if (build->major != 1 || build->minor < 17) {
    plan.refusal = head + "Go older than 1.17 is not traced (arguments on the stack, before the register calling convention); not traced";
    return plan;
  }
  std::string why;
  auto vaddr = go_func_entry(elf, kKeyLogFunc, &why);
  if (!vaddr) {
    plan.refusal = head + (why.empty() ? std::string("does not contain crypto/tls (no ") + kKeyLogFunc + ")" : why) +
                   "; not traced";
    return plan;
  }
  // On the stack check's conditional jump, which the kernel emulates (gobin.h go_probe_point).
  auto off = go_probe_point(elf, *vaddr);
  if (!off) {
    plan.refusal = head + kKeyLogFunc + " is not in a loaded segment; not traced";
    return plan;
  }
  plan.layout.logged = true;
  char at[64];
  snprintf(at, sizeof at, "%s@0x%llx", kKeyLogFunc, (unsigned long long)*off);
  plan.hooks.push_back({Prog::GoKeyLog, *off, false, at});
  std::string text;
  if (c.plaintext) {
    // -m text: (*Conn).Write's entry, (*Conn).Read's entry and every RET of it.
    auto fail = [&](const std::string& what) {
      plan.refusal = head + "-m text: " + what + "; not traced";
      return plan;
    };
    std::string w;
    uint64_t read_end = 0;
    auto wr = go_func_entry(elf, kWriteFunc, &w);
    auto wo = wr ? go_probe_point(elf, *wr) : std::nullopt;
    if (!wo) return fail(w.empty() ? std::string("no ") + kWriteFunc : w);
    auto rd = go_func_entry(elf, kReadFunc, &w, &read_end);
    auto ro = rd ? go_probe_point(elf, *rd) : std::nullopt;
    if (!ro) return fail(w.empty() ? std::string("no ") + kReadFunc : w);
    auto rets = go_ret_offsets(elf, *rd, read_end, &w);
    if (!rets) return fail(std::string(kReadFunc) + ": " + w);
    plan.hooks.push_back({Prog::GoWrite, *wo, false, kWriteFunc});
    plan.hooks.push_back({Prog::GoRead, *ro, false, kReadFunc});
    for (uint64_t r : *rets) {
      char ret_at[64];
      snprintf(ret_at, sizeof ret_at, "%s RET@0x%llx", kReadFunc, (unsigned long long)r);
      plan.hooks.push_back({Prog::GoReadRet, r, false, ret_at});
    }
    text = "; -m text: " + std::string(kWriteFunc) + " entry, " + kReadFunc + " entry and its " +
           std::to_string(rets->size()) + " RET instructions";
  }
  plan.desc = c.lib.path + " (Go crypto/tls, " + ver + "; hook: " + at + ", entry only" + text + ")";
  return plan;
}

}  // namespace

std::unique_ptr<Stack> make_go_stack() { return std::make_unique<GoStack>(); }

}  // namespace ehp::tlsprobe
