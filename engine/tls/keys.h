// SPDX-License-Identifier: BSD-2-Clause
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

#include "tls/secrets.h"

namespace ehp::tls {

// Hash length for a TLS 1.3 suite: 32 for 0x1301/0x1303/0x1304/0x1305, 48 for 0x1302; 0 if unknown.
size_t tls13_hash_len(uint16_t cipher_id);

// RFC 8446 7.1 HKDF-Expand-Label(secret, "tls13 " + label, context, out.size()), with the
// suite's hash (SHA-256 when hash_len == 32, SHA-384 when 48). Returns false on failure.
bool hkdf_expand_label(size_t hash_len, std::span<const uint8_t> secret, std::string_view label,
                       std::span<const uint8_t> context, std::span<uint8_t> out);

// The NSS key log lines for one session, each terminated by '\n':
//   TLS 1.2: CLIENT_RANDOM (also TLS 1.0/1.1, versions 0x0301..0x0303; cipher_id unused)
//   TLS 1.3: CLIENT_HANDSHAKE_TRAFFIC_SECRET, SERVER_HANDSHAKE_TRAFFIC_SECRET,
//            CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0, EXPORTER_SECRET
// The handshake traffic secrets are derived from handshake_secret + handshake_traffic_hash.
// Returns an empty string when the material is unusable (all-zero secret or client random,
// unknown version/cipher) -- the caller counts that as a rejected null key.
std::string keylog_lines(const Secrets& s);

// Upper bound of keylog_lines' output: 5 lines of at most 31 + 1 + 64 + 1 + 96 + 1 bytes.
constexpr size_t kMaxKeylogBytes = 1024;
// Allocation-free form of keylog_lines: writes the same bytes into `out` (which must hold
// kMaxKeylogBytes) and returns their length; 0 when keylog_lines would return "".
size_t keylog_lines_to(const Secrets& s, std::span<char> out);

// One parsed NSS key log line: "<LABEL> <64 hex client_random> <hex secret>".
struct KeylogEntry {
  std::string label;
  std::array<uint8_t, 32> client_random{};
  std::vector<uint8_t> secret;
};
// Strict: label in [A-Z0-9_] and one of the NSS labels, single spaces, exactly 64 hex digits
// of client random, 96 hex digits for CLIENT_RANDOM and 64 or 96 for the TLS 1.3 labels.
// A trailing "\r" (and "\n") is tolerated. nullopt for comments, blank and malformed lines.
std::optional<KeylogEntry> parse_keylog_line(std::string_view line);
// Same, and says why a line was refused (when `error` is non-null).
std::optional<KeylogEntry> parse_keylog_line(std::string_view line, std::string* error);

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
  // Bytes held, fixed at construction (ring of randoms + index), whatever is inserted.
  size_t memory_bytes() const;

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace ehp::tls
