// SPDX-License-Identifier: BSD-2-Clause
// Frame decoding down to TCP/UDP and TLS hello recognition. Every read goes through
// Reader, which refuses to look past the captured bytes.
#include "net/frame.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace ehp::net {

namespace {

constexpr uint16_t kEthertypeIpv4 = 0x0800;
constexpr uint16_t kEthertypeIpv6 = 0x86dd;
constexpr uint16_t kEthertypeVlan = 0x8100;   // 802.1Q
constexpr uint16_t kEthertypeQinQ = 0x88a8;   // 802.1ad
constexpr int kMaxVlanTags = 2;
constexpr int kMaxIpv6ExtHeaders = 8;  // bounds the walk; real stacks use 0-3

// Bounds-checked big-endian reads over [0, len).
struct Reader {
  const uint8_t* p;
  size_t len;
  bool has(size_t off, size_t n) const { return off <= len && n <= len - off; }
  uint8_t u8(size_t off) const { return p[off]; }
  uint16_t u16(size_t off) const { return static_cast<uint16_t>(p[off] << 8 | p[off + 1]); }
  uint32_t u32(size_t off) const {
    return static_cast<uint32_t>(p[off]) << 24 | static_cast<uint32_t>(p[off + 1]) << 16 |
           static_cast<uint32_t>(p[off + 2]) << 8 | p[off + 3];
  }
};

// Decodes the L4 header at `off`; `end` is where the IP datagram ends within the capture.
bool decode_l4(const Reader& r, size_t off, size_t end, uint8_t proto, FrameInfo& out) {
  out.l4_proto = proto;
  const Reader l4{r.p, end};
  if (proto == IPPROTO_TCP) {
    if (!l4.has(off, 20)) return false;
    const size_t doff_bytes = static_cast<size_t>(l4.u8(off + 12) >> 4) * 4;
    if (doff_bytes < 20 || !l4.has(off, doff_bytes)) return false;
    out.sport = l4.u16(off);
    out.dport = l4.u16(off + 2);
    out.tcp_seq = l4.u32(off + 4);
    out.tcp_flags = l4.u8(off + 13);
    off += doff_bytes;
  } else if (proto == IPPROTO_UDP) {
    if (!l4.has(off, 8)) return false;
    out.sport = l4.u16(off);
    out.dport = l4.u16(off + 2);
    off += 8;
  }
  // Other protocols (ICMP, ...): the "payload" is everything after the IP headers.
  out.l4_payload_offset = static_cast<uint32_t>(off);
  out.l4_payload_len = static_cast<uint32_t>(end - off);
  return true;
}

bool decode_ipv4(const Reader& r, size_t off, FrameInfo& out) {
  if (!r.has(off, 20)) return false;
  const uint8_t vihl = r.u8(off);
  if ((vihl >> 4) != 4) return false;
  const size_t ihl_bytes = static_cast<size_t>(vihl & 0x0f) * 4;
  if (ihl_bytes < 20 || !r.has(off, ihl_bytes)) return false;
  const size_t total_len = r.u16(off + 2);
  // total_len 0 happens for GSO/BIG TCP super-packets seen at TC: trust the capture then.
  // Otherwise clip at total_len so Ethernet padding is not taken for payload.
  size_t end = r.len;
  if (total_len != 0) {
    if (total_len < ihl_bytes) return false;
    end = std::min(r.len, off + total_len);
  }
  out.ip_version = 4;
  std::memcpy(out.src.data(), r.p + off + 12, 4);
  std::memcpy(out.dst.data(), r.p + off + 16, 4);
  const uint8_t proto = r.u8(off + 9);
  const uint16_t frag_offset = r.u16(off + 6) & 0x1fff;
  if (frag_offset != 0) {
    // Only the first fragment carries the L4 header.
    out.l4_proto = proto;
    out.is_fragment = true;
    out.l4_payload_offset = static_cast<uint32_t>(off + ihl_bytes);
    out.l4_payload_len = static_cast<uint32_t>(end - (off + ihl_bytes));
    return true;
  }
  return decode_l4(r, off + ihl_bytes, end, proto, out);
}

bool decode_ipv6(const Reader& r, size_t off, FrameInfo& out) {
  if (!r.has(off, 40)) return false;
  if ((r.u8(off) >> 4) != 6) return false;
  const size_t payload_len = r.u16(off + 4);
  // payload_len 0: jumbogram or BIG TCP super-packet; use what was captured.
  const size_t end = payload_len == 0 ? r.len : std::min(r.len, off + 40 + payload_len);
  out.ip_version = 6;
  std::memcpy(out.src.data(), r.p + off + 8, 16);
  std::memcpy(out.dst.data(), r.p + off + 24, 16);
  uint8_t next = r.u8(off + 6);
  off += 40;
  const Reader ip{r.p, end};
  for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) {
    switch (next) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS: {
        if (!ip.has(off, 8)) return false;
        const size_t hdr_len = (static_cast<size_t>(ip.u8(off + 1)) + 1) * 8;
        if (!ip.has(off, hdr_len)) return false;
        next = ip.u8(off);
        off += hdr_len;
        break;
      }
      case IPPROTO_FRAGMENT: {
        if (!ip.has(off, 8)) return false;
        const uint16_t frag_offset = ip.u16(off + 2) >> 3;
        next = ip.u8(off);
        off += 8;
        if (frag_offset != 0) {
          out.l4_proto = next;
          out.is_fragment = true;
          out.l4_payload_offset = static_cast<uint32_t>(off);
          out.l4_payload_len = static_cast<uint32_t>(end - off);
          return true;
        }
        break;
      }
      case IPPROTO_AH: {
        if (!ip.has(off, 8)) return false;
        const size_t hdr_len = (static_cast<size_t>(ip.u8(off + 1)) + 2) * 4;
        if (!ip.has(off, hdr_len)) return false;
        next = ip.u8(off);
        off += hdr_len;
        break;
      }
      case IPPROTO_NONE:
        out.l4_proto = next;
        out.l4_payload_offset = static_cast<uint32_t>(off);
        out.l4_payload_len = 0;
        return true;
      default:
        return decode_l4(r, off, end, next, out);
    }
  }
  return false;  // absurd chain of extension headers
}

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

