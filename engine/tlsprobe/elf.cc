// SPDX-License-Identifier: BSD-2-Clause
// Bounded, read-only access to binaries a local user may control (see elf.h).
#include "tlsprobe/elf.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

namespace ehp::tlsprobe {

UntrustedFile::~UntrustedFile() {
  if (fd_ >= 0) ::close(fd_);
}
UntrustedFile::UntrustedFile(UntrustedFile&& o) noexcept { *this = std::move(o); }
UntrustedFile& UntrustedFile::operator=(UntrustedFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    size_ = o.size_;
    dev_ = o.dev_;
    ino_ = o.ino_;
    o.fd_ = -1;
  }
  return *this;
}

std::string UntrustedFile::fd_path() const { return "/proc/self/fd/" + std::to_string(fd_); }

// `pfd` is an O_PATH fd: nothing was opened for reading yet (opening a device can have side
// effects; opening a FIFO waits). Only a regular file is then reopened to be read.
std::optional<UntrustedFile> UntrustedFile::adopt(int pfd, const std::string& shown, std::string* err) {
  if (pfd < 0) {
    *err = "cannot open " + shown + ": " + strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  const bool stat_ok = fstat(pfd, &st) == 0;
  const int stat_errno = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(pfd);
    *err = stat_ok ? shown + " is not a regular file" : "cannot stat " + shown + ": " + strerror(stat_errno);
    return std::nullopt;
  }
  const int fd = ::open(("/proc/self/fd/" + std::to_string(pfd)).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  const int open_errno = errno;
  ::close(pfd);
  if (fd < 0) {
    *err = "cannot open " + shown + ": " + strerror(open_errno);
    return std::nullopt;
  }
  UntrustedFile f;
  f.fd_ = fd;
  struct stat now {};
  if (fstat(fd, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
    *err = shown + " changed while being opened";
    return std::nullopt;
  }
  if (uint64_t(st.st_size) > kMaxBinaryBytes) {
    *err = shown + " is larger than " + std::to_string(kMaxBinaryBytes >> 30) + " GiB";
    return std::nullopt;
  }
  // The O_NONBLOCK that kept the open from waiting on a FIFO has no use on a regular file.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  f.size_ = uint64_t(st.st_size);
  f.dev_ = uint64_t(st.st_dev);
  f.ino_ = uint64_t(st.st_ino);
  return f;
}

namespace {
bool under_dev(const std::string& p) { return p == "/dev" || p.rfind("/dev/", 0) == 0; }
}  // namespace

std::optional<UntrustedFile> UntrustedFile::open_named(const std::string& path, std::string* err) {
  if (under_dev(path)) {
    *err = path + " is a device path, not a library";
    return std::nullopt;
  }
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  return adopt(fd, path, err);
}

std::optional<UntrustedFile> UntrustedFile::open_in_root(const std::string& root, const std::string& path,
                                                         std::string* err) {
  const std::string shown = root == "/" ? path : root + path;
  if (root == "/" && under_dev(path)) {
    *err = path + " is a device path, not a library";
    return std::nullopt;
  }
  int rfd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0) {
    *err = "cannot open " + root + ": " + strerror(errno);
    return std::nullopt;
  }
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  int fd = int(syscall(SYS_openat2, rfd, path.c_str(), &how, sizeof how));
  const int e = errno;
  ::close(rfd);
  errno = e;
  if (fd < 0 && errno == ELOOP) {
    *err = shown + ": a path component is a symbolic link (not followed in a scanned path)";
    return std::nullopt;
  }
  return adopt(fd, shown, err);
}

std::optional<UntrustedFile> UntrustedFile::open_mapped(uint32_t pid, const std::string& range, std::string* err) {
  const std::string p = "/proc/" + std::to_string(pid) + "/map_files/" + range;
  int fd = ::open(p.c_str(), O_PATH | O_CLOEXEC);
  return adopt(fd, p, err);
}

// ---- ElfFile ----------------------------------------------------------------------------------

namespace {

// The length of the name at strtab[idx] when it is one the probe looks up (SSL_*, TLS_*,
// ssl_log_secret; at most 128 bytes), else 0. Every other name costs nothing to keep.
size_t wanted_name(const std::string& strtab, uint64_t idx) {
  if (idx >= strtab.size()) return 0;
  const char* name = strtab.c_str() + idx;
  const size_t room = strtab.size() - idx;
  const bool wanted = (room >= 4 && (strncmp(name, "SSL_", 4) == 0 || strncmp(name, "TLS_", 4) == 0)) ||
                      (room >= 15 && strncmp(name, "ssl_log_secret", 15) == 0);
  const size_t len = wanted ? strnlen(name, std::min<size_t>(room, 129)) : 0;
  return len <= 128 ? len : 0;
}

bool pread_all(int fd, void* out, size_t n, uint64_t off) {
  auto* p = static_cast<char*>(out);
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, off_t(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= size_t(r);
    off += uint64_t(r);
  }
  return true;
}

}  // namespace

bool ElfFile::open(const UntrustedFile& f, const std::string& shown, std::string* err) {
  fd_ = f.fd();
  size_ = f.size();
  auto in_file = [&](uint64_t off, uint64_t len) { return off <= size_ && len <= size_ - off; };
  Elf64_Ehdr eh{};
  if (size_ < sizeof eh || !pread_all(fd_, &eh, sizeof eh, 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64) {
    *err = shown + " is not a 64-bit ELF file";
    return false;
  }
  if (eh.e_machine != EM_X86_64) {
    *err = shown + " is not an x86_64 binary";
    return false;
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256 ||
      !in_file(eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr))) {
    *err = shown + ": bad program headers";
    return false;
  }
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  if (!ph.empty() && !pread_all(fd_, ph.data(), ph.size() * sizeof(Elf64_Phdr), eh.e_phoff)) {
    *err = shown + ": cannot read program headers";
    return false;
  }
  for (auto& p : ph) {
    if (p.p_type == PT_LOAD && in_file(p.p_offset, p.p_filesz))
      loads_.push_back({p.p_vaddr, p.p_filesz, p.p_offset, (p.p_flags & PF_X) != 0});
    if (p.p_type == PT_GNU_EH_FRAME) eh_frame_hdr_ = p.p_vaddr;
  }

  if (eh.e_shnum == 0) return true;  // no section headers: no symbols
  has_sections_ = true;
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || !in_file(eh.e_shoff, uint64_t(eh.e_shnum) * sizeof(Elf64_Shdr))) {
    *err = shown + ": bad section headers";
    return false;
  }
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  if (!pread_all(fd_, sh.data(), sh.size() * sizeof(Elf64_Shdr), eh.e_shoff)) {
    *err = shown + ": cannot read section headers";
    return false;
  }
  auto table = [&](const Elf64_Shdr& s, std::string* out) {
    if (s.sh_type == SHT_NOBITS || !in_file(s.sh_offset, s.sh_size) || s.sh_size > kMaxTableBytes) return false;
    out->resize(s.sh_size);
    return s.sh_size == 0 || pread_all(fd_, out->data(), s.sh_size, s.sh_offset);
  };
  auto cstr = [](const std::string& strtab, uint64_t idx) -> std::string {
    if (idx >= strtab.size()) return {};
    return std::string(strtab.c_str() + idx, strnlen(strtab.c_str() + idx, strtab.size() - idx));
  };
  // The named sections the Go stack needs (gobin.cc): looked up in .shstrtab (capped like the
  // symbol tables), only these names kept.
  if (eh.e_shstrndx != SHN_UNDEF && eh.e_shstrndx < sh.size()) {
    std::string names;
    if (table(sh[eh.e_shstrndx], &names))
      for (auto& s : sh)
        for (const char* want : {".gopclntab", ".go.buildinfo"}) {
          const size_t wl = strlen(want) + 1;  // with its NUL: no copy of a name that never ends
          if (s.sh_name < names.size() && names.size() - s.sh_name >= wl &&
              memcmp(names.data() + s.sh_name, want, wl) == 0 && s.sh_type != SHT_NOBITS &&
              in_file(s.sh_offset, s.sh_size) && !sections_.count(want))
            sections_.emplace(want, Section{s.sh_addr, s.sh_offset, s.sh_size});
        }
  }
  // .symtab (not read here: load_symtab), when it and its string table are in the file.
  for (auto& s : sh)
    if (s.sh_type == SHT_SYMTAB && s.sh_link < sh.size() && in_file(s.sh_offset, s.sh_size) &&
        sh[s.sh_link].sh_type == SHT_STRTAB && in_file(sh[s.sh_link].sh_offset, sh[s.sh_link].sh_size)) {
      symtab_ = SymtabAt{s.sh_offset, s.sh_size, sh[s.sh_link].sh_offset, sh[s.sh_link].sh_size};
      break;
    }
  // A large .dynsym with a .gnu.hash (node's 90k symbols): the looked-up names only, by hash.
  for (size_t i = 0; i < sh.size(); ++i)
    if (sh[i].sh_type == SHT_GNU_HASH && sh[i].sh_link < sh.size() && sh[sh[i].sh_link].sh_type == SHT_DYNSYM &&
        sh[sh[i].sh_link].sh_size > kHashLookupAbove && sh[sh[i].sh_link].sh_link < sh.size() &&
        hash_lookups(sh[i], sh[sh[i].sh_link], sh[sh[sh[i].sh_link].sh_link])) {
      hashed_ = true;
      break;
    }
  // One .dynsym and one .dynamic (a file that claims more is read once, not once per copy), at
  // most 4 relocation sections of 64 MiB together, names of at most 128 bytes, at most 8
  // libcrypto DT_NEEDED entries: work and memory stay bounded whatever the headers claim.
  bool seen_dynsym = false, seen_dynamic = false;
  uint64_t rela_bytes = 0;
  for (auto& s : sh) {
    if (s.sh_type == SHT_RELA && in_file(s.sh_offset, s.sh_size) && relas_.size() < 4 &&
        rela_bytes + s.sh_size <= (64ull << 20)) {
      relas_.push_back({s.sh_offset, s.sh_size});
      rela_bytes += s.sh_size;
    }
    if ((s.sh_type != SHT_DYNSYM && s.sh_type != SHT_DYNAMIC) || s.sh_link >= sh.size()) continue;
    bool& seen = s.sh_type == SHT_DYNSYM ? seen_dynsym : seen_dynamic;
    if (seen || (hashed_ && s.sh_type == SHT_DYNSYM)) continue;
    seen = true;
    std::string body, strtab;
    // .dynamic's names (DT_NEEDED) are read one by one below: its string table is .dynstr, which
    // a large executable's exports make megabytes long.
    if (!table(s, &body) || (s.sh_type == SHT_DYNSYM && !table(sh[s.sh_link], &strtab))) {
      *err = shown + ": symbol tables missing or over " + std::to_string(kMaxTableBytes >> 20) + " MiB";
      return false;
    }
    if (s.sh_type == SHT_DYNSYM) {
      for (size_t o = 0; o + sizeof(Elf64_Sym) <= body.size(); o += sizeof(Elf64_Sym)) {
        Elf64_Sym sym;
        memcpy(&sym, body.data() + o, sizeof sym);
        if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
        // Only the names the probe looks up are kept: a hostile table of millions of symbols
        // costs no memory beyond its bounded read.
        if (sym.st_name < strtab.size() && strtab.size() - sym.st_name >= 8 &&
            strncmp(strtab.c_str() + sym.st_name, "_ZN4bssl", 8) == 0)
          bssl_ = true;
        const size_t len = wanted_name(strtab, sym.st_name);
        if (!len) continue;
        if (dynsym_.size() >= kMaxSymbols) {
          *err = shown + ": more than " + std::to_string(kMaxSymbols) + " SSL_/TLS_ symbols";
          return false;
        }
        dynsym_.emplace(cstr(strtab, sym.st_name), sym.st_value);
      }
    } else {
      for (size_t o = 0; o + sizeof(Elf64_Dyn) <= body.size(); o += sizeof(Elf64_Dyn)) {
        Elf64_Dyn d;
        memcpy(&d, body.data() + o, sizeof d);
        if (d.d_tag == DT_NULL) break;
        const Elf64_Shdr& st = sh[s.sh_link];
        if (d.d_tag != DT_NEEDED || needed_.size() >= 8 || st.sh_type == SHT_NOBITS || d.d_un.d_val >= st.sh_size ||
            !in_file(st.sh_offset, st.sh_size))
          continue;
        char n[66] = {};
        const size_t want = size_t(std::min<uint64_t>(65, st.sh_size - d.d_un.d_val));
        if (!pread_all(fd_, n, want, st.sh_offset + d.d_un.d_val)) continue;
        const size_t len = strnlen(n, want);
        if (len <= 64 && strncmp(n, "libcrypto.so", 12) == 0) needed_.emplace_back(n, len);
      }
    }
  }
  return true;
}

