// SPDX-License-Identifier: BSD-2-Clause
// Userspace view of the TLS secrets of one session, as a probe delivers them: either the key
// material read from an SSL object (keys.h derives the key log lines), or the lines the TLS
// library logged itself, label by label (assembler.h puts a session's lines together).
// Filled by engine/tlsprobe from its ring events; consumed by tls/keys.h.
#pragma once
#include <array>
#include <cstdint>
#include <string>

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
  // Key log lines the library produced itself (ssl_log_secret): used as they are, nothing is
  // derived. Empty for secrets read from an SSL object.
  std::string logged;
  // Which traced binary delivered them (TlsProbe::sources(): id N is sources()[N-1]); 0 unknown.
  // The key check counts its results per source.
  uint32_t source = 0;
};

}  // namespace ehp::tls
