// SPDX-License-Identifier: BSD-2-Clause
// Puts a session's key log lines together from secrets logged one by one.
//
// A TLS library's own secret logger (OpenSSL's ssl_log_secret) hands out each secret with its
// NSS label as soon as it is derived: for TLS 1.3 the two handshake traffic secrets first, the
// application traffic and exporter secrets later. Wireshark needs all of a session's lines in
// one place, before the session's records; the hold-back releases a flow as soon as its keys
// arrive. So lines are collected per client random and handed on only when the session can
// be decrypted: TLS 1.2's CLIENT_RANDOM line, or TLS 1.3's four traffic secrets. The exporter
// secret, which libraries log right after the traffic secrets (BoringSSL) or before them
// (OpenSSL), joins its session: a session with its four traffic secrets waits up to
// `exporter_wait_ns` for it (flush() hands such sessions on). Bounded: at most `capacity`
// sessions wait; the oldest incomplete one is dropped and counted when full, and incomplete
// ones expire after max_age.
#pragma once
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/secrets.h"

namespace ehp::tls {

class KeylogAssembler {
 public:
  explicit KeylogAssembler(size_t capacity = 4096, uint64_t max_age_ns = 30'000'000'000ull,
                           uint64_t exporter_wait_ns = 5'000'000ull)
      : capacity_(capacity), max_age_ns_(max_age_ns), exporter_wait_ns_(exporter_wait_ns) {}

  // One logged secret. Returns the session's Secrets (version set, `logged` = its lines) when
  // this secret completes it; nullopt while it is incomplete, or for a label that is not a
  // key log label this stage knows (counted in ignored()).
  std::optional<Secrets> add(std::string_view label, const std::array<uint8_t, 32>& client_random,
                             std::span<const uint8_t> secret, uint64_t now_ns);
  // Sessions that have their four traffic secrets and waited exporter_wait_ns for the exporter
  // secret: handed on without it (appended to *out).
  void flush(uint64_t now_ns, std::vector<Secrets>* out);
  // Drops incomplete sessions older than max_age; returns how many.
  size_t expire(uint64_t now_ns);

  uint64_t incomplete_dropped() const { return dropped_; }
  uint64_t ignored() const { return ignored_; }
  size_t waiting() const { return pending_.size(); }

 private:
  struct Pending {
    uint64_t first_ns = 0;
    uint64_t complete_ns = 0;  // when the four traffic secrets were all there (0: not yet)
    unsigned have = 0;         // bit per label (kLabels order)
    std::string lines[5];
  };
  Secrets finish(const std::array<uint8_t, 32>& cr, Pending& p);
  bool drop_oldest();
  struct Hash {
    size_t operator()(const std::array<uint8_t, 32>& r) const noexcept;
  };
  size_t capacity_;
  uint64_t max_age_ns_, exporter_wait_ns_;
  std::unordered_map<std::array<uint8_t, 32>, Pending, Hash> pending_;
  std::deque<std::pair<std::array<uint8_t, 32>, uint64_t>> order_;  // arrival order, for expiry
  uint64_t dropped_ = 0, ignored_ = 0;
};

}  // namespace ehp::tls