// .gnu.hash: nbuckets, symoffset, bloom_size, bloom_shift, bloom[bloom_size] (64-bit words),
// buckets[nbuckets], chain[] (one hash per symbol from symoffset, low bit = last of its bucket).
// Each name costs a bucket, a bounded chain walk and, per matching hash, one symbol and one name
// read. false (then the table is read whole) when the header does not fit the file.
bool ElfFile::hash_lookups(const Elf64_Shdr& gh, const Elf64_Shdr& ds, const Elf64_Shdr& strs) {
  auto in_file = [&](uint64_t off, uint64_t len) { return off <= size_ && len <= size_ - off; };
  uint32_t hdr[4];
  if (gh.sh_size < sizeof hdr || !in_file(gh.sh_offset, gh.sh_size) || !in_file(ds.sh_offset, ds.sh_size) ||
      !in_file(strs.sh_offset, strs.sh_size) || gh.sh_size > kMaxTableBytes || ds.sh_entsize != sizeof(Elf64_Sym) ||
      !pread_all(fd_, hdr, sizeof hdr, gh.sh_offset))
    return false;
  const uint64_t nbuckets = hdr[0], symoffset = hdr[1], bloom = hdr[2];
  const uint64_t nsyms = ds.sh_size / sizeof(Elf64_Sym);
  const uint64_t buckets_at = sizeof hdr + bloom * 8, chain_at = buckets_at + nbuckets * 4;
  if (nbuckets == 0 || bloom > (1u << 24) || chain_at > gh.sh_size || symoffset > nsyms) return false;
  for (const char* name : kLookedUpSymbols) {
    uint32_t h = 5381;
    for (const char* p = name; *p; ++p) h = h * 33 + uint8_t(*p);
    const size_t len = strlen(name);
    uint32_t idx;
    if (!pread_all(fd_, &idx, 4, gh.sh_offset + buckets_at + (h % nbuckets) * 4)) return false;
    for (int steps = 0; idx >= symoffset && idx < nsyms && steps < 4096; ++idx, ++steps) {
      const uint64_t at = chain_at + (uint64_t(idx) - symoffset) * 4;
      uint32_t h2;
      if (at + 4 > gh.sh_size || !pread_all(fd_, &h2, 4, gh.sh_offset + at)) break;
      if ((h2 | 1) == (h | 1)) {
        Elf64_Sym sym;
        char buf[64];
        if (pread_all(fd_, &sym, sizeof sym, ds.sh_offset + idx * sizeof sym) && sym.st_name < strs.sh_size &&
            strs.sh_size - sym.st_name > len && pread_all(fd_, buf, len + 1, strs.sh_offset + sym.st_name) &&
            memcmp(buf, name, len) == 0 && buf[len] == '\0' && sym.st_shndx != SHN_UNDEF && sym.st_value != 0) {
          dynsym_.emplace(name, sym.st_value);
          break;
        }
      }
      if (h2 & 1) break;
    }
  }
  return true;
}

