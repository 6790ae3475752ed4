// SPDX-License-Identifier: BSD-2-Clause
// A shared OpenSSL 3.0 libssl (the distribution's, proven end to end): the SSL struct is read
// when a handshake ends, at offsets from the table row of its version, confirmed by decoding the
// exported accessors; the handshake functions come from the method table (libssl.h). Asked
// last: it refuses, with the reason, whatever no other stack took (OpenSSL before 1.1.1, a
// libssl whose version text is missing and which has no key log callback).
#include <cstdio>

#include "tlsprobe/stack.h"

namespace ehp::tlsprobe {

const ExportedHook kPlaintextHooks[8] = {{Prog::Read, "SSL_read", false, true},
                                         {Prog::ReadRet, "SSL_read", true, true},
                                         {Prog::Write, "SSL_write", false, true},
                                         {Prog::WriteRet, "SSL_write", true, true},
                                         {Prog::ReadEx, "SSL_read_ex", false, false},
                                         {Prog::ReadExRet, "SSL_read_ex", true, false},
                                         {Prog::WriteEx, "SSL_write_ex", false, false},
                                         {Prog::WriteExRet, "SSL_write_ex", true, false}};

const char* add_exported_hooks(const ElfFile& elf, std::span<const ExportedHook> want, std::vector<Hook>* hooks) {
  for (const auto& w : want) {
    auto o = symbol_file_offset(elf, w.sym);
    if (!o) {
      if (w.needed) return w.sym;
      continue;
    }
    hooks->push_back({w.prog, *o, w.ret, w.sym});
  }
  return nullptr;
}

namespace {

class OpenSslStack : public Stack {
 public:
  const char* name() const override { return "OpenSSL (shared libssl)"; }
  std::optional<Plan> inspect(const Candidate& c) const override;
};

std::optional<Plan> OpenSslStack::inspect(const Candidate& c) const {
  Plan plan;
  const std::string& path = c.lib.path;
  const OffsetTable* row = c.version ? offsets_for(*c.version) : nullptr;
  std::string how, e;
  if (c.elf && !c.version && !c.elf->exports("SSL_new")) {
    // OpenSSL linked into an executable whose symbols are gone (strip): nothing to hook by.
    if (auto v = linked_openssl(*c.elf)) {
      plan.refusal = "TLS binary " + path + " (" + *v + ", linked in): stripped: neither ssl_log_secret nor " +
                     "SSL_CTX_get_keylog_callback and SSL_get_client_random is in its .dynsym or .symtab; not traced";
      return plan;
    }
  }
  if (!c.elf || !c.version) {
    plan.refusal = "libssl " + path + ": version unknown (" + c.version_error + "); struct offsets cannot be confirmed, not traced";
    return plan;
  }
  const ElfFile& elf = *c.elf;
  const std::string ver = c.version->short_name();
  if (!row) {
    plan.refusal = "libssl " + path + " (" + ver + "): no offset table for this version, not traced";
    return plan;
  }
  if (!confirm_offsets(elf, row->off, &how, &e)) {
    plan.refusal = "libssl " + path + " (" + ver + "): struct offsets (" + row->series + " table) not confirmed: " + e +
                   "; not traced";
    return plan;
  }
  plan.layout.off = row->off;

  std::string why;
  auto fns = c.force_io_fallback ? std::nullopt : locate_handshake_functions(elf, row->ssl_st_handshake_func_offset, &why);
  char hooks[160];
  auto hex = [](uint64_t v) {
    char b[24];
    snprintf(b, sizeof b, "offset 0x%llx", (unsigned long long)v);
    return std::string(b);
  };
  if (fns) {
    // Probe points past instructions the kernel would single-step (emulated_probe_point).
    const uint64_t conn = emulated_probe_point(elf, fns->connect_file_offset);
    const uint64_t acc = emulated_probe_point(elf, fns->accept_file_offset);
    snprintf(hooks, sizeof hooks, "hooks: handshake_func connect@0x%llx accept@0x%llx", (unsigned long long)conn,
             (unsigned long long)acc);
    for (uint64_t o : {conn, acc}) {
      plan.hooks.push_back({Prog::Handshake, o, false, hex(o)});
      plan.hooks.push_back({Prog::HandshakeRet, o, true, hex(o)});
    }
  } else {
    snprintf(hooks, sizeof hooks, "hooks: SSL_do_handshake + per-call SSL_read/SSL_write fallback");
  }
  // Exported hook targets, from the file we read (libbpf never parses the library itself).
  std::vector<ExportedHook> want;
  if (!fns)
    want.insert(want.end(), {{Prog::Handshake, "SSL_do_handshake", false, true},
                             {Prog::HandshakeRet, "SSL_do_handshake", true, true},
                             {Prog::GetError, "SSL_get_error", false, true}});
  if (c.plaintext) {
    want.insert(want.end(), std::begin(kPlaintextHooks), std::end(kPlaintextHooks));
  } else if (!fns) {
    // Entry hooks only: the per-call fallback reads the struct at SSL_read/SSL_write.
    for (const auto& h : kPlaintextHooks)
      if (!h.ret) want.push_back(h);
  }
  if (const char* missing = add_exported_hooks(elf, want, &plan.hooks)) {
    plan.refusal = "libssl " + path + " (" + ver + "): does not export " + missing + "; not traced";
    return plan;
  }
  plan.desc = path + " (" + ver + ", " + "offsets confirmed: " + how + "; " +
              hooks + ")";
  return plan;
}

}  // namespace

std::unique_ptr<Stack> make_openssl_stack() { return std::make_unique<OpenSslStack>(); }

}  // namespace ehp::tlsprobe
