// TLS key schedule pieces and NSS key log lines. Pure code (OpenSSL EVP_KDF), no I/O.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tls_secrets.h"

namespace ehp::tls {

// Hash length for a TLS 1.3 suite: 32 for 0x1301/0x1303/0x1304/0x1305, 48 for 0x1302; 0 if unknown.
size_t tls13_hash_len(uint16_t cipher_id);

// RFC 8446 7.1 HKDF-Expand-Label(secret, "tls13 " + label, context, out.size()), with the
// suite's hash (SHA-256 when hash_len == 32, SHA-384 when 48). Returns false on failure.
bool hkdf_expand_label(size_t hash_len, std::span<const uint8_t> secret, std::string_view label,
                       std::span<const uint8_t> context, std::span<uint8_t> out);

// The NSS key log lines for one session, each terminated by '\n':
//   TLS 1.2: CLIENT_RANDOM
//   TLS 1.3: CLIENT_HANDSHAKE_TRAFFIC_SECRET, SERVER_HANDSHAKE_TRAFFIC_SECRET,
//            CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0, EXPORTER_SECRET
// The handshake traffic secrets are derived from handshake_secret + handshake_traffic_hash.
// Returns an empty string when the material is unusable (all-zero secret or client random,
// unknown version/cipher) -- the caller counts that as a rejected null key.
std::string keylog_lines(const Secrets& s);

// One parsed NSS key log line: "<LABEL> <64 hex client_random> <hex secret>".
struct KeylogEntry {
  std::string label;
  std::array<uint8_t, 32> client_random{};
  std::vector<uint8_t> secret;
};
std::optional<KeylogEntry> parse_keylog_line(std::string_view line);

// Remembers the client randoms already emitted, with a fixed memory footprint: once
// `capacity` entries are held the oldest is forgotten (FIFO).
class ClientRandomDedup {
 public:
  explicit ClientRandomDedup(size_t capacity);
  ~ClientRandomDedup();
  ClientRandomDedup(const ClientRandomDedup&) = delete;
  ClientRandomDedup& operator=(const ClientRandomDedup&) = delete;
  // true if `cr` was not seen (and is now remembered), false for a duplicate.
  bool insert(const std::array<uint8_t, 32>& cr);
  bool contains(const std::array<uint8_t, 32>& cr) const;
  size_t size() const;
  size_t capacity() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace ehp::tls
