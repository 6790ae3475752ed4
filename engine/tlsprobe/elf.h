// SPDX-License-Identifier: BSD-2-Clause
// Reading binaries that a local user may control: bounded, never executed.
//
// Every library or executable ecapture-hp inspects may be hostile (docs/security.md). This is
// the only way the probe reads one:
//   - UntrustedFile opens it without blocking (O_NONBLOCK: a FIFO cannot stall us), accepts a
//     regular file only (nothing from /dev), caps its size, and keeps the fd: the uprobes are
//     attached through /proc/self/fd/N, so the inode read is the inode traced, whatever happens
//     to the path in between;
//   - ElfFile reads only what it needs with pread (headers, .dynsym/.dynstr, relocations, a few
//     code bytes), each part under a size cap, and scans data segments in fixed-size chunks:
//     memory stays bounded whatever sizes the file claims.
#pragma once
#include <elf.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ehp::tlsprobe {

inline constexpr uint64_t kMaxBinaryBytes = 4ull << 30;      // a larger "library" is refused
inline constexpr uint64_t kMaxTableBytes = 32ull << 20;      // .dynsym, .dynstr, each
inline constexpr uint64_t kMaxScanBytes = 192ull << 20;      // version-string scan, in total
inline constexpr size_t kMaxSymbols = 1u << 16;               // SSL_*/TLS_* symbols kept
// Past this many bytes of .dynsym (~11k symbols: node exports 90k, 10 MB with their names), the
// symbols the probe looks up are found through .gnu.hash instead of a full read.
inline constexpr uint64_t kHashLookupAbove = 256u << 10;
// Every exported name the probe looks up (a lookup of another name finds nothing in a binary
// read through .gnu.hash: add it here).
inline constexpr const char* kLookedUpSymbols[] = {
    "ssl_log_secret", "SSL_new", "SSL_CTX_get_keylog_callback", "SSL_get_client_random", "SSL_CIPHER_get_id",
    "SSL_SESSION_get0_cipher", "SSL_SESSION_get_master_key", "SSL_do_handshake", "SSL_get_error", "SSL_get_rbio",
    "SSL_get_session", "SSL_in_init", "SSL_read", "SSL_read_ex", "SSL_set_accept_state", "SSL_set_connect_state",
    "SSL_version", "SSL_write", "SSL_write_ex", "TLS_client_method", "TLS_server_method"};

class UntrustedFile {
 public:
  UntrustedFile() = default;
  ~UntrustedFile();
  UntrustedFile(UntrustedFile&& o) noexcept;
  UntrustedFile& operator=(UntrustedFile&& o) noexcept;
  UntrustedFile(const UntrustedFile&) = delete;
  UntrustedFile& operator=(const UntrustedFile&) = delete;

  // A path the user named (--libssl): symlinks are followed, as for any command-line path.
  static std::optional<UntrustedFile> open_named(const std::string& path, std::string* err);
  // A path found by a scan, resolved inside `root` ("/" or "/proc/PID/root"): no component may
  // be a symbolic link or a /proc magic link, and ".." cannot leave that root (openat2
  // RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS).
  static std::optional<UntrustedFile> open_in_root(const std::string& root, const std::string& path,
                                                   std::string* err);
  // Exactly the file a process has mapped at [start, end): /proc/PID/map_files/START-END.
  static std::optional<UntrustedFile> open_mapped(uint32_t pid, const std::string& range, std::string* err);

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }
  uint64_t dev() const { return dev_; }
  uint64_t ino() const { return ino_; }
  // "/proc/self/fd/N": how the kernel (uprobe attach) reaches this very inode.
  std::string fd_path() const;

 private:
  static std::optional<UntrustedFile> adopt(int fd, const std::string& shown, std::string* err);
  int fd_ = -1;
  uint64_t size_ = 0, dev_ = 0, ino_ = 0;
};

// Minimal x86_64 ELF64 view over an UntrustedFile (which must outlive it).
class ElfFile {
 public:
  // `shown` names the file in messages. false + *err (one phrase) when it is not a readable
  // x86_64 ELF64 file within the caps.
  bool open(const UntrustedFile& f, const std::string& shown, std::string* err);

