// libssl discovery, version detection, offset table, accessor decoding.
#include "tlsprobe/libssl.h"

#include <dirent.h>
#include <elf.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace ehp::tlsprobe {

std::string OpenSslVersion::short_name() const {
  return "OpenSSL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

namespace {

bool read_file(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Minimal ELF64 view: dynamic symbols, DT_NEEDED and vaddr -> file offset.
struct Elf {
  std::string bytes;
  std::map<std::string, uint64_t> dynsym;  // name -> st_value (defined functions/objects)
  std::vector<std::string> needed;
  std::vector<Elf64_Phdr> loads;

  bool open(const std::string& path, std::string* err) {
    if (!read_file(path, &bytes)) {
      *err = "cannot read " + path + ": " + strerror(errno);
      return false;
    }
    if (bytes.size() < sizeof(Elf64_Ehdr) || memcmp(bytes.data(), ELFMAG, SELFMAG) != 0 ||
        bytes[EI_CLASS] != ELFCLASS64) {
      *err = path + " is not a 64-bit ELF file";
      return false;
    }
    Elf64_Ehdr eh;
    memcpy(&eh, bytes.data(), sizeof eh);
    if (eh.e_machine != EM_X86_64) {
      *err = path + " is not an x86_64 library";
      return false;
    }
    auto in_file = [&](uint64_t off, uint64_t len) { return off <= bytes.size() && len <= bytes.size() - off; };
    for (int i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      uint64_t o = eh.e_phoff + uint64_t(i) * eh.e_phentsize;
      if (!in_file(o, sizeof ph)) break;
      memcpy(&ph, bytes.data() + o, sizeof ph);
      if (ph.p_type == PT_LOAD) loads.push_back(ph);
    }
    std::vector<Elf64_Shdr> sh(eh.e_shnum);
    for (int i = 0; i < eh.e_shnum; ++i) {
      uint64_t o = eh.e_shoff + uint64_t(i) * eh.e_shentsize;
      if (!in_file(o, sizeof(Elf64_Shdr))) {
        *err = path + ": truncated section headers";
        return false;
      }
      memcpy(&sh[i], bytes.data() + o, sizeof(Elf64_Shdr));
    }
    auto cstr = [&](const Elf64_Shdr& strtab, uint64_t idx) -> std::string {
      if (!in_file(strtab.sh_offset, strtab.sh_size) || idx >= strtab.sh_size) return {};
      const char* p = bytes.data() + strtab.sh_offset + idx;
      return std::string(p, strnlen(p, strtab.sh_size - idx));
    };
    for (auto& s : sh) {
      if (s.sh_type == SHT_DYNSYM && s.sh_link < sh.size() && in_file(s.sh_offset, s.sh_size)) {
        for (uint64_t o = 0; o + sizeof(Elf64_Sym) <= s.sh_size; o += sizeof(Elf64_Sym)) {
          Elf64_Sym sym;
          memcpy(&sym, bytes.data() + s.sh_offset + o, sizeof sym);
          if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
          dynsym.emplace(cstr(sh[s.sh_link], sym.st_name), sym.st_value);
        }
      } else if (s.sh_type == SHT_DYNAMIC && s.sh_link < sh.size() && in_file(s.sh_offset, s.sh_size)) {
        for (uint64_t o = 0; o + sizeof(Elf64_Dyn) <= s.sh_size; o += sizeof(Elf64_Dyn)) {
          Elf64_Dyn d;
          memcpy(&d, bytes.data() + s.sh_offset + o, sizeof d);
          if (d.d_tag == DT_NULL) break;
          if (d.d_tag == DT_NEEDED) needed.push_back(cstr(sh[s.sh_link], d.d_un.d_val));
        }
      }
    }
    return true;
  }

  // Code bytes of a function (up to n), empty when unknown.
  std::string code(const std::string& sym, size_t n) const {
    auto it = dynsym.find(sym);
    if (it == dynsym.end()) return {};
    for (auto& ph : loads) {
      if (it->second >= ph.p_vaddr && it->second < ph.p_vaddr + ph.p_filesz) {
        uint64_t off = it->second - ph.p_vaddr + ph.p_offset;
        if (off >= bytes.size()) return {};
        return bytes.substr(off, std::min<size_t>(n, bytes.size() - off));
      }
    }
    return {};
  }
};

// A memory operand [base + disp] of a mov/lea/movzx found in the code.
struct MemOp {
  int base;  // 0..15 (rax=0 ... rdi=7)
  int64_t disp;
  size_t at;  // byte position
};

// Tiny x86_64 decoder for the shapes compilers emit in struct accessors:
//   [REX] 8B/8D /r  (mov/lea r, [base+disp])   [REX] 0F B6/B7 /r (movzx)
// with ModRM mod 00 (no disp, rm != 4/5), 01 (disp8), 10 (disp32); no SIB.
std::optional<MemOp> decode_at(const std::string& c, size_t i) {
  size_t p = i;
  int rex = 0;
  if (p < c.size() && (uint8_t(c[p]) & 0xF0) == 0x40) rex = uint8_t(c[p++]);
  if (p >= c.size()) return std::nullopt;
  uint8_t op = c[p++];
  if (op == 0x0F) {
    if (p >= c.size()) return std::nullopt;
    uint8_t op2 = c[p++];
    if (op2 != 0xB6 && op2 != 0xB7) return std::nullopt;
  } else if (op != 0x8B && op != 0x8D) {
    return std::nullopt;
  }
  if (p >= c.size()) return std::nullopt;
  uint8_t modrm = c[p++];
  int mod = modrm >> 6, rm = modrm & 7;
  if (mod == 3 || rm == 4 || (mod == 0 && rm == 5)) return std::nullopt;
  int64_t disp = 0;
  if (mod == 1) {
    if (p + 1 > c.size()) return std::nullopt;
    disp = int8_t(c[p]);
  } else if (mod == 2) {
    if (p + 4 > c.size()) return std::nullopt;
    int32_t d;
    memcpy(&d, c.data() + p, 4);
    disp = d;
  }
  return MemOp{rm | ((rex & 1) << 3), disp, i};
}

std::string skip_endbr(const std::string& c) {
  static const char kEndbr64[] = "\xf3\x0f\x1e\xfa";
  return c.compare(0, 4, kEndbr64, 4) == 0 ? c.substr(4) : c;
}

constexpr int kRdi = 7, kRax = 0;

// Single-instruction accessor: the first instruction must read [rdi + disp].
std::optional<int64_t> first_load_from_rdi(const std::string& code) {
  auto m = decode_at(skip_endbr(code), 0);
  if (!m || m->base != kRdi) return std::nullopt;
  return m->disp;
}

// Every displacement off rdi (or rax/rsi copies of it) within the first bytes of a function.
std::set<int64_t> displacements(const std::string& code) {
  std::set<int64_t> out;
  std::string c = skip_endbr(code);
  for (size_t i = 0; i < c.size(); ++i) {
    auto m = decode_at(c, i);
    if (m && (m->base == kRdi || m->base == kRax)) out.insert(m->disp);
  }
  return out;
}

std::string hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

// Looks for "OpenSSL X.Y.Z<letters> ... <4-digit year>" (OPENSSL_VERSION_TEXT).
std::optional<OpenSslVersion> find_version_text(const std::string& bytes) {
  static const std::string kTag = "OpenSSL ";
  for (size_t p = bytes.find(kTag); p != std::string::npos; p = bytes.find(kTag, p + 1)) {
    size_t end = bytes.find('\0', p);
    if (end == std::string::npos || end - p > 80) continue;
    std::string s = bytes.substr(p, end - p);
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
  return s == std::string::npos ? "." : p.substr(0, s);
}

}  // namespace

std::optional<OpenSslVersion> detect_version(const std::string& libssl_path, std::string* err) {
  Elf elf;
  if (!elf.open(libssl_path, err)) return std::nullopt;
  if (!elf.dynsym.count("SSL_new")) {
    *err = libssl_path + " does not export SSL_new: not a libssl";
    return std::nullopt;
  }
  if (auto v = find_version_text(elf.bytes)) return v;
  // OpenSSL 3 keeps OPENSSL_VERSION_TEXT in libcrypto only: look next to the libssl (also the
  // symlink target's directory), then in the multiarch directories.
  std::vector<std::string> dirs = {dirname_of(libssl_path)};
  char real[4096];
  if (realpath(libssl_path.c_str(), real)) dirs.push_back(dirname_of(real));
  dirs.push_back("/usr/lib/x86_64-linux-gnu");
  dirs.push_back("/lib/x86_64-linux-gnu");
  for (auto& n : elf.needed) {
    if (n.rfind("libcrypto.so", 0) != 0) continue;
    for (auto& d : dirs) {
      std::string bytes;
      if (!read_file(d + "/" + n, &bytes)) continue;
      if (auto v = find_version_text(bytes)) return v;
    }
  }
  *err = "no \"OpenSSL X.Y.Z\" version string in " + libssl_path + " or its libcrypto";
  return std::nullopt;
}

// The OpenSSL 3.0 ssl_st layout (3.0.19, proven end to end); 3.1 kept it.
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

// One row per layout series. Only 3.0 is proven on this machine (FACTS.md: Debian 12 libssl3
// 3.0.19, read by a uprobe and compared to curl's SSLKEYLOGFILE). The others come from public
// layout data and are UNVERIFIED: they are used only if the start-up confirmation (accessor
// decoding + calibration handshake through the library itself) agrees with them.
const std::vector<OffsetTable>& offset_table() {
  static const std::vector<OffsetTable> t = {
      {"3.0", true,
       kLayout30,
       0x30},  // SSL_connect: cmp qword [rdi+0x30],0 (3.0.19)
      // UNVERIFIED: 3.1.x kept the 3.0 ssl_st layout in public builds.
      {"3.1", false,
       kLayout30,
       0x30},
      // UNVERIFIED: 1.1.1f..w. s3 is a pointer; session->cipher moved between letters (0x1f0 in
      // 1.1.1j, 0x1f8 in 1.1.1f), which the confirmation step catches.
      {"1.1.1", false,
       {.ssl_st_version_offset = 0x0,
        .ssl_st_rbio_offset = 0x10,
        .ssl_st_statem_in_init_offset = 0x64,
        .ssl_st_s3_ptr_offset = 0xa8,
        .ssl_st_s3_client_random_offset = 0xb8,
        .ssl_st_session_offset = 0x510,
        .ssl_st_handshake_secret_offset = 0x17c,
        .ssl_st_handshake_traffic_hash_offset = 0x2fc,
        .ssl_st_client_app_traffic_secret_offset = 0x33c,
        .ssl_st_server_app_traffic_secret_offset = 0x37c,
        .ssl_st_exporter_master_secret_offset = 0x3bc,
        .ssl_session_st_master_key_offset = 0x50,
        .ssl_session_st_cipher_offset = 0x1f8,
        .ssl_cipher_st_id_offset = 0x18,
        .bio_st_num_offset = 0x30},
       0x30},
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

bool check_accessors(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* err,
                     std::vector<std::string>* undecoded) {
  Elf elf;
  if (!elf.open(libssl_path, err)) return false;
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

bool confirm_offsets(const std::string& libssl_path, const ehp_tls_offsets& off, std::string* how,
                     std::string* err, Calibration* cal) {
  std::vector<std::string> undecoded;
  std::string e;
  if (!check_accessors(libssl_path, off, &e, &undecoded)) {
    *err = "accessor check failed: " + e;
    return false;
  }
  if (!calibrate(libssl_path, off, &e, cal)) {
    *err = "calibration handshake failed: " + e;
    return false;
  }
  *how = "accessors decoded";
  if (!undecoded.empty()) {
    *how += " (not decodable:";
    for (auto& u : undecoded) *how += " " + u;
    *how += ")";
  }
  *how += " + calibration handshakes TLS1.2/TLS1.3 matched keylog";
  return true;
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

uint64_t emulated_probe_point(const std::string& path, uint64_t func_file_offset) {
  uint8_t buf[32];
  FILE* f = fopen(path.c_str(), "rbe");
  if (!f) return func_file_offset;
  size_t n = 0;
  if (fseeko(f, off_t(func_file_offset), SEEK_SET) == 0) n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return emulated_probe_point(std::span<const uint8_t>(buf, n), func_file_offset);
}

std::optional<uint64_t> vaddr_to_file_offset(const std::string& path, uint64_t vaddr) {
  Elf elf;
  std::string err;
  if (!elf.open(path, &err)) return std::nullopt;
  for (auto& ph : elf.loads)
    if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) return vaddr - ph.p_vaddr + ph.p_offset;
  return std::nullopt;
}

std::vector<std::string> exported_symbols(const std::string& path, const std::vector<std::string>& wanted) {
  Elf elf;
  std::string err;
  std::vector<std::string> out;
  if (!elf.open(path, &err)) return out;
  for (auto& w : wanted)
    if (elf.dynsym.count(w)) out.push_back(w);
  return out;
}

std::vector<LibSsl> discover_libssl() {
  std::vector<LibSsl> out;
  std::map<std::pair<uint64_t, uint64_t>, size_t> by_inode;
  auto add = [&](const std::string& path, uint32_t pid) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    auto key = std::make_pair(uint64_t(st.st_dev), uint64_t(st.st_ino));
    auto it = by_inode.find(key);
    if (it == by_inode.end()) {
      by_inode.emplace(key, out.size());
      out.push_back({path, key.first, key.second, {}});
      it = by_inode.find(key);
    }
    if (pid) out[it->second].pids.push_back(pid);
  };
  DIR* d = opendir("/proc");
  if (d) {
    while (dirent* e = readdir(d)) {
      char* end;
      unsigned long pid = strtoul(e->d_name, &end, 10);
      if (*end || !pid) continue;
      std::ifstream maps("/proc/" + std::string(e->d_name) + "/maps");
      std::string line;
      std::set<std::string> seen;
      while (std::getline(maps, line)) {
        auto slash = line.find('/');
        if (slash == std::string::npos) continue;
        std::string path = line.substr(slash);
        if (path.find(" (deleted)") != std::string::npos) continue;
        auto base = path.substr(path.rfind('/') + 1);
        if (base.rfind("libssl.so", 0) != 0 || !seen.insert(path).second) continue;
        // Through /proc/<pid>/root so libraries in other mount namespaces (containers) resolve;
        // same inode as the plain path when the process shares our root.
        struct stat a, b;
        std::string via_root = "/proc/" + std::string(e->d_name) + "/root" + path;
        if (stat(path.c_str(), &a) == 0 && stat(via_root.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
          add(path, uint32_t(pid));
        else
          add(via_root, uint32_t(pid));
      }
    }
    closedir(d);
  }
  add("/usr/lib/x86_64-linux-gnu/libssl.so.3", 0);
  return out;
}

}  // namespace ehp::tlsprobe
