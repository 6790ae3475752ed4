// SPDX-License-Identifier: BSD-2-Clause
// libssl discovery, version detection, offset table, accessor decoding.
#include "tlsprobe/libssl.h"
#include "tlsprobe/gobin.h"

#include <dirent.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace ehp::tlsprobe {

std::string OpenSslVersion::short_name() const {
  std::string out = "OpenSSL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  // The letter or build suffix the text carries ("1.1.1w", "1.1.1v+quic"): read from the
  // untrusted file, so only a few plain characters of it.
  const size_t at = text.find(out);
  if (at != 0) return out;
  for (size_t i = out.size(); i < text.size() && i < out.size() + 12; ++i) {
    const char ch = text[i];
    if (!isalnum(uint8_t(ch)) && ch != '+' && ch != '-' && ch != '.' && ch != '_') break;
    out += ch;
  }
  return out;
}

namespace {

// A memory operand [base + disp] of a mov/lea/movzx found in the code.
struct MemOp {
  int base;  // 0..15 (rax=0 ... rdi=7)
  int64_t disp;
  size_t at;  // byte position
  int op;     // 0x8B load, 0x89 store, 0x8D lea, 0x0F movzx
  int reg;    // ModRM reg (with REX.R): the register loaded or stored
  size_t len;
  bool wide;  // REX.W: a 64-bit operand (a pointer load)
};

// Tiny x86_64 decoder for the shapes compilers emit in struct accessors:
//   [REX] 8B/8D /r  (mov/lea r, [base+disp])   [REX] 0F B6/B7 /r (movzx)   [REX] 89 /r (store)
// with ModRM mod 00 (no disp, rm != 5), 01 (disp8), 10 (disp32); a SIB byte only without an
// index ([rsp/r12 + disp]).
std::optional<MemOp> decode_at(std::string_view c, size_t i) {
  size_t p = i;
  int rex = 0;
  if (p < c.size() && (uint8_t(c[p]) & 0xF0) == 0x40) rex = uint8_t(c[p++]);
  if (p >= c.size()) return std::nullopt;
  uint8_t op = c[p++];
  if (op == 0x0F) {
    if (p >= c.size()) return std::nullopt;
    uint8_t op2 = c[p++];
    if (op2 != 0xB6 && op2 != 0xB7) return std::nullopt;
  } else if (op != 0x8B && op != 0x8D && op != 0x89) {
    return std::nullopt;
  }
  if (p >= c.size()) return std::nullopt;
  uint8_t modrm = c[p++];
  int mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3 || (mod == 0 && rm == 5)) return std::nullopt;
  if (rm == 4) {  // SIB: only the no-index form [base + disp] (rsp/r12 as base need it)
    if (p >= c.size()) return std::nullopt;
    const uint8_t sib = c[p++];
    if (((sib >> 3) & 7) != 4 || (rex & 2) || (sib & 7) == 5) return std::nullopt;
    rm = sib & 7;
  }
  int64_t disp = 0;
  if (mod == 1) {
    if (p + 1 > c.size()) return std::nullopt;
    disp = int8_t(c[p]);
    p += 1;
  } else if (mod == 2) {
    if (p + 4 > c.size()) return std::nullopt;
    int32_t d;
    memcpy(&d, c.data() + p, 4);
    disp = d;
    p += 4;
  }
  return MemOp{rm | ((rex & 1) << 3), disp, i, op, ((modrm >> 3) & 7) | ((rex & 4) << 1), p - i, (rex & 8) != 0};
}

std::string skip_endbr(const std::string& c) {
  static const char kEndbr64[] = "\xf3\x0f\x1e\xfa";
  return c.compare(0, 4, kEndbr64, 4) == 0 ? c.substr(4) : c;
}

constexpr int kRdi = 7, kRax = 0;

// Single-instruction accessor: the first instruction must read [rdi + disp].
std::optional<int64_t> first_load_from_rdi(const std::string& code) {
  auto m = decode_at(skip_endbr(code), 0);
  if (!m || m->op == 0x89 || m->base != kRdi) return std::nullopt;
  return m->disp;
}

// Every displacement off rdi (or rax/rsi copies of it) within the first bytes of a function.
std::set<int64_t> displacements(const std::string& code) {
  std::set<int64_t> out;
  std::string c = skip_endbr(code);
  for (size_t i = 0; i < c.size(); ++i) {
    auto m = decode_at(c, i);
    if (m && m->op != 0x89 && (m->base == kRdi || m->base == kRax)) out.insert(m->disp);
  }
  return out;
}

std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

// Looks for "OpenSSL X.Y.Z<letters> ... <4-digit year>" (OPENSSL_VERSION_TEXT).
std::optional<OpenSslVersion> find_version_text(std::string_view bytes) {
  static constexpr std::string_view kTag = "OpenSSL ";
  for (size_t p = bytes.find(kTag); p != std::string_view::npos; p = bytes.find(kTag, p + 1)) {
    size_t end = bytes.substr(p, 81).find('\0');  // never past the 80 bytes a version text takes
    if (end == std::string_view::npos) continue;
    end += p;
    std::string s(bytes.substr(p, end - p));
    OpenSslVersion v;
    int n = 0;
    if (sscanf(s.c_str(), "OpenSSL %d.%d.%d%n", &v.major, &v.minor, &v.patch, &n) != 3) continue;
    // Require a year after the number so "OpenSSL 1.0.2 compat" style strings are not taken.
    bool year = false;
    for (size_t i = n; i + 4 <= s.size(); ++i)
      if (isdigit(uint8_t(s[i])) && isdigit(uint8_t(s[i + 1])) && isdigit(uint8_t(s[i + 2])) &&
          isdigit(uint8_t(s[i + 3])) && (s[i] == '1' || s[i] == '2'))
        year = true;
    if (!year) continue;
    v.text = s;
    return v;
  }
  return std::nullopt;
}

