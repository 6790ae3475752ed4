// SPDX-License-Identifier: BSD-2-Clause
// Decoding of captured frames down to TCP/UDP and recognition of TLS handshakes.
// Pure code, no allocation; every read is bounds-checked against the captured bytes.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace ehp::net {

// pcap LINKTYPE_* values used here.
constexpr uint16_t kLinktypeEthernet = 1;
constexpr uint16_t kLinktypeRaw = 101;  // starts at the IPv4/IPv6 header

struct FrameInfo {
  uint8_t ip_version = 0;  // 4 or 6, 0 if not IP
  uint8_t l4_proto = 0;    // IPPROTO_TCP / IPPROTO_UDP / ...
  bool is_fragment = false;  // non-first fragment: no L4 header
  std::array<uint8_t, 16> src{};  // IPv4 in the first 4 bytes
  std::array<uint8_t, 16> dst{};
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;
  uint32_t tcp_seq = 0;
  uint32_t l4_payload_offset = 0;  // offset of the TCP/UDP payload in the frame
  uint32_t l4_payload_len = 0;     // payload bytes present in the captured frame
};

// Decodes Ethernet (with up to two VLAN tags) or raw IP. Returns false for non-IP frames
// or truncated headers.
bool decode_frame(uint16_t linktype, std::span<const uint8_t> frame, FrameInfo& out);

// Direction-independent flow identity: both directions of a connection map to the same key.
struct FlowKey {
  std::array<uint8_t, 16> a{}, b{};
  uint16_t pa = 0, pb = 0;
  uint8_t proto = 0, ip_version = 0;
  bool operator==(const FlowKey&) const = default;
};
FlowKey flow_key(const FrameInfo& f);
// A ClientHello random as a hash key. Randoms come off the wire and can be chosen to collide:
// all 32 bytes are mixed with a per-process seed instead of trusting any 8 of them.
struct ClientRandomHash {
  size_t operator()(const std::array<uint8_t, 32>& r) const noexcept;
};

struct FlowKeyHash {
  size_t operator()(const FlowKey& k) const noexcept;
};

enum class TlsHandshake : uint8_t { None, ClientHello, ServerHello };
struct TlsHello {
  TlsHandshake type = TlsHandshake::None;
  std::array<uint8_t, 32> random{};  // client_random for ClientHello, server_random for ServerHello
};
// Looks at the start of a TCP payload: a TLS handshake record (content type 22, version 3.x)
// carrying a ClientHello or ServerHello. Only the first 43 bytes of the handshake are needed.
// Only call it on L4 payloads (FrameInfo::is_fragment == false): a non-first fragment's
// bytes are not the start of a TCP segment.
TlsHello classify_tls(std::span<const uint8_t> tcp_payload);

// A TLS 1.3 HelloRetryRequest is a ServerHello whose random is SHA-256("HelloRetryRequest")
// (RFC 8446 4.1.3). After one, the client sends a second ClientHello on the same connection
// carrying the SAME client random, so a flow can show two ClientHellos with one random.
bool is_hello_retry_request(const TlsHello& h);

}  // namespace ehp::net