  // name -> st_value of the exported symbols the probe looks up: SSL_*, TLS_*, ssl_log_secret.
  const std::map<std::string, uint64_t>& dynsym() const { return dynsym_; }
  bool exports_bssl() const { return bssl_; }  // BoringSSL's C++ namespace is exported
  const std::vector<std::string>& needed() const { return needed_; }  // DT_NEEDED libcrypto.so* (<= 8)
  bool exports(const std::string& sym) const { return dynsym_.count(sym) != 0; }

  // ELF virtual address -> file offset (what uprobes attach by); nullopt when in no PT_LOAD.
  std::optional<uint64_t> file_offset(uint64_t vaddr) const;
  // True when vaddr lies in an executable PT_LOAD.
  bool executable(uint64_t vaddr) const;
  // Up to n (<= 4096) bytes from a file offset / a virtual address / an exported symbol.
  std::string read_at(uint64_t file_off, size_t n) const;
  std::string read_vaddr(uint64_t vaddr, size_t n) const;
  std::string code(const std::string& sym, size_t n) const;
  // The 64-bit pointer stored at vaddr once loaded: the addend of its R_X86_64_RELATIVE
  // relocation in a PIC object, else the bytes in the file. nullopt when neither is there.
  std::optional<uint64_t> pointer_at(uint64_t vaddr) const;
  // Calls fn on the loaded segments' bytes, data segments first, in chunks that overlap by
  // `overlap` bytes, until fn returns true (found) or kMaxScanBytes were read.
  bool scan_data(size_t overlap, const std::function<bool(std::string_view)>& fn) const;
  // Calls fn(vaddr of the chunk, bytes) over the executable segments, in 1 MiB chunks that
  // overlap by 16 bytes, within kMaxScanBytes, until fn returns true.
  bool scan_code(const std::function<bool(uint64_t, std::string_view)>& fn) const;
  // Virtual address of .eh_frame_hdr (PT_GNU_EH_FRAME), nullopt when absent.
  std::optional<uint64_t> eh_frame_hdr() const { return eh_frame_hdr_; }

  // The few sections looked up by name (.gopclntab, .go.buildinfo; gobin.h), when the file has
  // them within its size.
  struct Section {
    uint64_t addr, offset, size;
  };
  std::optional<Section> section(std::string_view name) const;
  bool has_sections() const { return has_sections_; }  // the file has section headers

  // A static executable keeps OpenSSL's functions only in .symtab (not exported, not loaded):
  // the file has one. symtab_mentions() looks for "\0name\0" in its string table (a bounded
  // streaming read: cheap for an executable that is not a TLS candidate); load_symtab() adds the
  // .symtab symbols the probe looks up (SSL_*, TLS_*, ssl_log_secret) to dynsym() where an
  // exported one of the same name is not there. Both bounded like .dynsym.
  bool has_symtab() const { return symtab_.has_value(); }
  bool symtab_mentions(std::string_view name) const;
  bool load_symtab();
  // A loaded segment (PT_LOAD) as it is in the file.
  struct Segment {
    uint64_t vaddr, filesz, offset;
    bool exec;
  };
  std::vector<Segment> segments() const;
  // n bytes at file offset `off` into out; false when they are not all in the file. The caller
  // bounds n (gobin.cc reads in fixed-size windows).
  bool read_exact(uint64_t off, void* out, size_t n) const;

 private:
  struct Load {
    uint64_t vaddr, filesz, offset;
    bool exec;
  };
  struct Rela {
    uint64_t offset, size;
  };
  int fd_ = -1;
  uint64_t size_ = 0;
  bool hashed_ = false;  // symbols found through .gnu.hash (kLookedUpSymbols only)
  bool hash_lookups(const Elf64_Shdr& gnu_hash, const Elf64_Shdr& dynsym, const Elf64_Shdr& dynstr);
  std::vector<Load> loads_;
  std::vector<Rela> relas_;
  std::map<std::string, uint64_t> dynsym_;
  std::vector<std::string> needed_;
  std::optional<uint64_t> eh_frame_hdr_;
  std::map<std::string, Section, std::less<>> sections_;
  bool bssl_ = false;
  bool has_sections_ = false;
  struct SymtabAt {
    uint64_t offset, size, str_offset, str_size;
  };
  std::optional<SymtabAt> symtab_;
  bool symtab_loaded_ = false;
};

}  // namespace ehp::tlsprobe
