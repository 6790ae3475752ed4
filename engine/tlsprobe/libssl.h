// SPDX-License-Identifier: BSD-2-Clause
// libssl discovery, version detection, the offset table and its confirmation against the
// library actually mapped, all by reading the file. Separate from tlsprobe.h so it is testable
// without BPF.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "abi/tls_abi.h"
#include "tlsprobe/elf.h"

namespace ehp::tlsprobe {

struct OpenSslVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // "OpenSSL 3.0.19 27 Jan 2026"
  std::string short_name() const;  // "OpenSSL 3.0.19"
};

// A libssl (or a binary with OpenSSL linked in) to trace. Nothing of it is ever executed by
// ecapture-hp: everything below reads the file (docs/security.md).
struct LibSsl {
  std::string path;         // as shown: the mapped path, under /proc/PID/root in another mount ns
  std::string root = "/";   // the root its DT_NEEDED libcrypto is looked up in
  std::string dir;          // its directory inside `root`
  UntrustedFile file;       // the inode that is read and traced (attached via file.fd_path())
  std::vector<uint32_t> pids;  // processes seen mapping it (empty for the system library)
  // Already read over `file` (an executable that scan_process checked), else nullptr: a large
  // executable (node: 10 MB of symbol tables) is then parsed once per look, not twice.
  std::shared_ptr<const ElfFile> elf;
};

// The libssl.so* mapped by running processes (/proc/*/maps, each file opened exactly as mapped
// through /proc/PID/map_files, else inside /proc/PID/root without following links) plus the
// system libssl.so.3, one entry per inode. Candidates that cannot be opened safely are
// appended to *refused, one line each.
std::vector<LibSsl> discover_libssl(std::vector<std::string>* refused);

// What looks at processes keep between processes: executables already read (by st_dev/st_ino),
// paths already refused and, for late looks (skip_decided), the mapped files already decided,
// by the device and inode /proc/PID/maps names them, which are then not opened again.
struct ProcessScan {
  std::map<std::pair<uint64_t, uint64_t>, bool> exe_verdict;
  size_t max_executables = 2048;  // start-up: the others are not inspected (said once)
  bool exe_cap_said = false;
  std::set<std::string> refused_paths;
  bool skip_decided = false;
  std::set<std::pair<uint64_t, uint64_t>> decided;
  size_t max_decided = 65536;  // a cache: cleared when full
};
// `elf`: the file already read (an executable), else nullptr.
using OnCandidate = std::function<void(UntrustedFile file, const std::string& shown, const std::string& root,
                                       const std::string& dir, std::shared_ptr<const ElfFile> elf)>;
// One process's share of discover_libssl: each libssl.so* it maps and its executable when that
// carries a TLS stack (OpenSSL's secret logger, Go crypto/tls), opened as discover_libssl says.
// Refusals go to *refused, once per path.
void scan_process(uint32_t pid, ProcessScan& st, std::vector<std::string>* refused, const OnCandidate& on);
// The library the user named with --libssl: a regular file within the size cap.
std::optional<LibSsl> named_libssl(const std::string& path, std::string* err);

// Version from a string "OpenSSL X.Y.Z ... <date>" in the library's data segments, else in its
// DT_NEEDED libcrypto (Debian's libssl.so.3 carries none). nullopt + *err when not found.
std::optional<OpenSslVersion> detect_version(const LibSsl& lib, const ElfFile& elf, std::string* err);
// OpenSSL linked into the file, whatever its symbols: "OpenSSL X.Y.Z" from its version text in
// the file's own segments, else "OpenSSL, version unknown" when the file carries the source
// file names OpenSSL's error calls compile in ("ssl/ssl_lib.c"; a static link often drops the
// version text). nullopt: no sign of OpenSSL.
std::optional<std::string> linked_openssl(const ElfFile& elf);

struct OffsetTable {
  const char* series;  // "3.0"
  ehp_tls_offsets off;
  uint32_t ssl_st_handshake_func_offset;  // locates the handshake functions (SSL_set_connect_state)
};
// The table row for a version, nullptr when none.
const OffsetTable* offsets_for(const OpenSslVersion& v);
const std::vector<OffsetTable>& offset_table();

