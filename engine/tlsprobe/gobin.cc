// SPDX-License-Identifier: BSD-2-Clause
// Go build info and pclntab, read with fixed-size windows under a total budget (gobin.h).
#include "tlsprobe/gobin.h"

#include <Zydis/Zydis.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace ehp::tlsprobe {
namespace {

constexpr char kBuildInfoMagic[] = "\xff Go buildinf:";  // 14 bytes
constexpr size_t kBuildInfoMagicLen = 14;
constexpr uint64_t kMaxFuncs = 4u << 20;  // a real binary has tens of thousands

// Reads [lo, hi) of the file through one window; every refill counts against the budget, so a
// table whose entries point all over the file costs at most kMaxScanBytes of reading.
class Window {
 public:
  Window(const ElfFile& elf, uint64_t lo, uint64_t hi) : elf_(elf), lo_(lo), hi_(hi) {}
  bool get(uint64_t off, void* out, size_t n) {
    if (off < lo_ || off > hi_ || n > hi_ - off || n > kWin) return false;
    if (!have_ || off < base_ || off + n > base_ + buf_.size()) {
      const size_t len = size_t(std::min<uint64_t>(kWin, hi_ - off));
      if (read_ + len > kMaxScanBytes) return false;
      read_ += len;
      buf_.resize(len);
      have_ = elf_.read_exact(off, buf_.data(), len);
      base_ = off;
      if (!have_) return false;
    }
    memcpy(out, buf_.data() + (off - base_), n);
    return true;
  }
  std::optional<uint32_t> u32(uint64_t off) {
    uint32_t v;
    return get(off, &v, 4) ? std::optional<uint32_t>(v) : std::nullopt;
  }
  std::optional<uint64_t> u64(uint64_t off) {
    uint64_t v;
    return get(off, &v, 8) ? std::optional<uint64_t>(v) : std::nullopt;
  }