std::optional<uint64_t> ElfFile::file_offset(uint64_t vaddr) const {
  for (auto& l : loads_)
    if (vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz) return vaddr - l.vaddr + l.offset;
  return std::nullopt;
}

std::optional<ElfFile::Section> ElfFile::section(std::string_view name) const {
  auto it = sections_.find(name);
  if (it == sections_.end()) return std::nullopt;
  return it->second;
}

std::vector<ElfFile::Segment> ElfFile::segments() const {
  std::vector<Segment> out;
  for (auto& l : loads_) out.push_back({l.vaddr, l.filesz, l.offset, l.exec});
  return out;
}

bool ElfFile::read_exact(uint64_t off, void* out, size_t n) const {
  if (off > size_ || n > size_ - off) return false;
  return n == 0 || pread_all(fd_, out, n, off);
}

bool ElfFile::executable(uint64_t vaddr) const {
  for (auto& l : loads_)
    if (l.exec && vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz) return true;
  return false;
}

std::string ElfFile::read_at(uint64_t off, size_t n) const {
  n = std::min<size_t>(n, 4096);
  if (off >= size_) return {};
  n = size_t(std::min<uint64_t>(n, size_ - off));
  std::string out(n, '\0');
  if (n && !pread_all(fd_, out.data(), n, off)) return {};
  return out;
}

