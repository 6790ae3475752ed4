// SPDX-License-Identifier: BSD-2-Clause
// Go crypto/tls: an entry uprobe on crypto/tls.(*Config).writeKeyLog, which Go 1.18+ calls for
// every secret of every handshake (TLS 1.2's CLIENT_RANDOM, TLS 1.3's four traffic secrets),
// client and server, whether or not the program set a KeyLogWriter. Its arguments are the NSS
// key log line's three parts (bpf/openssl.bpf.c ehp_go_write_key_log), so no struct layout is
// read. The function is found in the runtime's function table (gobin.h), which binaries stripped
// with -ldflags "-s -w" keep. Never a uretprobe: Go moves goroutine stacks.
#include <cstdio>

#include "tlsprobe/gobin.h"
#include "tlsprobe/stack.h"

namespace ehp::tlsprobe {
namespace {

constexpr const char* kKeyLogFunc = "crypto/tls.(*Config).writeKeyLog";

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
  // Go 1.17 introduced the register ABI the probe reads; the function table it parses is 1.18's.
  if (build->major != 1 || build->minor < 18) {
    plan.refusal = head + "Go older than 1.18 is not traced (stack-based calling convention or an older function table); not traced";
    return plan;
  }
  std::string why;
  auto vaddr = go_func_entry(elf, kKeyLogFunc, &why);
  if (!vaddr) {
    plan.refusal = head + (why.empty() ? std::string("does not contain crypto/tls (no ") + kKeyLogFunc + ")" : why) +
                   "; not traced";
    return plan;
  }
  auto off = elf.file_offset(*vaddr);
  if (!off) {
    plan.refusal = head + kKeyLogFunc + " is not in a loaded segment; not traced";
    return plan;
  }
  plan.layout.logged = true;
  char at[64];
  snprintf(at, sizeof at, "%s@0x%llx", kKeyLogFunc, (unsigned long long)*off);
  plan.hooks.push_back({Prog::GoKeyLog, *off, false, at});
  plan.desc = c.lib.path + " (Go crypto/tls, " + ver + "; hook: " + at + ", entry only" +
              (c.plaintext ? std::string("; keys only, no plaintext hooks") : std::string()) + ")";
  return plan;
}

}  // namespace

std::unique_ptr<Stack> make_go_stack() { return std::make_unique<GoStack>(); }

}  // namespace ehp::tlsprobe
