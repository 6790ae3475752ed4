// SPDX-License-Identifier: BSD-2-Clause
// pcapng block encoders: pure functions, no I/O, no allocation.
//
// Each encode_* writes one complete block into a caller-provided buffer and returns the number of
// bytes written, which always equals the matching *_size(), or 0 when the buffer is too small
// (nothing useful is written then). Byte order is the host's (little-endian on every target we
// build for; the SHB's byte-order magic tells readers which).
//
// The layout of every block follows the pcapng spec (draft-ietf-opsawg-pcapng) and the shape of
// Wireshark's wiretap/pcapng.c writers: one function per block, body in the order
//   block type | total length | fixed fields | data | padding to 4 | options | opt_endofopt | total length
// Options are TLVs (u16 code, u16 length, value padded to 4); opt_endofopt is written only when at
// least one option is present.
//
// Block-order rules the caller owns (see docs/facts.md, "Wireshark only decrypts with keys it
// has already read" and "pcapng details that tshark 4.0 shows"):
//   - the SHB comes first, then the IDBs of the interfaces an EPB refers to (interface_id is the
//     IDB's index within the section);
//   - a DSB must precede the first encrypted record of every TLS session it holds keys for,
//     i.e. write it right before that session's ClientHello, or tshark decrypts nothing
//     (proven by tests/e2e/pcapng_tls_decrypt.sh for TLS 1.3 and 1.2);
//   - tcpdump/libpcap 1.10 refuses a section whose IDBs have different linktypes ("an interface
//     has a type 101 different from the type of the first interface"); tshark accepts it.
//     A file meant for both readers keeps one linktype per section (pcapng_readback_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace ehp::pcapng {

// Block type codes (pcapng spec section 11.1).
constexpr uint32_t kBlockShb = 0x0A0D0D0A;
constexpr uint32_t kBlockIdb = 0x00000001;
constexpr uint32_t kBlockNrb = 0x00000004;
constexpr uint32_t kBlockIsb = 0x00000005;
constexpr uint32_t kBlockEpb = 0x00000006;
constexpr uint32_t kBlockDsb = 0x0000000A;
constexpr uint32_t kByteOrderMagic = 0x1A2B3C4D;

// DSB secrets type for an NSS key log ("TLSK").
constexpr uint32_t kDsbTlsKeylog = 0x544c534b;

// Common option codes.
constexpr uint16_t kOptEndOfOpt = 0;
constexpr uint16_t kOptComment = 1;
// SHB options.
constexpr uint16_t kShbHardware = 2;
constexpr uint16_t kShbOs = 3;
constexpr uint16_t kShbUserAppl = 4;
// IDB options.
constexpr uint16_t kIfName = 2;
constexpr uint16_t kIfDescription = 3;
constexpr uint16_t kIfTsresol = 9;
constexpr uint16_t kIfFilter = 11;
// EPB options.
constexpr uint16_t kEpbFlags = 2;
constexpr uint16_t kEpbDropCount = 4;
constexpr uint16_t kEpbPacketId = 5;
constexpr uint16_t kEpbQueue = 6;
constexpr uint16_t kEpbVerdict = 7;
constexpr uint16_t kEpbProcessIdThreadId = 8;
// epb_verdict type byte for an eBPF TC verdict (followed by a u64 TC_ACT_* value).
constexpr uint8_t kVerdictEbpfTc = 1;
// ISB options.
constexpr uint16_t kIsbStartTime = 2;
constexpr uint16_t kIsbEndTime = 3;
constexpr uint16_t kIsbIfRecv = 4;
constexpr uint16_t kIsbIfDrop = 5;
constexpr uint16_t kIsbOsDrop = 7;
constexpr uint16_t kIsbUsrDeliv = 8;

// epb_flags direction bits (bits 0-1).
constexpr uint32_t kFlagInbound = 1;
constexpr uint32_t kFlagOutbound = 2;

// LINKTYPE_* values we write.
constexpr uint16_t kLinktypeEthernet = 1;
constexpr uint16_t kLinktypeRaw = 101;

// Largest option value a TLV can carry (u16 length).
constexpr size_t kMaxOptionBytes = 0xFFFF;

struct ShbInfo {
  std::string_view hardware, os, userappl;  // each omitted when empty
};

struct IdbInfo {
  uint16_t linktype = kLinktypeEthernet;
  uint32_t snaplen = 262144;  // what dumpcap writes
  std::string_view name, description;
  std::string_view filter;  // written as if_filter with first byte 0 (libpcap filter string)
  uint8_t tsresol = 9;      // if_tsresol: 10^-9 s, so every timestamp below is in ns
};

