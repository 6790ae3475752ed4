// SPDX-License-Identifier: BSD-2-Clause
// One TLS implementation the probe can trace, behind one interface; each in its own file:
//   stack_openssl.cc  a shared OpenSSL libssl: the SSL struct read when a handshake ends (layout
//                     from the offset table, confirmed by decoding the accessors)
//   stack_logger.cc   the library's own secret logger: OpenSSL linked into an executable
//                     (ssl_log_secret, 1.1.1-3.5) and BoringSSL (found by reading the library)
//   stack_go.cc       Go crypto/tls: (*Config).writeKeyLog, found in the binary's pclntab
// TlsProbe (tlsprobe.cc) asks them in order for each candidate binary, groups the binaries
// whose Layout is equal into one BPF object (bpf/openssl.bpf.c) and attaches the hooks.
// A stack only reads the binary: nothing of it ever runs in ecapture-hp (docs/security.md).
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "abi/tls_abi.h"
#include "tlsprobe/libssl.h"

namespace ehp::tlsprobe {

// The programs of bpf/openssl.bpf.c a hook can use.
enum class Prog {
  Handshake, HandshakeRet, GetError, Read, ReadRet, ReadEx, ReadExRet, Write, WriteRet, WriteEx, WriteExRet, LogSecret,
  GoKeyLog, GoWrite, GoRead, GoReadRet
};

struct Hook {
  Prog prog;
  uint64_t file_offset;
  bool ret;          // a uretprobe
  std::string what;  // for messages: the symbol, or "offset 0x..."
  uint64_t cookie = 0;  // per-binary values the program reads from its BPF cookie, above bit 16
                        // (bits 0-15 name the binary): logger_cookie()
};

// The LogSecret hook's cookie bits: where its binary keeps the client random, conn + cr_off or
// *(conn + cr_ptr_off) + cr_off (each < 0x10000; bpf/openssl.bpf.c ehp_ssl_log_secret).
inline uint64_t logger_cookie(uint32_t cr_ptr_off, uint32_t cr_off) {
  return (uint64_t(cr_ptr_off & 0xFFFF) << 32) | (uint64_t(cr_off & 0xFFFF) << 16);
}

// What the BPF object needs in its rodata to read a binary's secrets. Every binary whose
// secrets arrive logged (OpenSSL's or BoringSSL's secret logger, Go's writeKeyLog) has the same
// layout: what differs between them rides in the hooks' cookies, so one object serves them all
// and a binary found after the start only needs its uprobes attached.
struct Layout {
  ehp_tls_offsets off{};  // struct-read stacks
  bool logged = false;    // secrets come one by one from the library's own logger
  bool operator==(const Layout& o) const { return memcmp(&off, &o.off, sizeof off) == 0 && logged == o.logged; }
};

// How one binary is traced, or why it is not.
struct Plan {
  std::string refusal;  // non-empty: not traced; one line saying why
  std::string desc;     // "PATH (OpenSSL 3.0.19, ...; hooks: ...)"
  Layout layout;
  std::vector<Hook> hooks;
};

// A binary as the stacks see it: read once by TlsProbe.
struct Candidate {
  const LibSsl& lib;
  const ElfFile* elf;                     // nullptr when it is not a readable x86_64 ELF file
  std::optional<OpenSslVersion> version;  // OpenSSL's version text, when it carries one
  std::string version_error;              // why there is none
  bool plaintext = false;                 // -m text: the SSL_read/SSL_write hooks too
  bool force_io_fallback = false;         // tests/bench: no handshake_func hooks
};

class Stack {
 public:
  virtual ~Stack() = default;
  virtual const char* name() const = 0;
  // nullopt: not this stack's binary (the next stack is asked); else how to trace it, or why not.
  virtual std::optional<Plan> inspect(const Candidate& c) const = 0;
};

// An exported function to hook: appended to *hooks at its file offset (from the file read).
struct ExportedHook {
  Prog prog;
  const char* sym;
  bool ret, needed;
};
// nullptr when every needed symbol was found, else the first needed one that is not exported
// (optional ones that are missing are left out).
const char* add_exported_hooks(const ElfFile& elf, std::span<const ExportedHook> want, std::vector<Hook>* hooks);
// -m text: SSL_read/SSL_write (+ _ex where exported), entry and return of the reads.
extern const ExportedHook kPlaintextHooks[8];

std::unique_ptr<Stack> make_go_stack();       // stack_go.cc
std::unique_ptr<Stack> make_logger_stack();   // stack_logger.cc
std::unique_ptr<Stack> make_openssl_stack();  // stack_openssl.cc: takes every binary it is asked about

}  // namespace ehp::tlsprobe
