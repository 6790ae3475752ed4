// Correlator: the oneTBB flow graph that joins TLS secrets to packets.
//
//   push_secrets ─► [dedup + null check, serial] ─► [derive keylog lines, HKDF, concurrent] ─┐
//                                                                                            ▼
//   push_packets ──────────────────────────────────────────────────────► [hold-back, serial] ─► Sink
//   tick / drain ──────────────────────────────────────────────────────►        (owns HoldBack)
//
// Packets travel as batches (one graph message per batch, not per packet). The hold-back node
// uses oneTBB's lightweight policy: when it is idle, a batch is processed right inside
// push_packets() on the caller's thread, with no task handoff; when it is busy (keys being
// applied) the batch is queued and push_packets() waits for it.
//
// Lifetime contract for push_packets(): synchronous. The frames are read (and copied where
// held) before push_packets() returns, so the caller may release the ring memory the spans
// point into as soon as it returns. Do not call it from inside a Sink callback or a TBB task
// of this graph.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "correlate/holdback.h"
#include "correlate/tls_secrets.h"

namespace ehp::correlate {

// One secrets event from the uprobes.
struct SecretsEvent {
  ehp::tls::Secrets secrets;
  uint32_t pid = 0;
  char comm[16] = {};
};

struct CorrelatorStats {
  HoldBackStats holdback;
  uint64_t secrets_in = 0;           // push_secrets() calls
  uint64_t duplicates = 0;           // client_random already emitted (ClientRandomDedup)
  uint64_t null_keys = 0;            // rejected: all-zero / unusable material
  uint64_t keys_derived = 0;         // keylog line sets handed to the hold-back stage
  uint64_t packet_batches = 0;
  uint64_t packets_in = 0;
};

class Correlator {
 public:
  // `derive_concurrency`: how many derivations may run at once (0 = unlimited).
  Correlator(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity, size_t derive_concurrency = 0);
  ~Correlator();  // waits for in-flight messages; does not release held flows (call drain())
  Correlator(const Correlator&) = delete;
  Correlator& operator=(const Correlator&) = delete;

  // `n` packets, metas[i] describing frames[i], in capture order. Synchronous (see above).
  void push_packets(const PacketMeta* metas, const std::span<const uint8_t>* frames, size_t n);
  // Asynchronous: returns after the dedup step; derivation and hold-back happen in the graph.
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

 private:
  struct Graph;
  std::unique_ptr<Graph> g_;
};

// True when the secrets cannot yield a usable key (checked before dedup, so that an early
// all-zero read does not shadow the real secrets of the same client_random).
bool secrets_are_null(const ehp::tls::Secrets& s);

}  // namespace ehp::correlate