std::string dirname_of(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? "." : s == 0 ? "/" : p.substr(0, s);
}

// The version string scan reads chunks that overlap by more than the longest version text.
constexpr size_t kVersionOverlap = 96;

std::optional<OpenSslVersion> scan_version(const ElfFile& elf) {
  std::optional<OpenSslVersion> v;
  elf.scan_data(kVersionOverlap, [&](std::string_view chunk) { return bool(v = find_version_text(chunk)); });
  return v;
}

}  // namespace

std::optional<std::string> linked_openssl(const ElfFile& elf) {
  if (auto v = scan_version(elf)) return v->short_name();
  static constexpr std::string_view kMark = "ssl/ssl_lib.c";
  bool found = false;
  elf.scan_data(kMark.size(), [&](std::string_view chunk) { return found = chunk.find(kMark) != std::string_view::npos; });
  if (found) return std::string("OpenSSL, version unknown");
  return std::nullopt;
}

std::optional<OpenSslVersion> detect_version(const LibSsl& lib, const ElfFile& elf, std::string* err) {
  if (!elf.exports("SSL_new")) {
    *err = "does not export SSL_new: not a libssl";
    return std::nullopt;
  }
  if (auto v = scan_version(elf)) return v;
  // OpenSSL 3 keeps OPENSSL_VERSION_TEXT in libcrypto only. First the libcrypto a process that
  // maps this libssl really mapped (the exact inode, wherever its loader found it, links
  // resolved by the kernel); then next to the libssl, then in the multiarch directories, all
  // inside the library's own root and without following links. A libcrypto next to it that
  // cannot be read that way (a symbolic link) stops the search: the system's libcrypto would
  // name another version (an /opt build of 3.4 is not the system's 3.0), and a version unknown
  // is traced anyway (stack_logger.cc).
  auto version_of = [&](std::optional<UntrustedFile> f, const std::string& n) -> std::optional<OpenSslVersion> {
    ElfFile c;
    std::string e;
    if (!f || !c.open(*f, n, &e)) return std::nullopt;
    return scan_version(c);
  };
  for (auto& n : elf.needed()) {
    if (n.rfind("libcrypto.so", 0) != 0 || n.find('/') != std::string::npos) continue;
    for (size_t i = 0; i < lib.pids.size() && i < 4; ++i) {
      std::ifstream maps("/proc/" + std::to_string(lib.pids[i]) + "/maps");
      std::string line;
      for (int k = 0; k < 4096 && std::getline(maps, line); ++k) {
        const size_t slash = line.rfind('/');
        if (slash == std::string::npos || line.compare(slash + 1, std::string::npos, n) != 0) continue;
        std::string e;
        if (auto v = version_of(UntrustedFile::open_mapped(lib.pids[i], line.substr(0, line.find(' ')), &e), n)) return v;
        break;
      }
    }
    const std::vector<std::string> dirs = {lib.dir, "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"};
    for (auto& d : dirs) {
      std::string e;
      auto f = UntrustedFile::open_in_root(lib.root, d + "/" + n, &e);
      if (!f && d == lib.dir && e.find("symbolic link") != std::string::npos) {
        *err = "its " + n + " is a symbolic link, not followed: version not read";
        return std::nullopt;
      }
      if (auto v = version_of(std::move(f), n)) return v;
    }
  }
  *err = "no \"OpenSSL X.Y.Z\" version string in it or its libcrypto";
  return std::nullopt;
}

// The OpenSSL 3.0 ssl_st layout (3.0.19, proven end to end).
constexpr ehp_tls_offsets kLayout30 = {
    .ssl_st_version_offset = 0x0,
    .ssl_st_rbio_offset = 0x10,
    .ssl_st_statem_in_init_offset = 0x64,  // SSL_in_init: mov eax,[rdi+0x64] (3.0.19)
    .ssl_st_s3_ptr_offset = 0,
    .ssl_st_s3_client_random_offset = 0x160,
    .ssl_st_session_offset = 0x918,
    .ssl_st_handshake_secret_offset = 0x584,
    .ssl_st_handshake_traffic_hash_offset = 0x704,
    .ssl_st_client_app_traffic_secret_offset = 0x744,
    .ssl_st_server_app_traffic_secret_offset = 0x784,
    .ssl_st_exporter_master_secret_offset = 0x7c4,
    .ssl_session_st_master_key_offset = 0x50,
    .ssl_session_st_cipher_offset = 0x2f8,
    .ssl_cipher_st_id_offset = 0x18,
    .bio_st_num_offset = 0x38};