struct EpbInfo {
  uint32_t interface_id = 0;
  uint64_t ts_ns = 0;  // in the IDB's resolution (ns with tsresol 9), Unix epoch
  uint32_t caplen = 0, origlen = 0;
  uint32_t flags = 0;        // epb_flags; 0 = omit. bits0-1: 1 inbound, 2 outbound
  std::string_view comment;  // opt_comment, e.g. "pid=1234 tid=1234 uid=0 comm=curl"; empty = omit
  bool has_pid_tid = false;
  uint32_t pid = 0, tid = 0;  // epb_processid_threadid (option 8)
  bool has_packetid = false;
  uint64_t packetid = 0;
  bool has_queue = false;
  uint32_t queue = 0;
  bool has_dropcount = false;
  uint64_t dropcount = 0;
  bool has_verdict_tc = false;
  uint64_t verdict_tc = 0;  // epb_verdict type byte 1 (eBPF TC) + u64
};

struct IsbInfo {
  uint32_t interface_id = 0;
  uint64_t ts_ns = 0;
  uint64_t starttime_ns = 0, endtime_ns = 0;  // in the IDB's resolution (ns), not µs like dumpcap
  uint64_t ifrecv = 0, ifdrop = 0, osdrop = 0, usrdeliv = 0;
  std::string_view comment;  // opt_comment, e.g. why the interface's statistics end here
};

// Sizes, in bytes, of the complete block (header and trailer included). A string longer than
// kMaxOptionBytes cannot be encoded: its *_size() is still returned but encode_* returns 0.
size_t shb_size(const ShbInfo& info);
size_t encode_shb(std::span<uint8_t> out, const ShbInfo& info);

size_t idb_size(const IdbInfo& info);
size_t encode_idb(std::span<uint8_t> out, const IdbInfo& info);

size_t epb_size(const EpbInfo& info);
// data.size() must equal info.caplen (else 0 is returned).
size_t encode_epb(std::span<uint8_t> out, const EpbInfo& info, std::span<const uint8_t> data);

// The common EPB, inline for the per-packet path: only an epb_flags option (flags != 0).
// Same bytes as encode_epb() with those fields (PcapngGolden.PlainEpbEqualsGeneralEncoder).
constexpr size_t epb_plain_size(uint32_t caplen) {
  return 8 + 20 + ((size_t{caplen} + 3) & ~size_t{3}) + 8 + 4 + 4;
}
// `out` must hold epb_plain_size(caplen) bytes; data must hold caplen bytes.
inline void encode_epb_plain(uint8_t* out, uint32_t interface_id, uint64_t ts_ns, uint32_t caplen,
                             uint32_t origlen, uint32_t flags, const uint8_t* data) {
  const size_t total = epb_plain_size(caplen);
  const size_t padded = (size_t{caplen} + 3) & ~size_t{3};
  auto u32 = [](uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); };
  auto u64 = [](uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); };
  u64(out, uint64_t{kBlockEpb} | uint64_t{total} << 32);
  u64(out + 8, uint64_t{interface_id} | (ts_ns >> 32) << 32);
  u64(out + 16, (ts_ns & 0xffffffffu) | uint64_t{caplen} << 32);
  u32(out + 24, origlen);
  uint8_t* p = out + 28;
  if (padded) {  // (an empty frame may have no data pointer: no memcpy from null)
    u32(p + padded - 4, 0);  // pad first, the copy overwrites what it covers
    std::memcpy(p, data, caplen);
  }
  p += padded;
  u64(p, uint64_t{kEpbFlags} | uint64_t{4} << 16 | uint64_t{flags} << 32);
  u32(p + 8, 0);  // opt_endofopt
  u32(p + 12, uint32_t(total));
}

size_t dsb_size(std::string_view keylog);
size_t encode_dsb(std::span<uint8_t> out, std::string_view keylog);

// A block that carries nothing, exactly n bytes long (n % 4 == 0, n >= 16): a Name Resolution
// Block with no records, and when n > 20 one opt_comment of spaces. Readers skip it (tshark,
// tcpdump, capinfos). The writer uses it to end a partly written 4 KiB disk block on a block
// boundary, so that O_DIRECT can write the tail of the data (uring_writer.h).
size_t encode_filler(std::span<uint8_t> out, size_t n);

size_t isb_size(const IsbInfo& info);
size_t encode_isb(std::span<uint8_t> out, const IsbInfo& info);

// Length of the longest prefix of `bytes` made of complete, well-formed blocks, the first being
// an SHB. Each block's two length fields must agree, be a multiple of 4 and >= 12; the blocks we
// know (SHB, IDB, EPB, DSB, ISB) must have a consistent body (fixed fields fit, option TLVs
// chain exactly to the trailer, EPB/ISB interface_id names an IDB of the current section).
// A little-endian section only (that is all we write). Returns 0 when not even the SHB is whole.
// The writer uses it to truncate to a valid file after ENOSPC; fuzzers use it too.
size_t complete_prefix(std::span<const uint8_t> bytes);

// As complete_prefix, and when it stops before the end, a short static reason (never null).
struct PrefixResult {
  size_t len_bytes = 0;
  size_t blocks = 0;
  const char* stop_reason = "";  // "" when all of `bytes` is complete
};
PrefixResult scan_prefix(std::span<const uint8_t> bytes);

}  // namespace ehp::pcapng