std::string ElfFile::read_vaddr(uint64_t vaddr, size_t n) const {
  for (auto& l : loads_)
    if (vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz)
      return read_at(vaddr - l.vaddr + l.offset, size_t(std::min<uint64_t>(n, l.filesz - (vaddr - l.vaddr))));
  return {};
}

std::string ElfFile::code(const std::string& sym, size_t n) const {
  auto it = dynsym_.find(sym);
  return it == dynsym_.end() ? std::string() : read_vaddr(it->second, n);
}

std::optional<uint64_t> ElfFile::pointer_at(uint64_t vaddr) const {
  constexpr size_t kChunk = 64 * 1024;  // whole Elf64_Rela entries (24 B)
  constexpr size_t kPerChunk = kChunk / sizeof(Elf64_Rela);
  std::vector<Elf64_Rela> buf(kPerChunk);
  for (auto& r : relas_) {
    const uint64_t n = r.size / sizeof(Elf64_Rela);
    for (uint64_t i = 0; i < n; i += kPerChunk) {
      const size_t k = size_t(std::min<uint64_t>(kPerChunk, n - i));
      if (!pread_all(fd_, buf.data(), k * sizeof(Elf64_Rela), r.offset + i * sizeof(Elf64_Rela))) break;
      for (size_t j = 0; j < k; ++j)
        if (buf[j].r_offset == vaddr && ELF64_R_TYPE(buf[j].r_info) == R_X86_64_RELATIVE)
          return uint64_t(buf[j].r_addend);
    }
  }
  std::string b = read_vaddr(vaddr, 8);
  if (b.size() != 8) return std::nullopt;
  uint64_t v;
  memcpy(&v, b.data(), 8);
  return v ? std::optional<uint64_t>(v) : std::nullopt;
}