// One row per layout series read by the struct stack: 3.0, proven on this machine (Debian 12
// libssl3 3.0.19, read by a uprobe and compared with curl's SSLKEYLOGFILE) and confirmed on each
// library by decoding its exported accessors. Every other OpenSSL since 1.1.1 is traced at its
// own secret logger (stack_logger.cc), which needs no table: the rows this table once had for
// 1.1.1 and 3.1, from public layout data and never proven, are gone (docs/architecture.md).
const std::vector<OffsetTable>& offset_table() {
  static const std::vector<OffsetTable> t = {
      {"3.0",
       kLayout30,
       0x30},  // SSL_connect: cmp qword [rdi+0x30],0 (3.0.19)
  };
  return t;
}

const OffsetTable* offsets_for(const OpenSslVersion& v) {
  std::string series = v.major >= 3 ? std::to_string(v.major) + "." + std::to_string(v.minor)
                                    : std::to_string(v.major) + "." + std::to_string(v.minor) + "." +
                                          std::to_string(v.patch);
  for (auto& r : offset_table())
    if (series == r.series) return &r;
  return nullptr;
}

bool check_accessors(const ElfFile& elf, const ehp_tls_offsets& off, std::string* err,
                     std::vector<std::string>* undecoded) {
  struct Single {
    const char* sym;
    const char* field;
    uint32_t want;
  };
  const Single singles[] = {
      {"SSL_version", "ssl_st.version", off.ssl_st_version_offset},
      {"SSL_get_session", "ssl_st.session", off.ssl_st_session_offset},
      {"SSL_get_rbio", "ssl_st.rbio", off.ssl_st_rbio_offset},
      {"SSL_in_init", "ssl_st.statem.in_init", off.ssl_st_statem_in_init_offset},
      {"SSL_SESSION_get0_cipher", "ssl_session_st.cipher", off.ssl_session_st_cipher_offset},
      {"SSL_CIPHER_get_id", "ssl_cipher_st.id", off.ssl_cipher_st_id_offset},
  };
  for (auto& s : singles) {
    std::string code = elf.code(s.sym, 16);
    auto d = code.empty() ? std::nullopt : first_load_from_rdi(code);
    if (!d) {
      if (undecoded) undecoded->push_back(s.sym);
      continue;
    }
    if (*d != int64_t(s.want)) {
      *err = std::string(s.sym) + " reads " + s.field + " at " + hex(*d) + ", the table says " + hex(s.want);
      return false;
    }
  }
  struct Within {
    const char* sym;
    const char* field;
    uint32_t want;
  };
  const Within withins[] = {
      // 3.x: lea rsi,[rdi+0x160]; 1.1.1: the s3 pointer load, then [reg+0xb8] (not rdi-based).
      {"SSL_get_client_random", "ssl_st.s3.client_random",
       off.ssl_st_s3_ptr_offset ? off.ssl_st_s3_ptr_offset : off.ssl_st_s3_client_random_offset},
      {"SSL_SESSION_get_master_key", "ssl_session_st.master_key", off.ssl_session_st_master_key_offset},
  };
  for (auto& w : withins) {
    std::string code = elf.code(w.sym, 96);
    if (code.empty()) {
      if (undecoded) undecoded->push_back(w.sym);
      continue;
    }
    auto ds = displacements(code);
    if (ds.empty()) {
      if (undecoded) undecoded->push_back(w.sym);
      continue;
    }
    if (!ds.count(w.want)) {
      std::string seen;
      for (auto d : ds) seen += (seen.empty() ? "" : ",") + hex(d);
      *err = std::string(w.sym) + " does not touch " + w.field + " at " + hex(w.want) + " (it uses " + seen + ")";
      return false;
    }
  }
  return true;
}

bool confirm_offsets(const ElfFile& elf, const ehp_tls_offsets& off, std::string* how, std::string* err) {
  std::vector<std::string> undecoded;
  std::string e;
  if (!check_accessors(elf, off, &e, &undecoded)) {
    *err = "accessor check failed: " + e;
    return false;
  }
  // Nothing else may confirm them: the library's code is never run (docs/security.md).
  if (!undecoded.empty()) {
    *err = "accessors not decodable, offsets cannot be confirmed:";
    for (auto& u : undecoded) *err += " " + u;
    return false;
  }
  *how = "8 accessors decoded";
  return true;
}

namespace {

// The SSL_METHOD slot whose function SSL_set_{connect,accept}_state stores into
// ssl_st.handshake_func: `mov rR,[rR+slot]` right before `mov [rB+hf],rR`.
std::optional<int64_t> method_slot(const std::string& code, uint32_t hf) {
  for (size_t i = 0; i < code.size(); ++i) {
    auto st = decode_at(code, i);
    if (!st || st->op != 0x89 || st->disp != int64_t(hf) || st->base == 4) continue;
    std::optional<int64_t> slot;
    for (size_t j = i > 16 ? i - 16 : 0; j < i; ++j) {
      auto ld = decode_at(code, j);
      if (ld && ld->op == 0x8B && ld->reg == st->reg && ld->base == st->reg && j + ld->len <= i) slot = ld->disp;
    }
    if (slot) return slot;
  }
  return std::nullopt;
}

// TLS_client_method / TLS_server_method: `lea rax,[rip+disp32]; ret` -> the method's vaddr.
std::optional<uint64_t> method_table(const ElfFile& elf, const char* sym) {
  auto it = elf.dynsym().find(sym);
  if (it == elf.dynsym().end()) return std::nullopt;
  std::string c = elf.read_vaddr(it->second, 16);
  size_t p = c.compare(0, 4, "\xf3\x0f\x1e\xfa", 4) == 0 ? 4 : 0;
  if (c.size() < p + 7 || uint8_t(c[p]) != 0x48 || uint8_t(c[p + 1]) != 0x8D || uint8_t(c[p + 2]) != 0x05)
    return std::nullopt;
  int32_t d;
  memcpy(&d, c.data() + p + 3, 4);
  return it->second + p + 7 + int64_t(d);
}

}  // namespace

