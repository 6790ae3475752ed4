// SPDX-License-Identifier: BSD-2-Clause
// The library's own secret logger, one secret per call with its label (bpf/openssl.bpf.c
// ehp_ssl_log_secret; tls/assembler.h puts a session together): OpenSSL linked into an
// executable, which exports ssl_log_secret (any version since 1.1.1: Node.js), and BoringSSL,
// which has no OpenSSL version and whose logger is found by reading the library
// (libssl.h: locate_secret_logger).
#include <cstdio>

#include "tlsprobe/stack.h"

namespace ehp::tlsprobe {
namespace {

class LoggerStack : public Stack {
 public:
  const char* name() const override { return "secret logger (OpenSSL linked in, BoringSSL)"; }
  std::optional<Plan> inspect(const Candidate& c) const override;
};

std::optional<Plan> LoggerStack::inspect(const Candidate& c) const {
  if (!c.elf) return std::nullopt;
  const ElfFile& elf = *c.elf;
  // A shared libssl of the one proven struct layout (OpenSSL 3.0, offset table) is read by the
  // struct stack; every other OpenSSL since 1.1.1 (SSL_CTX_get_keylog_callback) is traced at
  // its secret logger, found by reading the file.
  const bool struct_layout = c.version && offsets_for(*c.version);
  if (!elf.exports("ssl_log_secret") && (struct_layout || !elf.exports("SSL_CTX_get_keylog_callback")))
    return std::nullopt;
  Plan plan;
  // BoringSSL's C++ API (namespace bssl) shows in its exported symbols.
  const std::string name = c.version ? c.version->short_name() : elf.exports_bssl() ? "BoringSSL" : "OpenSSL, version unknown";
  std::string why;
  auto lg = locate_secret_logger(elf, &why, c.version ? &*c.version : nullptr);
  if (!lg) {
    plan.refusal = "TLS library " + c.lib.path + " (" + name + "): " + why + "; not traced";
    return plan;
  }
  plan.layout.logged = true;
  char at[32];
  snprintf(at, sizeof at, "offset 0x%llx", (unsigned long long)lg->file_offset);
  plan.hooks.push_back({Prog::LogSecret, lg->file_offset, false, at, logger_cookie(lg->cr_ptr_off, lg->cr_off)});
  if (c.plaintext) {
    // -m text: the plaintext at SSL_read/SSL_write, exported by both kinds (Node.js exports
    // OpenSSL's API for addons). No struct is read: the connection's socket is not known.
    if (const char* missing = add_exported_hooks(elf, kPlaintextHooks, &plan.hooks)) {
      plan.refusal = "TLS library " + c.lib.path + " (" + name + "): -m text needs " + missing +
                     ", which it does not export; not traced";
      return plan;
    }
  }
  char desc[160];
  if (lg->cr_ptr_off)
    snprintf(desc, sizeof desc, "hook: secret logger@0x%llx, client random at *(conn+0x%x)+0x%x",
             (unsigned long long)lg->file_offset, lg->cr_ptr_off, lg->cr_off);
  else
    snprintf(desc, sizeof desc, "hook: secret logger@0x%llx, client random at conn+0x%x",
             (unsigned long long)lg->file_offset, lg->cr_off);
  const bool linked_in = elf.exports("ssl_log_secret") && c.lib.path.find("libssl.so") == std::string::npos;
  plan.desc = c.lib.path + " (" + name + (linked_in ? ", linked in" : "") + "; the library's own secret logger; " + desc + ")";
  return plan;
}

}  // namespace

std::unique_ptr<Stack> make_logger_stack() { return std::make_unique<LoggerStack>(); }

}  // namespace ehp::tlsprobe