bool decode_frame(uint16_t linktype, std::span<const uint8_t> frame, FrameInfo& out) {
  out = FrameInfo{};
  const Reader r{frame.data(), frame.size()};
  size_t off = 0;
  if (linktype == kLinktypeEthernet) {
    if (!r.has(0, 14)) return false;
    uint16_t ethertype = r.u16(12);
    off = 14;
    for (int tags = 0; ethertype == kEthertypeVlan || ethertype == kEthertypeQinQ; ++tags) {
      if (tags == kMaxVlanTags || !r.has(off, 4)) return false;
      ethertype = r.u16(off + 2);
      off += 4;
    }
    if (ethertype == kEthertypeIpv4) return decode_ipv4(r, off, out);
    if (ethertype == kEthertypeIpv6) return decode_ipv6(r, off, out);
    return false;
  }
  if (linktype == kLinktypeRaw) {
    if (!r.has(0, 1)) return false;
    const uint8_t version = r.u8(0) >> 4;
    if (version == 4) return decode_ipv4(r, 0, out);
    if (version == 6) return decode_ipv6(r, 0, out);
    return false;
  }
  return false;
}

FlowKey flow_key(const FrameInfo& f) {
  FlowKey k;
  k.proto = f.l4_proto;
  k.ip_version = f.ip_version;
  // Order the two endpoints so that both directions give the same key.
  const int c = std::memcmp(f.src.data(), f.dst.data(), f.src.size());
  const bool src_first = c < 0 || (c == 0 && f.sport <= f.dport);
  if (src_first) {
    k.a = f.src, k.b = f.dst, k.pa = f.sport, k.pb = f.dport;
  } else {
    k.a = f.dst, k.b = f.src, k.pa = f.dport, k.pb = f.sport;
  }
  return k;
}