std::optional<HandshakeFns> locate_handshake_functions(const ElfFile& elf, uint32_t hf, std::string* why) {
  HandshakeFns out;
  struct Side {
    const char* setter;
    const char* method;
    uint64_t* file_offset;
  };
  for (auto& s : {Side{"SSL_set_connect_state", "TLS_client_method", &out.connect_file_offset},
                  Side{"SSL_set_accept_state", "TLS_server_method", &out.accept_file_offset}}) {
    auto slot = method_slot(elf.code(s.setter, 96), hf);
    if (!slot || *slot < 0 || *slot > 0x400) {
      *why = std::string(s.setter) + " does not store a method slot into handshake_func at " + hex(hf);
      return std::nullopt;
    }
    auto table = method_table(elf, s.method);
    if (!table) {
      *why = std::string(s.method) + " does not decode to a method table";
      return std::nullopt;
    }
    auto fn = elf.pointer_at(*table + uint64_t(*slot));
    auto off = fn ? elf.file_offset(*fn) : std::nullopt;
    if (!fn || !elf.executable(*fn) || !off) {
      *why = std::string(s.method) + "()->slot " + hex(uint64_t(*slot)) + " is not a function in the file";
      return std::nullopt;
    }
    *s.file_offset = *off;
  }
  if (out.connect_file_offset == out.accept_file_offset) {
    *why = "the connect and accept handshake functions are the same";
    return std::nullopt;
  }
  return out;
}

