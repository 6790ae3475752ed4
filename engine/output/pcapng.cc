// SPDX-License-Identifier: BSD-2-Clause
// pcapng block encoders. See pcapng.h for the layout rules; section numbers below refer to
// draft-ietf-opsawg-pcapng (the pcapng spec). Every store goes through memcpy so that the
// caller's buffer need not be aligned.
#include "output/pcapng.h"

#include <bit>
#include <cstring>
#include <limits>

namespace ehp::pcapng {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the encoders write host order and the SHB magic says little-endian");

constexpr size_t kHeaderBytes = 8;   // block type + block total length
constexpr size_t kTrailerBytes = 4;  // block total length again
constexpr size_t kOptHeaderBytes = 4;
constexpr size_t kEndOfOptBytes = 4;

constexpr size_t pad4(size_t n) { return (n + 3) & ~size_t{3}; }
constexpr size_t opt_size(size_t value_bytes) { return kOptHeaderBytes + pad4(value_bytes); }
// A string option costs nothing when empty (it is omitted).
constexpr size_t str_opt_size(std::string_view s) { return s.empty() ? 0 : opt_size(s.size()); }

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void put_u32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void put_u64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t get_u16(const uint8_t* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t get_u32(const uint8_t* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }

inline uint8_t* put_opt_header(uint8_t* p, uint16_t code, uint16_t len) {
  put_u16(p, code);
  put_u16(p + 2, len);
  return p + kOptHeaderBytes;
}

// Copies `n` bytes and zero-fills up to the next multiple of 4. The pad word is stored first
// and then overwritten by the copy, which avoids a variable-length memset.
inline uint8_t* put_padded(uint8_t* p, const void* src, size_t n) {
  if (n == 0) return p;
  const size_t padded = pad4(n);
  put_u32(p + padded - 4, 0);
  std::memcpy(p, src, n);
  return p + padded;
}

inline uint8_t* put_str_opt(uint8_t* p, uint16_t code, std::string_view s) {
  if (s.empty()) return p;
  p = put_opt_header(p, code, static_cast<uint16_t>(s.size()));
  return put_padded(p, s.data(), s.size());
}

inline uint8_t* put_u32_opt(uint8_t* p, uint16_t code, uint32_t v) {
  p = put_opt_header(p, code, 4);
  put_u32(p, v);
  return p + 4;
}

inline uint8_t* put_u64_opt(uint8_t* p, uint16_t code, uint64_t v) {
  p = put_opt_header(p, code, 8);
  put_u64(p, v);
  return p + 8;
}

// Timestamps (EPB fixed fields, isb_starttime/endtime) are two u32: high word first (section 4.3).
inline uint8_t* put_ts(uint8_t* p, uint64_t ts) {
  put_u32(p, static_cast<uint32_t>(ts >> 32));
  put_u32(p + 4, static_cast<uint32_t>(ts));
  return p + 8;
}

inline uint8_t* put_ts_opt(uint8_t* p, uint16_t code, uint64_t ts) {
  p = put_opt_header(p, code, 8);
  return put_ts(p, ts);
}

inline uint8_t* put_end_of_opt(uint8_t* p) {
  put_u32(p, 0);  // code 0, length 0
  return p + kEndOfOptBytes;
}

inline uint8_t* put_block_header(uint8_t* p, uint32_t type, size_t total) {
  put_u32(p, type);
  put_u32(p + 4, static_cast<uint32_t>(total));
  return p + kHeaderBytes;
}

inline bool too_long(std::string_view s) { return s.size() > kMaxOptionBytes; }
inline bool fits(std::span<uint8_t> out, size_t total) {
  return total <= out.size() && total <= std::numeric_limits<uint32_t>::max();
}

// ---- SHB (section 4.1): magic, major 1, minor 0, section length -1 (unknown) ----
constexpr size_t kShbFixedBytes = 4 + 2 + 2 + 8;

size_t shb_opts_size(const ShbInfo& i) {
  const size_t s = str_opt_size(i.hardware) + str_opt_size(i.os) + str_opt_size(i.userappl);
  return s ? s + kEndOfOptBytes : 0;
}

// ---- IDB (section 4.2): linktype, reserved, snaplen ----
constexpr size_t kIdbFixedBytes = 2 + 2 + 4;

size_t idb_opts_size(const IdbInfo& i) {
  // if_filter carries one type byte (0 = libpcap filter string) before the string.
  const size_t filter = i.filter.empty() ? 0 : opt_size(1 + i.filter.size());
  // if_tsresol is always written: the default (10^-6) would misread our ns timestamps.
  return str_opt_size(i.name) + str_opt_size(i.description) + filter + opt_size(1) + kEndOfOptBytes;
}

// ---- EPB (section 4.3): interface id, ts high, ts low, caplen, origlen ----
constexpr size_t kEpbFixedBytes = 5 * 4;
constexpr size_t kVerdictTcBytes = 1 + 8;

inline size_t epb_opts_size(const EpbInfo& i) {
  size_t s = 0;
  s += i.flags ? opt_size(4) : 0;
  s += str_opt_size(i.comment);
  s += i.has_pid_tid ? opt_size(8) : 0;
  s += i.has_packetid ? opt_size(8) : 0;
  s += i.has_queue ? opt_size(4) : 0;
  s += i.has_dropcount ? opt_size(8) : 0;
  s += i.has_verdict_tc ? opt_size(kVerdictTcBytes) : 0;
  return s ? s + kEndOfOptBytes : 0;
}

// ---- DSB (section 4.7): secrets type, secrets length ----
constexpr size_t kDsbFixedBytes = 4 + 4;

// ---- ISB (section 4.6): interface id, ts high, ts low ----
constexpr size_t kIsbFixedBytes = 4 + 8;
constexpr size_t kIsbOptsBytes = 6 * opt_size(8) + kEndOfOptBytes;

}  // namespace

size_t shb_size(const ShbInfo& info) {
  return kHeaderBytes + kShbFixedBytes + shb_opts_size(info) + kTrailerBytes;
}

size_t encode_shb(std::span<uint8_t> out, const ShbInfo& info) {
  const size_t total = shb_size(info);
  if (!fits(out, total) || too_long(info.hardware) || too_long(info.os) || too_long(info.userappl))
    return 0;
  uint8_t* p = put_block_header(out.data(), kBlockShb, total);
  put_u32(p, kByteOrderMagic);
  put_u16(p + 4, 1);  // major
  put_u16(p + 6, 0);  // minor
  put_u64(p + 8, ~uint64_t{0});  // section length not known: we stream
  p += kShbFixedBytes;
  if (shb_opts_size(info)) {
    p = put_str_opt(p, kShbHardware, info.hardware);
    p = put_str_opt(p, kShbOs, info.os);
    p = put_str_opt(p, kShbUserAppl, info.userappl);
    p = put_end_of_opt(p);
  }
  put_u32(p, static_cast<uint32_t>(total));
  return total;
}

size_t idb_size(const IdbInfo& info) {
  return kHeaderBytes + kIdbFixedBytes + idb_opts_size(info) + kTrailerBytes;
}

size_t encode_idb(std::span<uint8_t> out, const IdbInfo& info) {
  const size_t total = idb_size(info);
  if (!fits(out, total) || too_long(info.name) || too_long(info.description) ||
      info.filter.size() + 1 > kMaxOptionBytes)
    return 0;
  uint8_t* p = put_block_header(out.data(), kBlockIdb, total);
  put_u16(p, info.linktype);
  put_u16(p + 2, 0);  // reserved
  put_u32(p + 4, info.snaplen);
  p += kIdbFixedBytes;
  p = put_str_opt(p, kIfName, info.name);
  p = put_str_opt(p, kIfDescription, info.description);
  if (!info.filter.empty()) {
    const size_t len = 1 + info.filter.size();
    p = put_opt_header(p, kIfFilter, static_cast<uint16_t>(len));
    put_u32(p + pad4(len) - 4, 0);
    p[0] = 0;  // filter type 0: libpcap filter string
    std::memcpy(p + 1, info.filter.data(), info.filter.size());
    p += pad4(len);
  }
  p = put_opt_header(p, kIfTsresol, 1);
  put_u32(p, 0);
  p[0] = info.tsresol;
  p += 4;
  p = put_end_of_opt(p);
  put_u32(p, static_cast<uint32_t>(total));
  return total;
}

size_t epb_size(const EpbInfo& info) {
  return kHeaderBytes + kEpbFixedBytes + pad4(info.caplen) + epb_opts_size(info) + kTrailerBytes;
}

size_t encode_epb(std::span<uint8_t> out, const EpbInfo& info, std::span<const uint8_t> data) {
  const size_t opts = epb_opts_size(info);
  const size_t total = kHeaderBytes + kEpbFixedBytes + pad4(info.caplen) + opts + kTrailerBytes;
  if (!fits(out, total) || data.size() != info.caplen || too_long(info.comment)) [[unlikely]]
    return 0;
  uint8_t* p = out.data();
  // Header and fixed fields as three u64 stores and one u32 straight into the output. (Building
  // them in a stack array first cost a store-forwarding stall: u32 stores reloaded as 16 bytes.)
  const uint64_t ts_hi = info.ts_ns >> 32, ts_lo = info.ts_ns & 0xffffffffu;
  put_u64(p, uint64_t{kBlockEpb} | uint64_t{total} << 32);
  put_u64(p + 8, uint64_t{info.interface_id} | ts_hi << 32);
  put_u64(p + 16, ts_lo | uint64_t{info.caplen} << 32);
  put_u32(p + 24, info.origlen);
  p = put_padded(p + kHeaderBytes + kEpbFixedBytes, data.data(), data.size());
  if (opts) {
    if (info.flags) p = put_u32_opt(p, kEpbFlags, info.flags);
    p = put_str_opt(p, kOptComment, info.comment);
    if (info.has_pid_tid) {
      p = put_opt_header(p, kEpbProcessIdThreadId, 8);
      put_u32(p, info.pid);
      put_u32(p + 4, info.tid);
      p += 8;
    }
    if (info.has_packetid) p = put_u64_opt(p, kEpbPacketId, info.packetid);
    if (info.has_queue) p = put_u32_opt(p, kEpbQueue, info.queue);
    if (info.has_dropcount) p = put_u64_opt(p, kEpbDropCount, info.dropcount);
    if (info.has_verdict_tc) {
      p = put_opt_header(p, kEpbVerdict, kVerdictTcBytes);
      put_u32(p + 8, 0);  // pad word first: the value is 9 bytes, padded to 12
      p[0] = kVerdictEbpfTc;
      put_u64(p + 1, info.verdict_tc);
      p += pad4(kVerdictTcBytes);
    }
    p = put_end_of_opt(p);
  }
  put_u32(p, static_cast<uint32_t>(total));
  return total;
}

size_t dsb_size(std::string_view keylog) {
  return kHeaderBytes + kDsbFixedBytes + pad4(keylog.size()) + kTrailerBytes;
}

size_t encode_dsb(std::span<uint8_t> out, std::string_view keylog) {
  const size_t total = dsb_size(keylog);
  if (!fits(out, total)) return 0;
  uint8_t* p = put_block_header(out.data(), kBlockDsb, total);
  put_u32(p, kDsbTlsKeylog);
  put_u32(p + 4, static_cast<uint32_t>(keylog.size()));
  p = put_padded(p + kDsbFixedBytes, keylog.data(), keylog.size());
  put_u32(p, static_cast<uint32_t>(total));
  return total;
}

size_t encode_filler(std::span<uint8_t> out, size_t n) {
  // One comment TLV holds at most 65535 bytes; the writer needs at most ~8 KiB.
  if (n < 16 || n % 4 != 0 || n > 16 + 8 + 0xFFFC || !fits(out, n)) return 0;
  uint8_t* p = put_block_header(out.data(), kBlockNrb, n);
  put_u32(p, 0);  // nrb_record_end (type 0, length 0)
  p += 4;
  const size_t opts = n - 16;  // bytes between the record list and the trailer
  if (opts >= 8) {
    const size_t value = opts - 8;  // one comment TLV + opt_endofopt
    p = put_opt_header(p, kOptComment, static_cast<uint16_t>(value));
    std::memset(p, ' ', value);
    p += value;
  }
  if (opts >= 4) p = put_end_of_opt(p);
  put_u32(p, static_cast<uint32_t>(n));
  return n;
}

size_t isb_size(const IsbInfo& info) {
  return kHeaderBytes + kIsbFixedBytes + kIsbOptsBytes + str_opt_size(info.comment) + kTrailerBytes;
}

size_t encode_isb(std::span<uint8_t> out, const IsbInfo& info) {
  const size_t total = isb_size(info);
  if (!fits(out, total) || too_long(info.comment)) return 0;
  uint8_t* p = put_block_header(out.data(), kBlockIsb, total);
  put_u32(p, info.interface_id);
  p = put_ts(p + 4, info.ts_ns);
  p = put_ts_opt(p, kIsbStartTime, info.starttime_ns);
  p = put_ts_opt(p, kIsbEndTime, info.endtime_ns);
  p = put_u64_opt(p, kIsbIfRecv, info.ifrecv);
  p = put_u64_opt(p, kIsbIfDrop, info.ifdrop);
  p = put_u64_opt(p, kIsbOsDrop, info.osdrop);
  p = put_u64_opt(p, kIsbUsrDeliv, info.usrdeliv);
  p = put_str_opt(p, kOptComment, info.comment);
  p = put_end_of_opt(p);
  put_u32(p, static_cast<uint32_t>(total));
  return total;
}

// ---- reading back: complete_prefix ----
namespace {

// Fixed option lengths the spec prescribes for the codes we write; 0 = any length.
// A reader such as tshark flags a wrong length as malformed, so we do too.
size_t fixed_opt_len(uint32_t block_type, uint16_t code) {
  switch (block_type) {
    case kBlockIdb:
      return code == kIfTsresol ? 1 : 0;
    case kBlockEpb:
      switch (code) {
        case kEpbFlags: case kEpbQueue: return 4;
        case kEpbDropCount: case kEpbPacketId: case kEpbProcessIdThreadId: return 8;
        default: return 0;
      }
    case kBlockIsb:
      return (code >= kIsbStartTime && code <= kIsbUsrDeliv) ? 8 : 0;
    default:
      return 0;
  }
}

// Checks that the option TLVs in opts chain to its end (or to an opt_endofopt).
const char* check_options(uint32_t block_type, const uint8_t* opts, size_t n) {
  size_t off = 0;
  while (off < n) {
    if (n - off < kOptHeaderBytes) return "option header truncated";
    const uint16_t code = get_u16(opts + off);
    const uint16_t len = get_u16(opts + off + 2);
    if (code == kOptEndOfOpt) return len == 0 ? nullptr : "opt_endofopt with a length";
    if (opt_size(len) > n - off) return "option overruns its block";
    const size_t want = fixed_opt_len(block_type, code);
    if (want && len != want) return "option has the wrong length";
    off += opt_size(len);
  }
  return nullptr;
}

}  // namespace

PrefixResult scan_prefix(std::span<const uint8_t> bytes) {
  PrefixResult r;
  const uint8_t* b = bytes.data();
  const size_t n = bytes.size();
  size_t pos = 0;
  uint32_t interfaces = 0;  // IDBs seen in the current section
  bool have_shb = false;
  const char* why = nullptr;
  while (pos < n) {
    if (n - pos < kHeaderBytes + kTrailerBytes) { why = "block header truncated"; break; }
    const uint32_t type = get_u32(b + pos);
    const uint32_t len = get_u32(b + pos + 4);
    if (len < kHeaderBytes + kTrailerBytes || len % 4) { why = "bad block length"; break; }
    if (len > n - pos) { why = "block truncated"; break; }
    if (get_u32(b + pos + len - 4) != len) { why = "block lengths differ"; break; }
    if (!have_shb && type != kBlockShb) { why = "first block is not an SHB"; break; }
    const uint8_t* body = b + pos + kHeaderBytes;
    const size_t body_len = len - kHeaderBytes - kTrailerBytes;
    size_t opts_off = 0;  // where the options start in body; body_len = no options to check
    switch (type) {
      case kBlockShb:
        if (body_len < kShbFixedBytes) { why = "SHB too short"; break; }
        if (get_u32(body) != kByteOrderMagic) { why = "SHB is not a little-endian section"; break; }
        if (get_u16(body + 4) != 1) { why = "SHB major version is not 1"; break; }
        interfaces = 0;
        have_shb = true;
        opts_off = kShbFixedBytes;
        break;
      case kBlockIdb:
        if (body_len < kIdbFixedBytes) { why = "IDB too short"; break; }
        ++interfaces;
        opts_off = kIdbFixedBytes;
        break;
      case kBlockEpb: {
        if (body_len < kEpbFixedBytes) { why = "EPB too short"; break; }
        if (get_u32(body) >= interfaces) { why = "EPB names an interface with no IDB"; break; }
        const size_t data = pad4(get_u32(body + 12));
        if (data > body_len - kEpbFixedBytes) { why = "EPB data overruns its block"; break; }
        opts_off = kEpbFixedBytes + data;
        break;
      }
      case kBlockDsb: {
        if (body_len < kDsbFixedBytes) { why = "DSB too short"; break; }
        const size_t data = pad4(get_u32(body + 4));
        if (data > body_len - kDsbFixedBytes) { why = "DSB secrets overrun its block"; break; }
        opts_off = kDsbFixedBytes + data;
        break;
      }
      case kBlockIsb:
        if (body_len < kIsbFixedBytes) { why = "ISB too short"; break; }
        if (get_u32(body) >= interfaces) { why = "ISB names an interface with no IDB"; break; }
        opts_off = kIsbFixedBytes;
        break;
      default:
        // Other block types (SPB, NRB, custom...) are accepted on their framing alone.
        opts_off = body_len;
        break;
    }
    if (!why) why = check_options(type, body + opts_off, body_len - opts_off);
    if (why) break;
    pos += len;
    ++r.blocks;
  }
  r.len_bytes = pos;
  r.stop_reason = why ? why : "";
  return r;
}

size_t complete_prefix(std::span<const uint8_t> bytes) { return scan_prefix(bytes).len_bytes; }

}  // namespace ehp::pcapng
