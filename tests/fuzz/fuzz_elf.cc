// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: the readers of binaries a local user may control (engine/tlsprobe: elf.h,
// libssl.h, gobin.h), which ecapture-hp runs as root on every library and executable it finds.
//
// Input: a byte string taken as a whole file (an ELF library or executable). Every reader runs
// on it: the symbol tables (.dynsym, .gnu.hash lookups, .symtab), OpenSSL's accessors and method
// tables, the secret-logger locator (.eh_frame_hdr, call-site scans), Go's build info and
// function table, the RET-instruction decoder and the probe-point choosers. Properties:
//   - no read outside what was read from the file (ASan), no crash, no hang;
//   - every file offset handed back for a uprobe lies inside the file;
//   - the RET offsets of a Go function lie inside that function (at most 64 KiB), in order.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "tlsprobe/elf.h"
#include "tlsprobe/gobin.h"
#include "tlsprobe/libssl.h"

namespace {
using ehp::fuzz::fail;
using namespace ehp::tlsprobe;
constexpr const char* kT = "fuzz_elf";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ehp::fuzz::input_file(kT, data, size);
  if (fd < 0) return 0;
  std::string err;
  auto f = UntrustedFile::open_named("/proc/self/fd/" + std::to_string(fd), &err);
  close(fd);
  if (!f) return 0;
  ElfFile elf;
  if (!elf.open(*f, "input", &err)) return 0;
  auto in_file = [&](uint64_t off, const char* what) {
    if (off >= size) fail(kT, std::string(what) + " file offset " + std::to_string(off) + " past the file");
  };
  (void)elf.code("SSL_CTX_get_keylog_callback", 16);
  (void)elf.symtab_mentions("ssl_log_secret");
  (void)elf.load_symtab();
  for (const char* s : kLookedUpSymbols)
    if (auto o = symbol_file_offset(elf, s)) in_file(*o, s);

  std::string why;
  for (int major : {0, 1, 3}) {
    OpenSslVersion v;
    v.major = major;
    auto lg = locate_secret_logger(elf, &why, major ? &v : nullptr);
    if (lg) in_file(lg->file_offset, "secret logger");
  }
  std::vector<std::string> undecoded;
  (void)check_accessors(elf, offset_table()[0].off, &why, &undecoded);
  if (auto hs = locate_handshake_functions(elf, offset_table()[0].ssl_st_handshake_func_offset, &why)) {
    in_file(hs->connect_file_offset, "connect");
    in_file(hs->accept_file_offset, "accept");
    in_file(emulated_probe_point(elf, hs->connect_file_offset), "connect probe point");
  }
  (void)linked_openssl(elf);

  (void)go_build(elf);
  uint64_t end = 0;
  if (auto entry = go_func_entry(elf, "crypto/tls.(*Config).writeKeyLog", &why, &end)) {
    if (auto fo = elf.file_offset(*entry)) {
      in_file(*fo, "Go function");
      const auto p = go_probe_point(elf, *entry);
      if (!p || *p < *fo || *p > *fo + 32) fail(kT, "Go probe point missing or outside the function's first 32 bytes");
      if (auto rets = go_ret_offsets(elf, *entry, end, &why)) {
        uint64_t last = 0;
        for (uint64_t r : *rets) {
          if (r < *fo || r >= *fo + (64 << 10) || r >= *fo + (end - *entry) || r < last)
            fail(kT, "a RET offset outside its function or out of order");
          in_file(r, "RET");
          last = r;
        }
      }
    }
  }
  return 0;
}