namespace {

// `add $imm, %reg` (REX.W 83 /0 ib or 81 /0 id) at c[i]: (reg, imm).
std::optional<std::pair<int, int64_t>> decode_add_imm(const std::string& c, size_t i) {
  if (i + 3 > c.size()) return std::nullopt;
  const uint8_t rex = uint8_t(c[i]), op = uint8_t(c[i + 1]), modrm = uint8_t(c[i + 2]);
  if ((rex & 0xF8) != 0x48 || (op != 0x83 && op != 0x81) || (modrm & 0xF8) != 0xC0) return std::nullopt;
  const int reg = (modrm & 7) | ((rex & 1) << 3);
  if (op == 0x83) return i + 4 <= c.size() ? std::optional(std::pair{reg, int64_t(int8_t(c[i + 3]))}) : std::nullopt;
  if (i + 7 > c.size()) return std::nullopt;
  int32_t v;
  memcpy(&v, c.data() + i + 3, 4);
  return std::pair{reg, int64_t(v)};
}

// Where SSL_get_client_random finds the client random, relative to its SSL* (rdi): `lea D(%rdi)`
// (OpenSSL 3.x), or through a pointer field `mov S(%rdi),%R` then `lea D(%R)` or `add $D,%R`
// (OpenSSL 1.1.1's s->s3, BoringSSL's ssl->s3). Returns (S or 0, D).
std::optional<std::pair<int64_t, int64_t>> client_random_place(const std::string& c) {
  std::optional<std::pair<int, int64_t>> ptr;  // (register, S) of the last 64-bit load off rdi
  // OpenSSL 3.2+ reads the object's type first (`mov (%rdi),%ecx`): a connection is used as it
  // is, a QUIC object through a pointer to its inner connection. The pointer load that follows
  // is that QUIC branch, not a field of the connection: the client random is at conn + D.
  bool dispatch = false;
  for (size_t i = 0; i < c.size(); ++i) {
    if (auto m = decode_at(c, i)) {
      if (m->op == 0x8B && !m->wide && m->base == kRdi && m->disp == 0 && !ptr) dispatch = true;
      if (m->op == 0x8B && m->wide && m->base == kRdi && !dispatch) ptr = std::pair{m->reg, m->disp};
      else if (m->op == 0x8B && m->wide && m->base == kRdi && dispatch && m->reg == kRdi) continue;
      else if (m->op == 0x8D && m->base == kRdi && !(ptr && ptr->first == kRdi)) return std::pair{int64_t(0), m->disp};
      else if (m->op == 0x8D && ptr && m->base == ptr->first) return std::pair{ptr->second, m->disp};
    }
    if (auto a = decode_add_imm(c, i); a && ptr && a->first == ptr->first) return std::pair{ptr->second, a->second};
  }
  return std::nullopt;
}

// The function around `vaddr`, from .eh_frame_hdr's binary search table and the FDE it names
// (encodings checked: datarel sdata4 table, pcrel sdata4 pc_begin). nullopt when not covered.
struct FnRange {
  uint64_t start, end;
};
std::optional<FnRange> function_range(const ElfFile& elf, uint64_t vaddr) {
  const auto hdr_at = elf.eh_frame_hdr();
  if (!hdr_at) return std::nullopt;
  const std::string h = elf.read_vaddr(*hdr_at, 12);
  if (h.size() < 12 || h[0] != 1 || uint8_t(h[1]) != 0x1b || uint8_t(h[2]) != 0x03 || uint8_t(h[3]) != 0x3b)
    return std::nullopt;
  uint32_t count;
  memcpy(&count, h.data() + 8, 4);
  // Binary search over (initial_location, fde) pairs, each datarel (from the header's start).
  auto entry = [&](uint32_t k, int32_t* loc, int32_t* fde) {
    std::string e = elf.read_vaddr(*hdr_at + 12 + uint64_t(k) * 8, 8);
    if (e.size() != 8) return false;
    memcpy(loc, e.data(), 4);
    memcpy(fde, e.data() + 4, 4);
    return true;
  };
  uint32_t lo = 0, hi = count;
  int32_t loc = 0, fde = 0;
  while (hi - lo > 1) {
    const uint32_t mid = lo + (hi - lo) / 2;
    if (!entry(mid, &loc, &fde)) return std::nullopt;
    if (*hdr_at + int64_t(loc) <= vaddr) lo = mid;
    else hi = mid;
  }
  if (count == 0 || !entry(lo, &loc, &fde)) return std::nullopt;
  const uint64_t start = *hdr_at + int64_t(loc), fde_at = *hdr_at + int64_t(fde);
  // FDE: length, CIE pointer, pc_begin (pcrel sdata4: must equal `start`), pc_range.
  const std::string f = elf.read_vaddr(fde_at, 16);
  if (f.size() != 16) return std::nullopt;
  int32_t pc_begin, pc_range;
  memcpy(&pc_begin, f.data() + 8, 4);
  memcpy(&pc_range, f.data() + 12, 4);
  if (fde_at + 8 + int64_t(pc_begin) != start || pc_range <= 0 || vaddr < start || vaddr >= start + uint64_t(pc_range) ||
      !elf.executable(start))
    return std::nullopt;
  return FnRange{start, start + uint64_t(pc_range)};
}
std::optional<uint64_t> function_start(const ElfFile& elf, uint64_t vaddr) {
  auto r = function_range(elf, vaddr);
  return r ? std::optional<uint64_t>(r->start) : std::nullopt;
}

// A function's own code (at most 4 KiB), within its FDE's range.
std::string function_code(const ElfFile& elf, const FnRange& f) {
  return elf.read_vaddr(f.start, size_t(std::min<uint64_t>(f.end - f.start, 4096)));
}

// `call *%R` (FF /2, mod 11) at c[i], with its REX.B: the register called, else -1.
int indirect_call_reg(std::string_view c, size_t i) {
  size_t p = i;
  int b = 0;
  if (p < c.size() && uint8_t(c[p]) == 0x41) b = 8, ++p;
  if (p + 2 > c.size() || uint8_t(c[p]) != 0xFF || (uint8_t(c[p + 1]) & 0xF8) != 0xD0) return -1;
  return (uint8_t(c[p + 1]) & 7) | b;
}

// The functions that call the key log callback at SSL_CTX+`field`: `call *field(%reg)`
// (OpenSSL 1.1.1/3.0, BoringSSL), or `mov field(%reg),%R` with a `call *%R` within 40 bytes
// (OpenSSL 3.5). A library calls its callback in one or two places (two where the compiler
// inlined nss_keylog_int into both its callers); an unrelated indirect call through the same
// displacement of another struct can match too (3.3's QUIC packet writer): at most 8 kept,
// the caller tells them apart. Empty + *why when none, or when a crafted file has dozens.
std::vector<FnRange> keylog_callers(const ElfFile& elf, int64_t field, std::string* why) {
  std::vector<FnRange> found;
  int matches = 0;
  elf.scan_code([&](uint64_t base_vaddr, std::string_view c) {
    for (size_t i = 0; i + 6 <= c.size() && matches < 64; ++i) {
      bool hit = false;
      if (uint8_t(c[i]) == 0xFF && (uint8_t(c[i + 1]) & 0xF8) == 0x90) {
        // FF /2 mod=10: [base + disp32], through a SIB byte without index for rsp/r12
        const bool sib = (uint8_t(c[i + 1]) & 7) == 4;
        if (sib && (i + 7 > c.size() || ((uint8_t(c[i + 2]) >> 3) & 7) != 4)) continue;
        int32_t d;
        memcpy(&d, c.data() + i + (sib ? 3 : 2), 4);
        hit = d == field;
      } else if (auto m = decode_at(c, i); m && m->op == 0x8B && m->wide && m->disp == field) {
        for (size_t j = i + m->len; j < i + m->len + 40 && j + 2 <= c.size() && !hit; ++j)
          hit = indirect_call_reg(c, j) == m->reg;
      }
      if (!hit) continue;
      ++matches;
      auto fn = function_range(elf, base_vaddr + i);
      if (!fn || std::any_of(found.begin(), found.end(), [&](const FnRange& f) { return f.start == fn->start; }))
        continue;
      found.push_back(*fn);
    }
    return matches >= 64;
  });
  if (matches >= 64 || found.size() > 8) {
    *why = "dozens of functions call through the key log callback's field";
    return {};
  }
  if (found.empty()) *why = "no function calls the key log callback";
  return found;
}

// A memory operand with displacement d in `code`: a decoded [reg+disp] access, or (disp32
// forms the small decoder skips, such as SIB-indexed movzx) its 4 bytes.
bool has_disp(const std::string& code, int64_t d) {
  for (size_t i = 0; i < code.size(); ++i)
    if (auto m = decode_at(code, i); m && m->disp == d) return true;
  if (d < 128) return false;
  char b[4];
  const int32_t v = int32_t(d);
  memcpy(b, &v, 4);
  return code.find(std::string(b, 4)) != std::string::npos;
}

// The functions that call or jump to one of `targets` directly (call/jmp rel32, jmp rel8), with
// the site: (start, site). One pass over the code, at most 64 sites.
std::vector<std::pair<uint64_t, uint64_t>> direct_callers(const ElfFile& elf, const std::set<uint64_t>& targets) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::set<uint64_t> sites;
  elf.scan_code([&](uint64_t base_vaddr, std::string_view code) {
    for (size_t i = 0; i + 2 <= code.size() && out.size() < 64; ++i) {
      const uint8_t op = uint8_t(code[i]);
      const uint64_t site = base_vaddr + i;
      uint64_t to;
      if ((op == 0xE8 || op == 0xE9) && i + 5 <= code.size()) {
        int32_t rel;
        memcpy(&rel, code.data() + i + 1, 4);
        to = site + 5 + int64_t(rel);
      } else if (op == 0xEB) {  // jmp rel8: a tail call to a function laid out close by
        to = site + 2 + int8_t(code[i + 1]);
      } else {
        continue;
      }
      if (!targets.count(to) || !sites.insert(site).second) continue;
      if (auto fn = function_start(elf, site)) out.emplace_back(*fn, site);
    }
    return out.size() >= 64;
  });
  return out;
}

}  // namespace