size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  // Multiply-xorshift over the fields; FlowKey is already direction-normalised.
  const uint64_t words[] = {
      load64(k.a.data()),
      load64(k.a.data() + 8),
      load64(k.b.data()),
      load64(k.b.data() + 8),
      static_cast<uint64_t>(k.pa) << 32 | static_cast<uint64_t>(k.pb) << 16 |
          static_cast<uint64_t>(k.proto) << 8 | k.ip_version,
  };
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (uint64_t w : words) {
    h ^= w;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
  }
  return static_cast<size_t>(h);
}

TlsHello classify_tls(std::span<const uint8_t> tcp_payload) {
  // TLSPlaintext (RFC 8446 5.1): type(1)=22 handshake, legacy_record_version(2)=3.x,
  // length(2). Handshake (4.): msg_type(1), length(3), then legacy_version(2) and the
  // 32-byte random, i.e. the random sits at handshake offset 6 / payload offset 11.
  constexpr size_t kRecordHeader = 5;
  constexpr size_t kRandomOffset = kRecordHeader + 4 + 2;
  constexpr size_t kNeeded = kRandomOffset + 32;  // 43
  // Smallest legal bodies: ServerHello 2+32+1+2+1+2 = 40, ClientHello 2+32+1+2+2+1+1 = 41.
  constexpr uint32_t kMinHelloBody = 40;
  constexpr uint16_t kMaxRecordLen = (1u << 14) + 2048;  // TLSCiphertext bound, generous

  TlsHello h;
  // TLS 1.3 middlebox compatibility mode (RFC 8446 D.4): after a HelloRetryRequest the
  // client sends a dummy ChangeCipherSpec record and its second ClientHello in one segment,
  // so skip one leading CCS record (14 03 0x 00 01 01).
  if (tcp_payload.size() >= 6 && tcp_payload[0] == 20 && tcp_payload[1] == 3 &&
      tcp_payload[3] == 0 && tcp_payload[4] == 1 && tcp_payload[5] == 1) {
    tcp_payload = tcp_payload.subspan(6);
  }
  const Reader r{tcp_payload.data(), tcp_payload.size()};
  if (!r.has(0, kNeeded)) return h;
  if (r.u8(0) != 22 || r.u8(1) != 3 || r.u8(2) > 4) return h;
  const uint16_t record_len = r.u16(3);
  if (record_len < 4 + kMinHelloBody || record_len > kMaxRecordLen) return h;
  const uint8_t msg_type = r.u8(5);
  if (msg_type != 1 && msg_type != 2) return h;
  // The handshake message may continue in later records (big post-quantum ClientHellos),
  // so its length is not bounded by record_len.
  const uint32_t body_len = static_cast<uint32_t>(r.u8(6)) << 16 | r.u16(7);
  if (body_len < kMinHelloBody) return h;
  if (r.u8(9) != 3 || r.u8(10) > 4) return h;  // legacy_version 3.x
  h.type = msg_type == 1 ? TlsHandshake::ClientHello : TlsHandshake::ServerHello;
  std::memcpy(h.random.data(), r.p + kRandomOffset, 32);
  return h;
}

bool is_hello_retry_request(const TlsHello& h) {
  // SHA-256("HelloRetryRequest"), RFC 8446 4.1.3.
  static constexpr std::array<uint8_t, 32> kHrrRandom = {
      0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
      0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};
  return h.type == TlsHandshake::ServerHello && h.random == kHrrRandom;
}

size_t ClientRandomHash::operator()(const std::array<uint8_t, 32>& r) const noexcept {
  // Client randoms come off the wire, so they can be chosen to collide: mix all 32 bytes with
  // a per-process seed instead of trusting any 8 of them to be random.
  static const uint64_t seed = [] {
    std::random_device rd;
    return (uint64_t{rd()} << 32) | rd();
  }();
  uint64_t h = seed;
  for (size_t i = 0; i < r.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, r.data() + i, sizeof w);
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
  }
  return static_cast<size_t>(h);
}

}  // namespace ehp::net
