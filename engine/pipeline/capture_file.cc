// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/capture_file.h"

#include <byteswap.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ehp::pipeline {
namespace {

constexpr uint32_t kPcapMagicUs = 0xa1b2c3d4, kPcapMagicNs = 0xa1b23c4d;
constexpr uint32_t kShb = 0x0A0D0D0A, kIdb = 1, kPb = 2, kSpb = 3, kEpb = 6, kDsb = 10;
constexpr uint32_t kBom = 0x1A2B3C4D;
constexpr uint32_t kTlsKeyLog = 0x544c534b;
constexpr size_t kMaxInterfaces = 65536;

std::string at(uint64_t off) { return "at byte " + std::to_string(off); }

uint64_t saturate(unsigned __int128 v) { return v > UINT64_MAX ? UINT64_MAX : uint64_t(v); }

}  // namespace

std::unique_ptr<CaptureFileReader> CaptureFileReader::open(const std::string& path, std::string* err) {
  std::unique_ptr<CaptureFileReader> r(new CaptureFileReader());
  r->path_ = path;
  r->f_ = fopen(path.c_str(), "rbe");
  if (!r->f_) {
    *err = "cannot read " + path + ": " + strerror(errno);
    return nullptr;
  }
  uint8_t m[4];
  size_t got = 0;
  if (!r->read_exact(m, 4, &got)) {
    *err = "cannot read " + path + ": not a pcap or pcapng file (too short)";
    return nullptr;
  }
  uint32_t magic;
  memcpy(&magic, m, 4);
  if (magic == kShb) {
    r->pcapng_ = true;
    r->off_ = 0;  // next_pcapng() reads the SHB again from its start
    if (fseeko(r->f_, 0, SEEK_SET) != 0) {
      *err = "cannot read " + path + ": " + strerror(errno);
      return nullptr;
    }
    return r;
  }
  if (magic == kPcapMagicUs || magic == kPcapMagicNs) {
    r->nano_ = magic == kPcapMagicNs;
  } else if (bswap_32(magic) == kPcapMagicUs || bswap_32(magic) == kPcapMagicNs) {
    r->swapped_ = true;
    r->nano_ = bswap_32(magic) == kPcapMagicNs;
  } else {
    *err = "cannot read " + path + ": not a pcap or pcapng file";
    return nullptr;
  }
  uint8_t h[20];
  if (!r->read_exact(h, sizeof h, &got)) {
    *err = "cannot read " + path + ": the pcap file header is cut short";
    return nullptr;
  }
  r->ifaces_.push_back({uint16_t(r->u32(h + 16) & 0xffff), ""});
  return r;
}

CaptureFileReader::~CaptureFileReader() {
  if (f_) fclose(f_);
}

bool CaptureFileReader::read_exact(void* p, size_t n, size_t* got) {
  *got = n ? fread(p, 1, n, f_) : 0;
  off_ += *got;
  return *got == n;
}

uint32_t CaptureFileReader::u32(const uint8_t* p) const {
  uint32_t v;
  memcpy(&v, p, 4);
  return swapped_ ? bswap_32(v) : v;
}

uint16_t CaptureFileReader::u16(const uint8_t* p) const {
  uint16_t v;
  memcpy(&v, p, 2);
  return swapped_ ? bswap_16(v) : v;
}

int CaptureFileReader::next(CaptureRecord* rec, std::string* err) {
  if (truncated_at_ >= 0) return 0;
  // A damaged file stays damaged: what follows the bad record is not read as records.
  if (!damaged_.empty()) {
    *err = damaged_;
    return -1;
  }
  const int rc = pcapng_ ? next_pcapng(rec, err) : next_pcap(rec, err);
  if (rc < 0) damaged_ = err->empty() ? "damaged file" : *err;
  return rc;
}