// Static check: decodes the exported accessors' x86_64 code (SSL_get_session, SSL_version,
// SSL_get_client_random, SSL_SESSION_get_master_key, SSL_SESSION_get0_cipher,
// SSL_CIPHER_get_id, SSL_in_init, SSL_get_rbio). false + *err naming the first field whose
// decoded displacement contradicts `off`. Accessors it cannot decode are listed in *undecoded.
bool check_accessors(const ElfFile& elf, const ehp_tls_offsets& off, std::string* err,
                     std::vector<std::string>* undecoded = nullptr);

// File offsets of the functions SSL_set_connect_state / SSL_set_accept_state install as
// ssl_st.handshake_func (ossl_statem_connect / ossl_statem_accept; not exported), read from
// the file: the store to handshake_func in SSL_set_{connect,accept}_state names the SSL_METHOD
// slot, TLS_{client,server}_method's `lea` names the method table, and the slot's relocation
// (or file bytes) names the function. nullopt + *why when any step does not decode.
struct HandshakeFns {
  uint64_t connect_file_offset = 0, accept_file_offset = 0;
};
std::optional<HandshakeFns> locate_handshake_functions(const ElfFile& elf, uint32_t handshake_func_offset,
                                                       std::string* why);

// The library's own secret logger, (conn, label, secret, len) in rdi/rsi/rdx/rcx: OpenSSL's
// ssl_log_secret, exported by builds that link OpenSSL into an executable (Node.js) and called
// for every secret of every version since 1.1.1 whether or not a key log callback is set; in a
// stripped BoringSSL, the one function that calls SSL_CTX's key log callback (its field read
// from SSL_CTX_get_keylog_callback, its start from .eh_frame_hdr). The client random is not an argument:
// it sits in the connection where the exported SSL_get_client_random reads it, `lea D(%rdi)`
// (3.x; in 3.5 after the SSL_CONNECTION type check) or through the s3 pointer,
// `mov S(%rdi),%rdi; lea D(%rdi)` (1.1.1). The same displacements must appear in
// ssl_log_secret's own code, which passes that client random on. nullopt + *why otherwise.
struct SecretLogger {
  uint64_t file_offset = 0;      // ssl_log_secret's entry (the probe reads its four arguments)
  uint32_t cr_ptr_off = 0;       // 0, or the s3 pointer's offset in the connection (1.1.1)
  uint32_t cr_off = 0;           // client random: conn + cr_off, or *(conn + cr_ptr_off) + cr_off
};
// `version`: the library's OpenSSL version when known (3.x keeps the client random inside the
// connection: no pointer hop, whatever the accessor's other branches load).
std::optional<SecretLogger> locate_secret_logger(const ElfFile& elf, std::string* why,
                                                 const OpenSslVersion* version = nullptr);

// check_accessors with every accessor required to decode: on success *how says what confirmed
// the offsets; false + *err otherwise.
bool confirm_offsets(const ElfFile& elf, const ehp_tls_offsets& off, std::string* how, std::string* err);

// Where to put an entry probe (and its return probe) for a function whose probe reads only its
// first argument (rdi): past leading instructions that touch neither rdi, rsp nor memory
// (endbr64, `xor r32,r32` / `mov $imm32,r32` of eax/ecx/edx/esi) when they end at an
// instruction the kernel emulates (jmp rel8/rel32, push reg). The kernel single-steps any
// other probed instruction out of line, a #DB trap: on this VM 9.6 us per hit against 0.65 us
// at a jmp (docs/performance.md). At the returned point rsp still holds the return address,
// so a uretprobe works there too. Returns func_file_offset unchanged when nothing matches.
uint64_t emulated_probe_point(std::span<const uint8_t> code, uint64_t func_file_offset);
uint64_t emulated_probe_point(const ElfFile& elf, uint64_t func_file_offset);

// File offset of an exported function (what a uprobe attaches by), nullopt when not exported.
std::optional<uint64_t> symbol_file_offset(const ElfFile& elf, const std::string& sym);

}  // namespace ehp::tlsprobe
