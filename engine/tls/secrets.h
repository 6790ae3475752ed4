// SPDX-License-Identifier: BSD-2-Clause
// Userspace view of the TLS secrets read from one SSL object by the uprobes.
// Filled by engine/tlsprobe from its ring events; consumed by tls/keys.h.
#pragma once
#include <array>
#include <cstdint>

namespace ehp::tls {

constexpr uint16_t kTls12 = 0x0303;
constexpr uint16_t kTls13 = 0x0304;

struct Secrets {
  uint16_t version = 0;    // ssl_st.version: 0x0303 TLS 1.2, 0x0304 TLS 1.3
  uint16_t cipher_id = 0;  // low 16 bits of SSL_CIPHER id, e.g. 0x1301
  std::array<uint8_t, 32> client_random{};
  // TLS 1.2
  std::array<uint8_t, 48> master_key{};
  // TLS 1.3; the first hash_len bytes are meaningful (32 for SHA-256 suites, 48 for SHA-384)
  std::array<uint8_t, 64> handshake_secret{};
  std::array<uint8_t, 64> handshake_traffic_hash{};
  std::array<uint8_t, 64> client_app_traffic_secret{};
  std::array<uint8_t, 64> server_app_traffic_secret{};
  std::array<uint8_t, 64> exporter_master_secret{};
};

}  // namespace ehp::tls