int CaptureFileReader::next_pcap(CaptureRecord* rec, std::string* err) {
  const uint64_t start = off_;
  uint8_t h[16];
  size_t got = 0;
  if (!read_exact(h, sizeof h, &got)) {
    if (got == 0 && !ferror(f_)) return 0;
    if (ferror(f_)) {
      *err = "reading " + path_ + ": " + strerror(errno);
      return -1;
    }
    truncated_at_ = int64_t(start);
    return 0;
  }
  const uint32_t sec = u32(h), frac = u32(h + 4), caplen = u32(h + 8), len = u32(h + 12);
  if (caplen > kMaxBlockBytes) {
    *err = path_ + ": record " + at(start) + " claims " + std::to_string(caplen) + " captured bytes (damaged file)";
    return -1;
  }
  buf_.resize(caplen);
  if (!read_exact(buf_.data(), caplen, &got)) {
    if (ferror(f_)) {
      *err = "reading " + path_ + ": " + strerror(errno);
      return -1;
    }
    truncated_at_ = int64_t(start);
    return 0;
  }
  rec->kind = CaptureRecord::Kind::Packet;
  rec->interface_id = 0;
  // The seconds are unsigned 32-bit (good until 2106), never sign-extended.
  rec->ts_ns = uint64_t(sec) * 1'000'000'000ull + uint64_t(frac) * (nano_ ? 1 : 1000);
  rec->wire_len = std::max(len, caplen);
  rec->data = std::span<const uint8_t>(buf_.data(), caplen);
  return 1;
}

bool CaptureFileReader::parse_idb(std::span<const uint8_t> b, std::string* err) {
  if (b.size() < 8) {
    *err = "interface description block too short";
    return false;
  }
  if (ifaces_.size() >= kMaxInterfaces) {
    *err = "more than " + std::to_string(kMaxInterfaces) + " interfaces";
    return false;
  }
  CaptureFileInterface ifc;
  ifc.linktype = u16(b.data());
  SectionIf s{uint32_t(ifaces_.size()), false, 6, 0};
  size_t o = 8;
  while (o + 4 <= b.size()) {
    const uint16_t code = u16(b.data() + o), len = u16(b.data() + o + 2);
    o += 4;
    if (code == 0) break;
    if (len > b.size() - o) {
      *err = "interface option runs past its block";
      return false;
    }
    const uint8_t* v = b.data() + o;
    if (code == 9 && len >= 1) {
      s.binary_res = v[0] & 0x80;
      s.res = v[0] & 0x7f;
    } else if (code == 14 && len >= 8) {
      uint64_t x;
      memcpy(&x, v, 8);
      if (swapped_) x = bswap_64(x);
      s.offset_s = int64_t(x);
    } else if (code == 2) {
      // Printable ASCII only, as a name the output's IDB can carry.
      for (uint16_t i = 0; i < len && i < 64 && v[i]; ++i) ifc.name += (v[i] >= 0x20 && v[i] < 0x7f) ? char(v[i]) : '_';
    }
    o += (size_t(len) + 3) & ~size_t(3);
  }
  section_.push_back(s);
  ifaces_.push_back(std::move(ifc));
  return true;
}

