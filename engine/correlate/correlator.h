// SPDX-License-Identifier: BSD-2-Clause
// Correlator: the oneTBB flow graph that joins TLS secrets to packets.
//
//   push_secrets ─► [dedup + null check, serial] ─► [derive keylog lines (HKDF), apply to ─┐
//                                                     the hold-back under its lock]       │
//   push_packets ─────────────────────────────────► [hold-back, serial] ◄─────────────────┘ ─► Sink
//   tick / drain ─────────────────────────────────►   (owns HoldBack; one lock orders keys and packets)
//
// Packets travel as batches (one graph message per batch, not per packet). Every node uses
// oneTBB's lightweight policy: an idle node runs its body right inside the caller's try_put,
// so packets are processed on the pump's thread and keys on the thread that pushed them, with
// no task handoff and no TBB worker woken. The hold-back node only receives the pump's
// messages (packets, ticks, drain), so it is never busy when they arrive.
// The graph lives in its own task arena with two slots reserved for callers and no workers:
// every call runs its part of the graph on the calling thread (TBB workers, once woken, spun in
// sched_yield loops: ~10% of ecapture-hp's CPU at ~700 handshakes/s, perf). The keys thread
// never takes the hold-back stage (applying keys releases held packets into the sink, which can
// block on a slow output): derived lines are parked and applied, in arrival order and before
// the message's own work, at the start of the pump's next message (a batch, or at the latest
// its 100 ms tick), or by wait_idle()/drain().
//
// Lifetime contract for push_packets(): synchronous. The frames are read (and copied where
// held) before push_packets() returns, so the caller may release the ring memory the spans
// point into as soon as it returns. Do not call it from inside a Sink callback or a TBB task
// of this graph.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "correlate/holdback.h"
#include "tls/secrets.h"

namespace ehp::correlate {

// One secrets event from the uprobes.
struct SecretsEvent {
  ehp::tls::Secrets secrets;
  uint32_t pid = 0;
  char comm[16] = {};
};

// The key check's results for one traced binary (Secrets::source; 0 = unknown).
struct KeyCheckCounts {
  uint32_t source = 0;
  uint64_t verified = 0, failed = 0, unverifiable = 0;
  uint64_t not_captured = 0;  // keys of sessions not on the captured interfaces: not checked
};

struct CorrelatorStats {
  HoldBackStats holdback;
  uint64_t secrets_in = 0;           // push_secrets() calls
  uint64_t duplicates = 0;           // client_random already emitted (ClientRandomDedup)
  uint64_t null_keys = 0;            // rejected: all-zero / unusable material
  uint64_t keys_derived = 0;         // keylog line sets handed to the hold-back stage
  uint64_t packet_batches = 0;
  uint64_t packets_in = 0;
  std::vector<KeyCheckCounts> key_checks;  // by source, ascending; empty without enable_key_check()
};

class Correlator {
 public:
  // `derive_concurrency`: how many derivations may run at once (0 = unlimited). `policy`: which
  // sessions are held (null: all; see KeyPolicy); called from the pump's thread, must outlive this.
  Correlator(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity, size_t derive_concurrency = 0,
             KeyPolicy* policy = nullptr);
  ~Correlator();  // waits for in-flight messages; does not release held flows (call drain())
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  // `n` packets, metas[i] describing frames[i], in capture order. Synchronous (see above).
  void push_packets(const PacketMeta* metas, const std::span<const uint8_t>* frames, size_t n);
  // Runs dedup and derivation (HKDF) on the calling thread and parks the keylog lines for the
  // hold-back stage (applied at the pump's next message; see above). Never blocks on output.
  void push_secrets(const SecretsEvent& ev);
  void push_secrets(const ehp::tls::Secrets& s) { push_secrets(SecretsEvent{s, 0, {}}); }
  // Releases flows whose keys did not come in time. `now_ns` on the PacketMeta::ts_ns clock.
  void tick(uint64_t now_ns);
  // Waits until every message pushed so far (including derivations) has reached the hold-back
  // stage; held flows stay held.
  void wait_idle();
  // Shutdown: wait_idle(), then release every flow still held (counted as timeout releases).
  // Call it after the last push; later pushes are processed normally.
  void drain();
  CorrelatorStats stats() const;

  // Turns on the key check (tls/verify.h): every keyed session's keys are proven on its captured
  // records and counted per source. `on_first_failure` runs once per source, on the first session
  // whose keys fail, on the hold-back stage's thread (under its lock: keep it short). Call it
  // before the first push.
  using KeyCheckFailed = std::function<void(uint32_t source, std::string_view why)>;
  void enable_key_check(KeyCheckFailed on_first_failure);

 private:
  struct Exec;  // the task arena every graph call runs in (declared first: destroyed last)
  std::unique_ptr<Exec> x_;
  struct Graph;
  std::unique_ptr<Graph> g_;
};

// True when the secrets cannot yield a usable key (checked before dedup, so that an early
// all-zero read does not shadow the real secrets of the same client_random).
bool secrets_are_null(const ehp::tls::Secrets& s);

}  // namespace ehp::correlate
