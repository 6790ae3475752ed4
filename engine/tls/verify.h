// SPDX-License-Identifier: BSD-2-Clause
// The key check: a TLS session's secrets, as a traced binary delivered them, proven on the
// session's own captured records before anyone trusts them.
//
// What is checked (one AEAD tag per session, with OpenSSL EVP):
//   TLS 1.3: SERVER_HANDSHAKE_TRAFFIC_SECRET -> key and iv (HKDF-Expand-Label "key"/"iv", the
//            suite's hash) -> the tag of the server's first encrypted record (sequence 0).
//   TLS 1.2: CLIENT_RANDOM's master secret -> key block (PRF "key expansion", the suite's hash,
//            server_random + client_random) -> the tag of the client's first record after its
//            ChangeCipherSpec (its Finished, sequence 0).
// Suites: AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305. A session whose suite is another one
// (CBC, CCM), whose records were not all captured, or whose keys lack the line needed, is
// "unverifiable", never "failed": failed means the tag did not verify with the given key.
//
// Bounded and hostile-input-safe: every length off the wire is checked before use; a record is
// at most 5 + 2^14 + 2048 bytes; per direction only the record being reassembled is buffered,
// and one target record per session is kept until its keys come; the sessions followed and the
// bytes buffered in all are capped (a session past a cap is unverifiable). One tag check per
// session, so the work per session is bounded too.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/frame.h"

namespace ehp::tls {

// NotCaptured: keys whose session never showed on the captured interfaces (TLS on another
// interface of the host): nothing to check them against, and not a sign of wrong offsets.
enum class KeyCheck : uint8_t { Verified, Failed, Unverifiable, NotCaptured };
const char* key_check_name(KeyCheck k);

// ---- the checks themselves (pure functions, used by KeyVerifier and tested directly) ----------

// `record`: one whole TLS record (5-byte header + body) as it was on the wire.
// TLS 1.3: `secret` = SERVER_HANDSHAKE_TRAFFIC_SECRET (or any traffic secret of the record's
// sender), `seq` the record's sequence number under that key.
KeyCheck check_tls13_record(uint16_t suite, std::span<const uint8_t> secret, std::span<const uint8_t> record,
                            uint64_t seq, std::string* why);
// TLS 1.2: `client_write` selects which side's key the record was sent with.
KeyCheck check_tls12_record(uint16_t suite, std::span<const uint8_t> master_secret,
                            const std::array<uint8_t, 32>& client_random, const std::array<uint8_t, 32>& server_random,
                            std::span<const uint8_t> record, bool client_write, uint64_t seq, std::string* why);
// True for the suites the checks above can verify.
bool key_check_supported(uint16_t suite, bool tls13);

// ---- sessions: records from packets, keys from the correlator ----------------------------------

struct KeyVerifierConfig {
  size_t max_sessions = 16384;            // sessions followed at once (oldest dropped, counted)
  size_t max_buffered_bytes = 32u << 20;  // partial and target records of all sessions together
  uint64_t max_age_ns = 30'000'000'000;   // a session not decided by then is dropped (unverifiable if keyed)
};

class KeyVerifier {
 public:
  // Called once per keyed session when it is decided: the source given with its keys, the result
  // and, for failed/unverifiable, why (one short phrase).
  using OnResult = std::function<void(uint32_t source, KeyCheck result, std::string_view why)>;
  KeyVerifier(KeyVerifierConfig cfg, OnResult on_result);
  ~KeyVerifier();
  KeyVerifier(const KeyVerifier&) = delete;
  KeyVerifier& operator=(const KeyVerifier&) = delete;

  // Every TCP segment (non-fragment) in capture order: `fi` decoded, `payload` its TCP payload,
  // `hello` classify_tls(payload). Cheap unless the segment is a ClientHello or belongs to a
  // session being followed.
  void on_segment(const ehp::net::FrameInfo& fi, std::span<const uint8_t> payload, const ehp::net::TlsHello& hello,
                  uint64_t ts_ns);
  // The key log lines of the session with `client_random` (the lines its DSB carries) and the
  // traced binary that produced them. Keys may come before or after the session's packets.
  void on_keys(const std::array<uint8_t, 32>& client_random, std::string_view keylog_lines, uint32_t source,
               uint64_t now_ns);
  // The session with `client_random` will get no keys (the hold-back's key policy said so): stop
  // following it, unless keys came for it already. Keeps the table small on a gateway.
  void forget(const std::array<uint8_t, 32>& client_random);
  // Drops sessions older than max_age_ns (keyed ones count as unverifiable).
  void tick(uint64_t now_ns);
  // Shutdown: every keyed session not decided yet is reported unverifiable.
  void finish();

  struct Stats {
    uint64_t sessions_followed = 0;  // ClientHellos that started a session
    uint64_t dropped_cap = 0;        // sessions dropped for the session or byte cap
    uint64_t buffered_bytes = 0;     // now
    uint64_t sessions_now = 0;
    uint64_t forgotten = 0;          // sessions the key policy said no key can come for
  };
  Stats stats() const;

 private:
  struct Dir;
  struct Session;
  Session* find_flow(const ehp::net::FlowKey& k);
  Session* start_session(const ehp::net::FlowKey& k, const ehp::net::FrameInfo& fi,
                         const std::array<uint8_t, 32>& random, uint64_t ts_ns);
  void feed(Session& s, bool from_client, uint32_t seq, std::span<const uint8_t> data);
  void on_record(Session& s, bool from_client, std::span<const uint8_t> record);
  void try_decide(Session& s);
  void decide(Session& s, KeyCheck r, std::string_view why);
  void erase(uint64_t id);
  void unverifiable_stream(Session& s, const char* why);
  bool reserve(Session& s, size_t bytes);

  KeyVerifierConfig cfg_;
  OnResult on_result_;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Session*> by_id_;
  std::unordered_map<ehp::net::FlowKey, uint64_t, ehp::net::FlowKeyHash> by_flow_;
  std::unordered_map<std::array<uint8_t, 32>, uint64_t, ehp::net::ClientRandomHash> by_random_;
  std::deque<std::pair<uint64_t, uint64_t>> order_;  // (id, started ns), start order
  Stats st_{};
};

}  // namespace ehp::tls
