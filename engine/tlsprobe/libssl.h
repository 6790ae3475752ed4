// libssl discovery, version detection, the offset table and its confirmation against the
// library actually mapped. Separate from tlsprobe.h so it is testable without BPF.
#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "abi/tls_abi.h"

namespace ehp::tlsprobe {

struct OpenSslVersion {
  int major = 0, minor = 0, patch = 0;
  std::string text;  // "OpenSSL 3.0.19 27 Jan 2026"
  std::string short_name() const;  // "OpenSSL 3.0.19"
};

// A libssl to trace. `path` is openable from this mount namespace (possibly /proc/<pid>/root/...).
struct LibSsl {
  std::string path;
  uint64_t dev = 0, ino = 0;
  std::vector<uint32_t> pids;  // processes seen mapping it (empty for the system library)
};

// The libssl.so* mapped by running processes (/proc/*/maps) plus the system libssl.so.3,
// one entry per inode.
std::vector<LibSsl> discover_libssl();

// Version from a string "OpenSSL X.Y.Z ... <date>" in the library, else in its DT_NEEDED
// libcrypto (Debian's libssl.so.3 carries none). nullopt + *err when not found.
std::optional<OpenSslVersion> detect_version(const std::string& libssl_path, std::string* err);

struct OffsetTable {
  const char* series;  // "1.1.1", "3.0", "3.1"
  bool verified;       // true only for values proven end to end on a real library
  ehp_tls_offsets off;
  uint32_t ssl_st_handshake_func_offset;  // userspace only: locates the handshake functions
};
// The table row for a version, nullptr when none.
const OffsetTable* offsets_for(const OpenSslVersion& v);
const std::vector<OffsetTable>& offset_table();

// Static check: decodes the exported accessors' x86_64 code (SSL_get_session, SSL_version,
// SSL_get_client_random, SSL_SESSION_get_master_key, SSL_SESSION_get0_cipher,
// SSL_CIPHER_get_id, SSL_in_init, SSL_get_rbio). false + *err naming the first field whose
// decoded displacement contradicts `off`. Accessors it cannot decode are listed in *undecoded.
bool check_accessors(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* err,
                     std::vector<std::string>* undecoded = nullptr);

// What the calibration handshake learns besides pass/fail.
struct Calibration {
  // in: where ssl_st keeps handshake_func (0 = do not locate the handshake functions)
  uint32_t ssl_st_handshake_func_offset = 0;
  // out: bio_st_num_offset read back the fd of a socket BIO (best effort, tuples in -m text)
  bool bio_num_ok = false;
  // out: file offsets of the functions SSL_set_connect_state / SSL_set_accept_state install as
  // handshake_func (ossl_statem_connect / ossl_statem_accept; not exported), 0 when unknown
  uint64_t connect_file_offset = 0, accept_file_offset = 0;
};

// Dynamic check: dlopen()s that libssl and runs TLS 1.2 and TLS 1.3 (AES-128-GCM, AES-256-GCM)
// handshakes over a BIO pair with a keylog callback, then reads the client SSL's memory at
// `off` exactly as the BPF program does and compares keylog_lines() of that with the callback's
// lines. false + *err on any difference or when the handshake cannot run.
bool calibrate(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* err,
               Calibration* cal = nullptr);

// Both of the above; on success *how says what confirmed the offsets.
bool confirm_offsets(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* how,
                     std::string* err, Calibration* cal = nullptr);

// ELF virtual address -> file offset (what uprobes attach by), nullopt when not in a PT_LOAD.
std::optional<uint64_t> vaddr_to_file_offset(const std::string& path, uint64_t vaddr);

// Where to put an entry probe (and its return probe) for a function whose probe reads only its
// first argument (rdi): past leading instructions that touch neither rdi, rsp nor memory
// (endbr64, `xor r32,r32` / `mov $imm32,r32` of eax/ecx/edx/esi) when they end at an
// instruction the kernel emulates (jmp rel8/rel32, push reg). The kernel single-steps any
// other probed instruction out of line, a #DB trap: on this VM 9.6 us per hit against 0.65 us
// at a jmp (docs/performance.md). At the returned point rsp still holds the return address,
// so a uretprobe works there too. Returns func_file_offset unchanged when nothing matches.
uint64_t emulated_probe_point(std::span<const uint8_t> code, uint64_t func_file_offset);
uint64_t emulated_probe_point(const std::string& path, uint64_t func_file_offset);

// Symbols the probes attach to that the library exports (others are skipped).
std::vector<std::string> exported_symbols(const std::string& path, const std::vector<std::string>& wanted);

}  // namespace ehp::tlsprobe