std::optional<SecretLogger> locate_secret_logger(const ElfFile& elf, std::string* why, const OpenSslVersion* version) {
  auto acc = elf.dynsym().find("SSL_get_client_random");
  if (acc == elf.dynsym().end()) {
    *why = "does not export SSL_get_client_random";
    return std::nullopt;
  }
  auto place = client_random_place(elf.read_vaddr(acc->second, 96));
  if (!place || place->second <= 0 || place->second > 0x4000 || place->first < 0 || place->first > 0x4000) {
    *why = "SSL_get_client_random does not decode to a field of the connection";
    return std::nullopt;
  }
  // OpenSSL 3 keeps the client random inside the connection (1.1.1 behind its s3 pointer).
  const int64_t ptr = version && version->major >= 3 ? 0 : place->first, off = place->second;
  // Code that hands that same field on: its displacement(s) must be in it.
  auto reads_cr = [&](const std::string& code) { return has_disp(code, off) && (!ptr || has_disp(code, ptr)); };
  // The logger: exported as ssl_log_secret (OpenSSL linked into an executable), or, stripped
  // (a shared libssl, BoringSSL), found from the functions that call SSL_CTX's key log
  // callback, whose field the exported SSL_CTX_get_keylog_callback reads: the one of them that
  // reads the client random itself (BoringSSL; OpenSSL where the compiler inlined the
  // formatting into ssl_log_secret, as node's builds and upstream's -O3 builds do, into
  // ssl_log_rsa_client_key_exchange too, which has no client random), else the one function
  // that calls one of them directly and passes it the client random and its length 32
  // (Debian's builds: ssl_log_secret calling nss_keylog_int, or, in 1.1.1, that function's
  // body split out by the compiler after the callback check, which runs only when a callback
  // is set).
  uint64_t logger = 0;
  if (auto fn = elf.dynsym().find("ssl_log_secret"); fn != elf.dynsym().end() && elf.executable(fn->second)) {
    logger = fn->second;
  } else {
    std::string cb = elf.code("SSL_CTX_get_keylog_callback", 16);
    auto field = cb.empty() ? std::nullopt : first_load_from_rdi(cb);
    if (!field) {
      *why = "exports neither ssl_log_secret nor a decodable SSL_CTX_get_keylog_callback";
      return std::nullopt;
    }
    const auto callers = keylog_callers(elf, *field, why);
    if (callers.empty()) return std::nullopt;
    std::set<uint64_t> reading;
    for (const auto& f : callers)
      if (reads_cr(function_code(elf, f))) reading.insert(f.start);
    if (reading.size() > 1) {
      *why = "more than one function calls the key log callback with the client random";
      return std::nullopt;
    }
    if (reading.size() == 1) {
      logger = *reading.begin();
    } else {
      std::set<uint64_t> passing, starts;
      for (const auto& c : callers) starts.insert(c.start);
      for (const auto& [fn, site] : direct_callers(elf, starts)) {
        // From the function's start to the call: the client random and its length (32).
        if (site < fn || site - fn > 256) continue;
        const std::string code = elf.read_vaddr(fn, size_t(site - fn));
        if (reads_cr(code) && code.find(std::string("\xb9\x20\x00\x00\x00", 5)) != std::string::npos)
          passing.insert(fn);
      }
      if (passing.size() != 1) {
        *why = passing.empty() ? "no function passes the client random to the key log callback's caller"
                               : "more than one function passes the client random to the key log callback's caller";
        return std::nullopt;
      }
      logger = *passing.begin();
    }
  }
  auto range = function_range(elf, logger);
  const std::string own = range ? function_code(elf, *range) : elf.read_vaddr(logger, 768);
  if (!elf.executable(logger) || !reads_cr(own)) {
    *why = "the secret logger does not read the client random where SSL_get_client_random does (" + hex(uint64_t(off)) + ")";
    return std::nullopt;
  }
  auto fo = elf.file_offset(logger);
  if (!fo) {
    *why = "the secret logger is not in a loaded segment";
    return std::nullopt;
  }
  return SecretLogger{*fo, uint32_t(ptr), uint32_t(off)};
}

