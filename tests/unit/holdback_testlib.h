// SPDX-License-Identifier: BSD-2-Clause
// Test helpers for the hold-back and correlator tests: synthetic Ethernet/IPv4/TCP frames that
// carry TLS ClientHello / ServerHello / application-data records, and a Sink that records what
// it is given (copying frames, as the Sink contract requires).
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "correlate/holdback.h"

namespace ehp::testlib {

using Random = std::array<uint8_t, 32>;

inline Random make_random(uint8_t seed) {
  Random r;
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint8_t>(seed * 31 + i * 7 + 1);
  return r;
}

struct Endpoint {
  uint32_t ip;  // host order
  uint16_t port;
};

constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;

// Ethernet + IPv4 + TCP (20-byte header) + payload.
inline std::vector<uint8_t> tcp_frame(Endpoint src, Endpoint dst, uint8_t flags,
                                      std::span<const uint8_t> payload, uint32_t seq = 1) {
  std::vector<uint8_t> f(14 + 20 + 20 + payload.size());
  uint8_t* p = f.data();
  std::memset(p, 0x02, 12);
  p[12] = 0x08;
  p[13] = 0x00;
  uint8_t* ip = p + 14;
  const size_t ip_len = 20 + 20 + payload.size();
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = 6;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(src.ip >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(dst.ip >> (24 - 8 * i));
  }
  uint8_t* tcp = ip + 20;
  tcp[0] = static_cast<uint8_t>(src.port >> 8);
  tcp[1] = static_cast<uint8_t>(src.port);
  tcp[2] = static_cast<uint8_t>(dst.port >> 8);
  tcp[3] = static_cast<uint8_t>(dst.port);
  for (int i = 0; i < 4; ++i) tcp[4 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
  tcp[12] = 5 << 4;
  tcp[13] = flags;
  tcp[14] = 0xff;
  if (!payload.empty()) std::memcpy(tcp + 20, payload.data(), payload.size());
  return f;
}

inline std::vector<uint8_t> udp_frame(Endpoint src, Endpoint dst, size_t payload_len) {
  std::vector<uint8_t> f(14 + 20 + 8 + payload_len, 0xab);
  uint8_t* p = f.data();
  std::memset(p, 0x02, 12);
  p[12] = 0x08;
  p[13] = 0x00;
  uint8_t* ip = p + 14;
  const size_t ip_len = 20 + 8 + payload_len;
  std::memset(ip, 0, 28);
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(ip_len >> 8);
  ip[3] = static_cast<uint8_t>(ip_len);
  ip[8] = 64;
  ip[9] = 17;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(src.ip >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(dst.ip >> (24 - 8 * i));
  }
  uint8_t* udp = ip + 20;
  udp[0] = static_cast<uint8_t>(src.port >> 8);
  udp[1] = static_cast<uint8_t>(src.port);
  udp[2] = static_cast<uint8_t>(dst.port >> 8);
  udp[3] = static_cast<uint8_t>(dst.port);
  udp[4] = static_cast<uint8_t>((8 + payload_len) >> 8);
  udp[5] = static_cast<uint8_t>(8 + payload_len);
  return f;
}

// A TLS handshake record with a ClientHello (type 1) or ServerHello (type 2) carrying `random`.
inline std::vector<uint8_t> hello_record(uint8_t msg_type, const Random& random) {
  std::vector<uint8_t> body;
  body.push_back(3);
  body.push_back(3);  // legacy_version TLS 1.2
  body.insert(body.end(), random.begin(), random.end());
  body.push_back(0);  // session id length
  if (msg_type == 1) {
    body.insert(body.end(), {0x00, 0x02, 0x13, 0x01, 0x01, 0x00});  // suites, compression
  } else {
    body.insert(body.end(), {0x13, 0x01, 0x00});  // suite, compression
  }
  body.insert(body.end(), {0x00, 0x00});  // extensions length
  const size_t hs_len = 4 + body.size();
  std::vector<uint8_t> rec;
  rec.reserve(5 + hs_len);
  for (uint8_t b : {uint8_t{22}, uint8_t{3}, uint8_t{1}, static_cast<uint8_t>(hs_len >> 8),
                    static_cast<uint8_t>(hs_len), msg_type, uint8_t{0},
                    static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())})
    rec.push_back(b);
  for (uint8_t b : body) rec.push_back(b);
  return rec;
}

// A TLS application-data record of `len` opaque bytes, filled with `fill`.
inline std::vector<uint8_t> appdata_record(size_t len, uint8_t fill) {
  std::vector<uint8_t> rec = {23, 3, 3, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
  rec.insert(rec.end(), len, fill);
  return rec;
}

struct Event {
  enum Kind { Packet, Secrets } kind;
  ehp::correlate::PacketMeta meta{};
  std::vector<uint8_t> bytes;
  const uint8_t* data_ptr = nullptr;  // what the sink was handed (zero-copy check)
  std::string lines;
};

class RecordingSink : public ehp::correlate::Sink {
 public:
  void packet(const ehp::correlate::PacketMeta& meta, std::span<const uint8_t> frame) override {
    events.push_back(Event{Event::Packet, meta, {frame.begin(), frame.end()}, frame.data(), {}});
  }
  void secrets(std::string_view lines) override {
    events.push_back(Event{Event::Secrets, {}, {}, nullptr, std::string(lines)});
  }
  std::vector<Event> events;
};

inline ehp::correlate::PacketMeta meta_at(uint64_t ts_ns, size_t len) {
  ehp::correlate::PacketMeta m{};
  m.ts_ns = ts_ns;
  m.linktype = 1;  // Ethernet
  m.wire_len = m.cap_len = static_cast<uint32_t>(len);
  return m;
}

}  // namespace ehp::testlib