bool ElfFile::scan_code(const std::function<bool(uint64_t, std::string_view)>& fn) const {
  constexpr size_t kChunk = 1 << 20, kOverlap = 16;
  std::string buf(kChunk + kOverlap, '\0');
  uint64_t budget = kMaxScanBytes;
  for (auto& l : loads_) {
    if (!l.exec) continue;
    for (uint64_t pos = 0; pos < l.filesz && budget > 0;) {
      const size_t n = size_t(std::min<uint64_t>({kChunk + kOverlap, l.filesz - pos, budget}));
      if (!pread_all(fd_, buf.data(), n, l.offset + pos)) break;
      if (fn(l.vaddr + pos, std::string_view(buf.data(), n))) return true;
      budget -= std::min<uint64_t>(budget, n);
      if (n <= kOverlap) break;
      pos += n - kOverlap;
    }
  }
  return false;
}

bool ElfFile::scan_data(size_t overlap, const std::function<bool(std::string_view)>& fn) const {
  constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk + overlap, '\0');
  uint64_t budget = kMaxScanBytes;
  // Data segments first; then the executable ones, where a non-PIE executable keeps .rodata.
  std::vector<const Load*> order;
  for (auto& l : loads_)
    if (!l.exec) order.push_back(&l);
  for (auto& l : loads_)
    if (l.exec) order.push_back(&l);
  for (const Load* lp : order) {
    const Load& l = *lp;
    for (uint64_t pos = 0; pos < l.filesz && budget > 0;) {
      const size_t n = size_t(std::min<uint64_t>({kChunk + overlap, l.filesz - pos, budget}));
      if (!pread_all(fd_, buf.data(), n, l.offset + pos)) break;
      if (fn(std::string_view(buf.data(), n))) return true;
      budget -= std::min<uint64_t>(budget, n);
      if (n <= overlap) break;
      pos += n - overlap;
    }
  }
  return false;
}

bool ElfFile::symtab_mentions(std::string_view name) const {
  if (!symtab_ || symtab_->str_size > kMaxTableBytes) return false;
  const std::string want = std::string(1, '\0') + std::string(name) + std::string(1, '\0');
  constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk + want.size(), '\0');
  for (uint64_t pos = 0; pos < symtab_->str_size;) {
    const size_t n = size_t(std::min<uint64_t>(buf.size(), symtab_->str_size - pos));
    if (!pread_all(fd_, buf.data(), n, symtab_->str_offset + pos)) return false;
    if (std::string_view(buf.data(), n).find(want) != std::string_view::npos) return true;
    if (n <= want.size()) break;
    pos += n - want.size();
  }
  return false;
}

bool ElfFile::load_symtab() {
  if (!symtab_ || symtab_loaded_) return symtab_loaded_;
  if (symtab_->size > kMaxTableBytes || symtab_->str_size > kMaxTableBytes) return false;
  std::string body(symtab_->size, '\0'), strtab(symtab_->str_size, '\0');
  if (!pread_all(fd_, body.data(), body.size(), symtab_->offset) ||
      !pread_all(fd_, strtab.data(), strtab.size(), symtab_->str_offset))
    return false;
  for (size_t o = 0; o + sizeof(Elf64_Sym) <= body.size(); o += sizeof(Elf64_Sym)) {
    Elf64_Sym sym;
    memcpy(&sym, body.data() + o, sizeof sym);
    if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0 || ELF64_ST_TYPE(sym.st_info) != STT_FUNC) continue;
    const size_t len = wanted_name(strtab, sym.st_name);
    if (!len) continue;
    if (dynsym_.size() >= kMaxSymbols) break;
    dynsym_.emplace(strtab.substr(sym.st_name, len), sym.st_value);  // an exported one of that name wins
  }
  symtab_loaded_ = true;
  return true;
}

}  // namespace ehp::tlsprobe