 private:
  static constexpr size_t kWin = 64 * 1024;
  const ElfFile& elf_;
  uint64_t lo_, hi_, base_ = 0, read_ = 0;
  bool have_ = false;
  std::vector<uint8_t> buf_;
};

// "go1.19.8" (or "devel go1.22-abc ...") -> 1, 19.
void parse_version(GoBuild* b) {
  const auto at = b->version.find("go1.");
  if (at == std::string::npos) return;
  b->major = 1;
  int minor = 0;
  for (size_t i = at + 4; i < b->version.size() && i < at + 8 && b->version[i] >= '0' && b->version[i] <= '9'; ++i)
    minor = minor * 10 + (b->version[i] - '0');
  b->minor = minor;
}

// The version text as read from the file (shown in messages: non-printable bytes become '?').
void set_version(GoBuild* b, std::string v) {
  for (char& c : v)
    if (uint8_t(c) < 0x20 || uint8_t(c) > 0x7e) c = '?';
  b->version = std::move(v);
  parse_version(b);
}

// The build info at the start of `bytes` (which holds at least the magic).
GoBuild parse_build_info(std::string_view bytes) {
  GoBuild b;
  // 14 magic bytes, pointer size, flags (bit 1: strings inline, Go 1.18+), padding to 32.
  if (bytes.size() < 33 || (uint8_t(bytes[15]) & 2) == 0) return b;
  // A uvarint length, then the version text.
  uint64_t len = 0;
  size_t i = 32;
  for (int shift = 0; i < bytes.size() && shift < 35; shift += 7) {
    const uint8_t c = uint8_t(bytes[i++]);
    len |= uint64_t(c & 0x7f) << shift;
    if (!(c & 0x80)) break;
  }
  if (len == 0 || len > 128 || len > bytes.size() - i) return b;
  set_version(&b, std::string(bytes.data() + i, size_t(len)));
  return b;
}

// Go 1.17 and older: the build info at `vaddr` holds a pointer (at +16) to runtime.buildVersion,
// a string header {data pointer, length}; pointers relocated in a PIE (pointer_at). Little endian
// only (flags bit 0 clear).
GoBuild pointed_build_info(const ElfFile& elf, uint64_t vaddr) {
  GoBuild b;
  auto hdr = elf.pointer_at(vaddr + 16);
  auto data = hdr ? elf.pointer_at(*hdr) : std::nullopt;
  auto len_off = hdr ? elf.file_offset(*hdr + 8) : std::nullopt;
  uint64_t len = 0;
  if (!data || !len_off || !elf.read_exact(*len_off, &len, 8) || len == 0 || len > 128) return b;
  auto data_off = elf.file_offset(*data);
  std::string v(size_t(len), '\0');
  if (!data_off || !elf.read_exact(*data_off, v.data(), v.size())) return b;
  set_version(&b, std::move(v));
  return b;
}

struct PcHeader {
  uint64_t vaddr, file_off, end_off;  // the header; the end of the region it may use (file)
  uint64_t nfunc, text_start, funcname_off, cu_off, pcln_off;
  // Go 1.16-1.17 (magic 0xfffffffa): no textStart; functab holds (entry pc, funcoff) pointer
  // pairs and each _func starts with its entry pc (absolute, relocated in a PIE), then nameOff.
  // Go 1.18+: (entryOff, funcOff) uint32 pairs relative to textStart; _func (entryOff, nameOff).
  bool pointers = false;
};

// Checks a pclntab header at file offset `off` (vaddr `vaddr`) whose table must end by `end`.
std::optional<PcHeader> check_header(const ElfFile& elf, uint64_t vaddr, uint64_t off, uint64_t end) {
  uint8_t h[72];
  if (end < off || end - off < sizeof h || !elf.read_exact(off, h, sizeof h)) return std::nullopt;
  uint32_t magic;
  memcpy(&magic, h, 4);
  if ((magic != 0xfffffff0 && magic != 0xfffffff1 && magic != 0xfffffffa) || h[4] != 0 || h[5] != 0 || h[6] != 1 ||
      h[7] != 8)
    return std::nullopt;
  auto u64 = [&](size_t o) {
    uint64_t v;
    memcpy(&v, h + o, 8);
    return v;
  };
  // The five table offsets follow nfunc and nfiles; 1.18 put textStart before them.
  const bool pointers = magic == 0xfffffffa;
  const size_t t = pointers ? 24 : 32;
  const size_t header = pointers ? 64 : 72;
  PcHeader p{vaddr, off, end, u64(8), 0, u64(t), u64(t + 8), u64(t + 32), pointers};
  const uint64_t size = end - off;
  const uint64_t pair = pointers ? 16 : 8;
  // Tables in this order: funcnametab, cutab, filetab, pctab, then functab and the _func records.
  if (p.nfunc == 0 || p.nfunc > kMaxFuncs || p.funcname_off < header || p.funcname_off >= p.cu_off ||
      p.cu_off > u64(t + 16) || u64(t + 16) > u64(t + 24) || u64(t + 24) > p.pcln_off || p.pcln_off > size ||
      (p.nfunc + 1) * pair > size - p.pcln_off)
    return std::nullopt;
  if (pointers) return p;  // entries are absolute: checked one by one where used
  // A pointer: relocated in a PIE (pointer_at reads the relocation's addend).
  auto ts = elf.pointer_at(vaddr + 24);
  if (!ts || !elf.executable(*ts)) return std::nullopt;
  p.text_start = *ts;
  return p;
}

// The header: .gopclntab, else searched for at 8-byte aligned places of the loaded segments
// (a PIE keeps it inside .data.rel.ro), read-only data first.
std::optional<PcHeader> find_header(const ElfFile& elf) {
  if (auto s = elf.section(".gopclntab"))
    if (auto f = elf.file_offset(s->addr); f && *f == s->offset)
      return check_header(elf, s->addr, s->offset, s->offset + s->size);
  auto segs = elf.segments();
  std::stable_partition(segs.begin(), segs.end(), [](const ElfFile::Segment& s) { return !s.exec; });
  constexpr size_t kChunk = 1 << 20;
  std::vector<uint8_t> buf(kChunk);
  uint64_t budget = kMaxScanBytes;
  for (auto& s : segs) {
    if (s.vaddr % 8 != s.offset % 8) continue;
    const uint64_t skew = (8 - s.vaddr % 8) % 8;
    for (uint64_t pos = skew; pos + 8 <= s.filesz && budget > 0;) {
      const size_t n = size_t(std::min<uint64_t>({kChunk, s.filesz - pos, budget}));
      if (!elf.read_exact(s.offset + pos, buf.data(), n)) break;
      budget -= n;
      for (size_t i = 0; i + 8 <= n; i += 8) {
        if (buf[i + 1] != 0xff || buf[i + 2] != 0xff || buf[i + 3] != 0xff ||
            ((buf[i] & 0xfe) != 0xf0 && buf[i] != 0xfa))
          continue;
        if (auto p = check_header(elf, s.vaddr + pos + i, s.offset + pos + i, s.offset + s.filesz)) return p;
      }
      pos += n & ~size_t(7);
      if (n < 8) break;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<GoBuild> go_build(const ElfFile& elf) {
  if (auto s = elf.section(".go.buildinfo")) {
    char b[32 + 10 + 128];
    const size_t n = size_t(std::min<uint64_t>(sizeof b, s->size));
    if (n >= 16 && elf.read_exact(s->offset, b, n) && memcmp(b, kBuildInfoMagic, kBuildInfoMagicLen) == 0 && b[14] == 8) {
      if ((uint8_t(b[15]) & 3) == 0 && n >= 32) return pointed_build_info(elf, s->addr);
      return parse_build_info(std::string_view(b, n));
    }
  }
  // A file with section headers names it (the Go linker and external linkers keep the name); only
  // a file without any (sstrip) has its loaded segments searched for the magic, followed by
  // pointer size 8 and flags using bits 0-1 only (a program that merely contains the text, like
  // this one, is no Go binary). The inline version follows the magic within 170 bytes.
  if (elf.has_sections()) return std::nullopt;
  std::optional<GoBuild> out;
  elf.scan_data(192, [&](std::string_view chunk) {
    for (size_t at = chunk.find(kBuildInfoMagic, 0, kBuildInfoMagicLen); at != std::string_view::npos;
         at = chunk.find(kBuildInfoMagic, at + 1, kBuildInfoMagicLen)) {
      if (chunk.size() - at < 32) continue;  // seen again, whole, in the next overlapping chunk
      if (chunk[at + 14] != 8 || (uint8_t(chunk[at + 15]) & ~3u) != 0) continue;
      out = parse_build_info(chunk.substr(at, 32 + 10 + 128));
      return true;
    }
    return false;
  });
  return out;
}

std::optional<uint64_t> go_func_entry(const ElfFile& elf, std::string_view name, std::string* why, uint64_t* end) {
  why->clear();
  auto h = find_header(elf);
  if (!h) {
    *why = "no Go 1.16+ function table (pclntab) found";
    return std::nullopt;
  }
  // The name's offset in funcnametab: NUL-terminated names, the table starting with one.
  const uint64_t names_lo = h->file_off + h->funcname_off, names_hi = h->file_off + h->cu_off;
  std::string want;
  want.push_back('\0');
  want.append(name);
  want.push_back('\0');
  std::optional<uint64_t> name_off;
  {
    constexpr size_t kChunk = 1 << 20;
    std::vector<char> buf(kChunk);
    for (uint64_t pos = 0; pos < names_hi - names_lo && !name_off;) {
      const size_t n = size_t(std::min<uint64_t>(kChunk, names_hi - names_lo - pos));
      if (!elf.read_exact(names_lo + pos, buf.data(), n)) break;
      std::string_view v(buf.data(), n);
      if (pos == 0 && v.substr(0, want.size() - 1) == std::string_view(want).substr(1)) name_off = 0;
      if (auto at = v.find(want); !name_off && at != std::string_view::npos) name_off = pos + at + 1;
      if (n <= want.size()) break;
      pos += n - want.size();
    }
  }
  if (!name_off) return std::nullopt;  // no such function
  // functab: nfunc (entryoff, funcoff) pairs; each _func starts (entryOff, nameOff). Go 1.16-1.17:
  // (entry, funcoff) pointer pairs; each _func starts (entry, nameOff).
  // Two windows, each moving forward: the pairs, and the _func records they point to (in order).
  Window w(elf, h->file_off, h->end_off), fw(elf, h->file_off, h->end_off);
  const uint64_t ftab = h->file_off + h->pcln_off;
  const uint64_t pair = h->pointers ? 16 : 8;
  // Entry i's address: textStart + entryOff, or (1.16-1.17) the pointer, relocated in a PIE.
  auto entry_at = [&](uint64_t i) -> std::optional<uint64_t> {
    if (!h->pointers) {
      auto e = w.u64(ftab + i * 8);
      return e ? std::optional<uint64_t>(h->text_start + uint32_t(*e)) : std::nullopt;
    }
    return elf.pointer_at(h->vaddr + h->pcln_off + i * 16);
  };
  for (uint64_t i = 0; i < h->nfunc; ++i) {
    auto e = w.u64(ftab + i * pair);
    auto fo = h->pointers ? w.u64(ftab + i * pair + 8) : e;
    if (!e || !fo) {
      *why = "its function table is cut short";
      return std::nullopt;
    }
    const uint64_t func_off = h->pointers ? *fo : uint32_t(*e >> 32);
    if (func_off > h->end_off - ftab) {
      *why = "its function table points outside itself";
      return std::nullopt;
    }
    // The _func's entry (as stored: both the same kind of value) and its nameOff.
    auto f = fw.u64(ftab + func_off);
    auto f_name = h->pointers ? fw.u32(ftab + func_off + 8) : (f ? std::optional<uint32_t>(uint32_t(*f >> 32)) : std::nullopt);
    if (!f || !f_name) {
      *why = "its function table points outside itself";
      return std::nullopt;
    }
    if (*f_name != *name_off) continue;
    if (h->pointers ? *f != *e : uint32_t(*f) != uint32_t(*e)) {
      *why = "its function table is inconsistent";
      return std::nullopt;
    }
    auto entry = entry_at(i);
    if (!entry) {
      *why = "its function table is cut short";
      return std::nullopt;
    }
    const uint64_t vaddr = *entry;
    if (!elf.executable(vaddr)) {
      *why = "the function's entry is not in an executable segment";
      return std::nullopt;
    }
    if (end) {
      // functab has nfunc + 1 entries: the last one's entry is the end of the text.
      auto next = entry_at(i + 1);
      if (!next || *next <= vaddr) {
        *why = "its function table gives no end for the function";
        return std::nullopt;
      }
      *end = *next;
    }
    return vaddr;
  }
  return std::nullopt;
}

std::optional<std::vector<uint64_t>> go_ret_offsets(const ElfFile& elf, uint64_t vaddr, uint64_t end,
                                                    std::string* why) {
  constexpr uint64_t kMaxFunctionBytes = 64 << 10;
  auto fo = elf.file_offset(vaddr);
  if (end <= vaddr || end - vaddr > kMaxFunctionBytes || !fo || !elf.executable(vaddr) || !elf.executable(end - 1) ||
      elf.file_offset(end - 1) != *fo + (end - 1 - vaddr)) {
    *why = "the function is not one piece of code under 64 KiB";
    return std::nullopt;
  }
  std::vector<uint8_t> code(size_t(end - vaddr));
  if (!elf.read_exact(*fo, code.data(), code.size())) {
    *why = "the function's code cannot be read";
    return std::nullopt;
  }
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  std::vector<uint64_t> rets;
  size_t at = 0;
  // Go pads between functions with int3: decoding stops at the first one after the last RET.
  while (at < code.size()) {
    ZydisDecodedInstruction insn;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&dec, nullptr, code.data() + at, code.size() - at, &insn))) {
      *why = "an instruction at +" + std::to_string(at) + " does not decode";
      return std::nullopt;
    }
    if (insn.mnemonic == ZYDIS_MNEMONIC_RET) rets.push_back(*fo + at);
    if (insn.mnemonic == ZYDIS_MNEMONIC_INT3 && !rets.empty()) {
      bool padding = true;  // int3 to the end: padding, not code
      for (size_t k = at; k < code.size() && padding; ++k) padding = code[k] == 0xCC;
      if (padding) break;
    }
    at += insn.length;
  }
  if (rets.empty() || rets.size() > 64) {
    *why = rets.empty() ? "the function has no RET instruction" : "the function has more than 64 RET instructions";
    return std::nullopt;
  }
  return rets;
}

std::optional<uint64_t> go_probe_point(const ElfFile& elf, uint64_t vaddr) {
  auto fo = elf.file_offset(vaddr);
  if (!fo) return std::nullopt;
  uint8_t code[32];
  if (!elf.read_exact(*fo, code, sizeof code)) return *fo;
  ZydisDecoder dec;
  ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  size_t at = 0;
  for (int k = 0; k < 3; ++k) {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code + at, sizeof code - at, &insn, ops))) return *fo;
    const bool lea_r12 = k == 0 && insn.mnemonic == ZYDIS_MNEMONIC_LEA && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
                         ops[0].reg.value == ZYDIS_REGISTER_R12;
    const bool cmp = insn.mnemonic == ZYDIS_MNEMONIC_CMP && ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY &&
                     ops[1].mem.base == ZYDIS_REGISTER_R14 && ops[1].mem.disp.value == 0x10;
    if (insn.meta.category == ZYDIS_CATEGORY_COND_BR) return k > 0 ? *fo + at : *fo;
    if (!lea_r12 && !cmp) return *fo;
    at += insn.length;
  }
  return *fo;
}

}  // namespace ehp::tlsprobe