uint64_t emulated_probe_point(std::span<const uint8_t> code, uint64_t func_file_offset) {
  size_t i = 0;
  auto at = [&](size_t k) { return i + k < code.size() ? int(code[i + k]) : -1; };
  for (int skipped = 0; skipped < 4; ++skipped) {
    const int b = at(0);
    // Emulated by the kernel: jmp rel32, jmp rel8, push r64, push r8-r15 (REX.B).
    if (b == 0xe9 || b == 0xeb || (b >= 0x50 && b <= 0x57) ||
        (b == 0x41 && at(1) >= 0x50 && at(1) <= 0x57))
      return func_file_offset + i;
    if (b == 0xf3 && at(1) == 0x0f && at(2) == 0x1e && at(3) == 0xfa) {  // endbr64
      i += 4;
    } else if ((b == 0x31 || b == 0x33) && (at(1) == 0xc0 || at(1) == 0xc9 || at(1) == 0xd2 ||
                                            at(1) == 0xf6)) {  // xor eax/ecx/edx/esi, itself
      i += 2;
    } else if (b >= 0xb8 && b <= 0xbe && b != 0xbc && b != 0xbd && at(4) >= 0) {
      i += 5;  // mov $imm32 to eax/ecx/edx/ebx/esi (not esp, ebp; edi is 0xbf)
    } else {
      break;
    }
  }
  return func_file_offset;
}

uint64_t emulated_probe_point(const ElfFile& elf, uint64_t func_file_offset) {
  std::string c = elf.read_at(func_file_offset, 32);
  return emulated_probe_point(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(c.data()), c.size()),
                              func_file_offset);
}

std::optional<uint64_t> symbol_file_offset(const ElfFile& elf, const std::string& sym) {
  auto it = elf.dynsym().find(sym);
  if (it == elf.dynsym().end() || !elf.executable(it->second)) return std::nullopt;
  return elf.file_offset(it->second);
}

namespace {

// A candidate found in a process's maps, opened as safely as the kernel allows.
std::optional<UntrustedFile> open_candidate(uint32_t pid, const std::string& range, const std::string& path,
                                            std::string* shown, std::string* root, std::string* err) {
  const std::string proc_root = "/proc/" + std::to_string(pid) + "/root";
  // Same mount namespace as ours: the path means the same file here.
  struct stat a {}, b {};
  const bool same_ns = stat("/proc/self/ns/mnt", &a) == 0 &&
                       stat(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), &b) == 0 && a.st_ino == b.st_ino;
  *shown = same_ns ? path : proc_root + path;
  *root = same_ns ? "/" : proc_root;
  // The exact inode mapped (needs CAP_SYS_ADMIN), else the path inside the process's root.
  std::string e1;
  if (auto f = UntrustedFile::open_mapped(pid, range, &e1)) return f;
  auto f = UntrustedFile::open_in_root(*root, path, err);
  if (f) return f;
  *err = *err + " (and " + e1 + ")";
  return std::nullopt;
}

}  // namespace

std::optional<LibSsl> named_libssl(const std::string& path, std::string* err) {
  auto f = UntrustedFile::open_named(path, err);
  if (!f) return std::nullopt;
  LibSsl lib;
  lib.path = path;
  // A path the user named: its directory (symlinks resolved) is where libcrypto sits.
  char real[PATH_MAX];
  lib.dir = dirname_of(realpath(path.c_str(), real) ? std::string(real) : path);
  lib.file = std::move(*f);
  return lib;
}

namespace {
// A Go program using crypto/tls, or a Go program whose function table cannot be read (the Go
// stack then refuses it by name).
bool go_tls(const ElfFile& elf) {
  if (!go_build(elf)) return false;
  std::string why;
  return go_func_entry(elf, "crypto/tls.(*Config).writeKeyLog", &why).has_value() || !why.empty();
}
}  // namespace