int CaptureFileReader::next_pcapng(CaptureRecord* rec, std::string* err) {
  for (;;) {
    const uint64_t start = off_;
    uint8_t h[12];
    size_t got = 0;
    if (!read_exact(h, 8, &got)) {
      if (ferror(f_)) {
        *err = "reading " + path_ + ": " + strerror(errno);
        return -1;
      }
      if (got == 0) return 0;
      truncated_at_ = int64_t(start);
      return 0;
    }
    uint32_t type;
    memcpy(&type, h, 4);
    size_t head = 8;
    if (type == kShb) {
      // The byte order of a section is in its header: read it before trusting any length.
      if (!read_exact(h + 8, 4, &got)) {
        truncated_at_ = int64_t(start);
        return 0;
      }
      uint32_t bom;
      memcpy(&bom, h + 8, 4);
      if (bom == kBom) swapped_ = false;
      else if (bom == bswap_32(kBom)) swapped_ = true;
      else {
        *err = path_ + ": section header " + at(start) + " has an unknown byte order mark (damaged file)";
        return -1;
      }
      head = 12;
    } else {
      type = u32(h);
      if (start == 0) {
        *err = path_ + ": does not start with a section header block";
        return -1;
      }
    }
    const uint32_t len = u32(h + 4);
    if (len < head + 4 || len > kMaxBlockBytes) {
      *err = path_ + ": block " + at(start) + " has an impossible length " + std::to_string(len) + " (damaged file)";
      return -1;
    }
    buf_.resize(len - head);
    if (!read_exact(buf_.data(), len - head, &got)) {
      if (ferror(f_)) {
        *err = "reading " + path_ + ": " + strerror(errno);
        return -1;
      }
      truncated_at_ = int64_t(start);
      return 0;
    }
    if (u32(buf_.data() + buf_.size() - 4) != len) {
      *err = path_ + ": block " + at(start) + " ends with a length that differs from its start (damaged file)";
      return -1;
    }
    std::span<const uint8_t> body(buf_.data(), buf_.size() - 4);
    auto bad = [&](const char* what) {
      *err = path_ + ": block " + at(start) + ": " + what + " (damaged file)";
      return -1;
    };
    auto ts_of = [&](const SectionIf& s, uint32_t hi, uint32_t lo) {
      const uint64_t t = (uint64_t(hi) << 32) | lo;
      unsigned __int128 ns;
      if (s.binary_res) ns = (static_cast<unsigned __int128>(t) * 1'000'000'000u) >> std::min<int>(s.res, 127);
      else if (s.res <= 9) {
        uint64_t mul = 1;
        for (int i = s.res; i < 9; ++i) mul *= 10;
        ns = static_cast<unsigned __int128>(t) * mul;
      } else {
        unsigned __int128 div = 1;
        for (int i = 9; i < s.res && i < 40; ++i) div *= 10;
        ns = s.res - 9 > 30 ? 0 : t / div;
      }
      const __int128 with_offset = static_cast<__int128>(ns) + static_cast<__int128>(s.offset_s) * 1'000'000'000;
      return with_offset < 0 ? uint64_t(0) : saturate(static_cast<unsigned __int128>(with_offset));
    };
    switch (type) {
      case kShb: {
        if (body.size() < 12) return bad("section header too short");
        if (u16(body.data()) != 1) return bad("unsupported pcapng major version");
        section_.clear();
        continue;
      }
      case kIdb: {
        std::string e;
        if (!parse_idb(body, &e)) return bad(e.c_str());
        continue;
      }
      case kEpb:
      case kPb: {
        if (body.size() < 20) return bad("packet block too short");
        const uint32_t ifid = type == kEpb ? u32(body.data()) : u16(body.data());
        const uint32_t caplen = u32(body.data() + 12), wire = u32(body.data() + 16);
        if (ifid >= section_.size()) return bad("packet of an interface not described before it");
        if (caplen > body.size() - 20) return bad("captured length runs past the block");
        const auto& s = section_[ifid];
        rec->kind = CaptureRecord::Kind::Packet;
        rec->interface_id = s.global_id;
        rec->ts_ns = ts_of(s, u32(body.data() + 4), u32(body.data() + 8));
        last_ts_ns_ = rec->ts_ns;
        rec->wire_len = std::max(wire, caplen);
        rec->data = body.subspan(20, caplen);
        return 1;
      }
      case kSpb: {
        if (body.size() < 4) return bad("simple packet block too short");
        if (section_.empty()) return bad("packet of an interface not described before it");
        const uint32_t wire = u32(body.data());
        const uint32_t caplen = std::min<uint32_t>(wire, uint32_t(body.size() - 4));
        rec->kind = CaptureRecord::Kind::Packet;
        rec->interface_id = section_[0].global_id;
        rec->ts_ns = last_ts_ns_;  // a simple packet block has no time: keep the order
        rec->wire_len = wire;
        rec->data = body.subspan(4, caplen);
        return 1;
      }
      case kDsb: {
        if (body.size() < 8) return bad("decryption secrets block too short");
        const uint32_t stype = u32(body.data()), slen = u32(body.data() + 4);
        if (slen > body.size() - 8) return bad("secrets length runs past the block");
        if (stype != kTlsKeyLog) continue;  // WireGuard, ZigBee...: not keys this pipeline uses
        rec->kind = CaptureRecord::Kind::TlsKeyLog;
        rec->interface_id = 0;
        rec->ts_ns = last_ts_ns_;
        rec->wire_len = slen;
        rec->data = body.subspan(8, slen);
        return 1;
      }
      default:
        continue;  // name resolution, statistics, custom blocks: not replayed
    }
  }
}

}  // namespace ehp::pipeline