void scan_process(uint32_t pid, ProcessScan& st, std::vector<std::string>* refused, const OnCandidate& on) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream maps(proc + "/maps");
  // The process's executable, in its own mount namespace's terms (as maps names it).
  char exe_buf[PATH_MAX];
  const ssize_t exe_len = readlink((proc + "/exe").c_str(), exe_buf, sizeof exe_buf - 1);
  const std::string exe = exe_len > 0 ? std::string(exe_buf, size_t(exe_len)) : std::string();
  std::string line;
  std::set<std::string> seen;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (path.find(" (deleted)") != std::string::npos) continue;
    auto base = path.substr(path.rfind('/') + 1);
    const bool libssl = base.rfind("libssl.so", 0) == 0;
    if ((!libssl && path != exe) || !seen.insert(path).second) continue;
    // "start-end perms offset major:minor inode path": the mapped file as the kernel names it.
    std::pair<uint64_t, uint64_t> mkey{0, 0};
    if (st.skip_decided) {
      unsigned long long maj = 0, min = 0, ino = 0;
      if (sscanf(line.c_str(), "%*s %*s %*s %llx:%llx %llu", &maj, &min, &ino) == 3)
        mkey = {(maj << 32) | min, ino};
      if (st.decided.count(mkey)) continue;
    }
    auto decide = [&] {
      if (!st.skip_decided) return;
      if (st.decided.size() >= st.max_decided) st.decided.clear();  // only costs a second look
      st.decided.insert(mkey);
    };
    const std::string range = line.substr(0, line.find(' '));
    std::string shown, root, err;
    auto f = open_candidate(pid, range, path, &shown, &root, &err);
    std::shared_ptr<const ElfFile> exe_elf;
    // A process gone mid-look (a short-lived program): nothing to say, nothing decided.
    if (!f && st.skip_decided && access(proc.c_str(), F_OK) != 0) return;
    if (!libssl) {
      // An executable is a candidate only when it carries OpenSSL's secret logger (OpenSSL
      // linked in, e.g. Node.js) or is a Go program with crypto/tls (or whose function table
      // cannot be read: refused by name); every other program is not a TLS library, and silent.
      if (!f) continue;
      auto key = std::make_pair(f->dev(), f->ino());
      auto known = st.exe_verdict.find(key);
      if (known == st.exe_verdict.end() && st.exe_verdict.size() >= st.max_executables) {
        if (st.skip_decided) {
          st.exe_verdict.clear();  // late looks: a cache, not a bound on what is looked at
        } else {
          if (!st.exe_cap_said)
            refused->push_back("more than " + std::to_string(st.max_executables) +
                               " distinct executables are running: the others are not inspected for a TLS library");
          st.exe_cap_said = true;
          continue;
        }
      }
      if (known == st.exe_verdict.end()) {
        auto e = std::make_shared<ElfFile>();
        std::string why;
        // OpenSSL linked in: exported, or (a static executable) in .symtab, looked for in its
        // string table first so that other unstripped programs cost one bounded read.
        const bool tls = e->open(*f, shown, &why) &&
                         (e->exports("ssl_log_secret") || go_tls(*e) ||
                          (e->has_symtab() && e->symtab_mentions("ssl_log_secret") && e->load_symtab() &&
                           e->exports("ssl_log_secret")));
        known = st.exe_verdict.emplace(key, tls).first;
        if (tls) exe_elf = std::move(e);  // reads `*f`'s fd, which moves on with it below
      }
      decide();
      if (!known->second) continue;
    }
    decide();
    if (!f) {
      if (st.refused_paths.insert(shown).second)
        refused->push_back("libssl " + shown + " (mapped by pid " + std::to_string(pid) + "): " + err + "; not traced");
      continue;
    }
    on(std::move(*f), shown, root, dirname_of(path), std::move(exe_elf));
  }
}

std::vector<LibSsl> discover_libssl(std::vector<std::string>* refused) {
  std::vector<LibSsl> out;
  std::map<std::pair<uint64_t, uint64_t>, size_t> by_inode;
  ProcessScan st;  // executables read once per scan
  auto add = [&](UntrustedFile f, const std::string& shown, const std::string& root, const std::string& dir,
                 uint32_t pid, std::shared_ptr<const ElfFile> elf) {
    auto key = std::make_pair(f.dev(), f.ino());
    auto it = by_inode.find(key);
    if (it != by_inode.end() && root == "/" && out[it->second].root != "/") {
      // The same file seen first through another process's root: name it as it is named here.
      out[it->second].path = shown;
      out[it->second].root = root;
      out[it->second].dir = dir;
    }
    if (it == by_inode.end()) {
      it = by_inode.emplace(key, out.size()).first;
      LibSsl l;
      l.path = shown;
      l.root = root;
      l.dir = dir;
      l.file = std::move(f);
      l.elf = std::move(elf);
      out.push_back(std::move(l));
    }
    if (pid && out[it->second].pids.size() < 64) out[it->second].pids.push_back(pid);
  };
  // The system library first: a flood of other candidates can never crowd it out.
  const std::string sys = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
  if (std::string err; auto f = UntrustedFile::open_in_root("/", sys, &err))
    add(std::move(*f), sys, "/", dirname_of(sys), 0, nullptr);
  constexpr size_t kMaxCandidates = 256;  // distinct TLS libraries kept open (one fd each)
  bool candidates_said = false;
  DIR* d = opendir("/proc");
  if (d) {
    while (dirent* e = readdir(d)) {
      char* end;
      unsigned long pid = strtoul(e->d_name, &end, 10);
      if (*end || !pid || pid > UINT32_MAX) continue;
      scan_process(uint32_t(pid), st, refused,
                   [&](UntrustedFile f, const std::string& shown, const std::string& root, const std::string& dir,
                       std::shared_ptr<const ElfFile> elf) {
                     if (out.size() >= kMaxCandidates && !by_inode.count({f.dev(), f.ino()})) {
                       if (!candidates_said)
                         refused->push_back("more than " + std::to_string(kMaxCandidates) +
                                            " distinct TLS libraries are mapped: the others are not traced");
                       candidates_said = true;
                       return;
                     }
                     add(std::move(f), shown, root, dir, uint32_t(pid), std::move(elf));
                   });
    }
    closedir(d);
  }
  return out;
}

}  // namespace ehp::tlsprobe
