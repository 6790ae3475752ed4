// SPDX-License-Identifier: BSD-2-Clause
// The correlation flow graph; see correlator.h for the shape and the lifetime contract.
#include "correlate/correlator.h"

#include <oneapi/tbb/flow_graph.h>
#include <oneapi/tbb/task_arena.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "tls/keys.h"
#include "tls/verify.h"

namespace ehp::correlate {
namespace {

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// One message for the serial hold-back node (the pump's: packet batches, ticks, the final
// flush). Batches are passed by pointer: the caller waits until the graph is idle again.
struct HoldMsg {
  enum class Kind : uint8_t { Packets, Tick, Flush } kind = Kind::Tick;
  const PacketMeta* metas = nullptr;
  const std::span<const uint8_t>* frames = nullptr;
  size_t n = 0;
  uint64_t now_ns = 0;
};

}  // namespace

bool secrets_are_null(const ehp::tls::Secrets& s) {
  if (all_zero(s.client_random.data(), s.client_random.size())) return true;
  if (!s.logged.empty()) return false;  // the library's own lines (their secrets were checked)
  if (s.version >= 0x0301 && s.version <= ehp::tls::kTls12)  // TLS 1.0-1.2: CLIENT_RANDOM
    return all_zero(s.master_key.data(), s.master_key.size());
  if (s.version == ehp::tls::kTls13) {
    size_t h = ehp::tls::tls13_hash_len(s.cipher_id);
    if (h == 0 || h > s.handshake_secret.size()) return true;
    return all_zero(s.handshake_secret.data(), h) || all_zero(s.handshake_traffic_hash.data(), h) ||
           all_zero(s.client_app_traffic_secret.data(), h) ||
           all_zero(s.server_app_traffic_secret.data(), h) ||
           all_zero(s.exporter_master_secret.data(), h);
  }
  return true;  // unknown protocol version
}

struct Correlator::Graph {
  using DedupNode = tbb::flow::multifunction_node<SecretsEvent, std::tuple<SecretsEvent>,
                                                  tbb::flow::queueing_lightweight>;
  // Lightweight, like the others (bodies must be noexcept for oneTBB to honour that): an idle
  // node's body runs right in the thread that put the message (keys: the engine's keys thread;
  // packets: the pump), so no TBB task is spawned and no worker is woken. Derived keys are
  // parked for the hold-back stage instead of going through hold_node: when hold_node was busy
  // with a packet batch, the queued keys message was forwarded by a spawned task, and the TBB
  // worker that ran it then spun in sched_yield loops (~10% of ecapture-hp's CPU at ~700
  // handshakes/s, perf). hold_node only ever sees the pump's messages: never contended.
  using DeriveNode =
      tbb::flow::function_node<SecretsEvent, tbb::flow::continue_msg, tbb::flow::queueing_lightweight>;
  using HoldNode =
      tbb::flow::function_node<HoldMsg, tbb::flow::continue_msg, tbb::flow::queueing_lightweight>;

  Graph(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity, size_t derive_concurrency, KeyPolicy* policy)
      : sink_ref(sink),
        hb(cfg, sink, policy),
        dedup(std::max<size_t>(dedup_capacity, 1)),
        dedup_node(g, tbb::flow::serial,
                   // noexcept: oneTBB runs a lightweight node inline only if its body is noexcept.
                   [this](const SecretsEvent& ev, DedupNode::output_ports_type& out) noexcept {
                     // Null check first: an early all-zero read must not be remembered as
                     // "emitted" and shadow the real secrets of the same client_random.
                     if (secrets_are_null(ev.secrets)) {
                       secrets_null.fetch_add(1, std::memory_order_relaxed);
                       return;
                     }
                     if (!dedup.insert(ev.secrets.client_random)) {
                       secrets_duplicate.fetch_add(1, std::memory_order_relaxed);
                       return;
                     }
                     std::get<0>(out).try_put(ev);
                   }),
        derive_node(g, derive_concurrency == 0 ? size_t{tbb::flow::unlimited} : derive_concurrency,
                    // noexcept: oneTBB runs a lightweight node inline only when its body is
                    // noexcept; otherwise it spawns a task, which here (no workers) would wait
                    // for the pump's next wait_for_all.
                    [this](const SecretsEvent& ev) noexcept {
                      std::string lines;
                      try {
                        lines = ehp::tls::keylog_lines(ev.secrets);
                      } catch (...) {  // allocation failure: count it like unusable material
                        lines.clear();
                      }
                      if (lines.empty()) {
                        secrets_null.fetch_add(1, std::memory_order_relaxed);
                        return tbb::flow::continue_msg{};
                      }
                      keys_derived.fetch_add(1, std::memory_order_relaxed);
                      // Parked for the hold-back stage, which the pump applies at the start of
                      // its next message (a batch, or its 100 ms tick). The keys thread never
                      // takes the stage itself: applying keys releases held packets into the
                      // sink, which may block on a slow output, and a blocked keys thread would
                      // let the uprobe ring overflow.
                      try {
                        std::lock_guard pk(pend_mu);
                        pending.push_back({ev.secrets.client_random, std::move(lines), ev.secrets.source});
                      } catch (...) {
                        secrets_null.fetch_add(1, std::memory_order_relaxed);
                      }
                      return tbb::flow::continue_msg{};
                    }),
        hold_node(g, tbb::flow::serial, [this](const HoldMsg& m) noexcept {
          {
            std::lock_guard lk(mu);
            sink_ref.batch_begin();  // one sink lock per message, not per packet
            apply_pending_locked();  // keys derived since the last message come first
            switch (m.kind) {
              case HoldMsg::Kind::Packets:
                for (size_t i = 0; i < m.n; ++i) hb.on_packet(m.metas[i], m.frames[i]);
                break;
              case HoldMsg::Kind::Tick:
                hb.tick(m.now_ns);
                if (kv) kv->tick(hb.now_ns());
                break;
              case HoldMsg::Kind::Flush:
                hb.flush_all();
                if (kv) kv->finish();  // keyed sessions still undecided: unverifiable
                break;
            }
            sink_ref.batch_end();
          }
          return tbb::flow::continue_msg{};
        }) {
    tbb::flow::make_edge(std::get<0>(dedup_node.output_ports()), derive_node);
  }

  // Under mu: hands parked keylog lines to the HoldBack, in arrival order.
  void apply_pending_locked() {
    Parked batch;
    {
      std::lock_guard pk(pend_mu);
      batch.swap(pending);
    }
    for (const auto& k : batch) {
      hb.on_keys(k.client_random, k.lines);
      if (kv) kv->on_keys(k.client_random, k.lines, k.source, hb.now_ns());
    }
  }

  // Under mu (the verifier calls it from inside the hold-back stage).
  void key_result(uint32_t source, ehp::tls::KeyCheck r, std::string_view why) {
    KeyCheckCounts& c = key_counts[source];
    c.source = source;
    switch (r) {
      case ehp::tls::KeyCheck::Verified: ++c.verified; break;
      case ehp::tls::KeyCheck::Unverifiable: ++c.unverifiable; break;
      case ehp::tls::KeyCheck::NotCaptured: ++c.not_captured; break;
      case ehp::tls::KeyCheck::Failed:
        ++c.failed;
        if (on_key_failed && failed_reported.insert(source).second) on_key_failed(source, why);
        break;
    }
  }

  // Feeds the hold-back's decoded segments to the key check.
  struct Observer final : SegmentObserver {
    explicit Observer(Graph& g) : g(g) {}
    void on_segment(const PacketMeta& meta, const ehp::net::FrameInfo& fi, std::span<const uint8_t> payload,
                    const ehp::net::TlsHello& hello) override {
      g.kv->on_segment(fi, payload, hello, meta.ts_ns);
    }
    void on_not_keyable(const ehp::net::FrameInfo&, const ehp::net::TlsHello& hello) override {
      g.kv->forget(hello.random);
    }
    Graph& g;
  };

  // Runs inside the arena (Correlator::Exec): the caller executes whatever the message starts.
  void put_and_wait(HoldMsg m) {
    hold_node.try_put(m);
    g.wait_for_all();
  }

  tbb::flow::graph g;
  Sink& sink_ref;
  mutable std::mutex mu;  // the hold-back stage (HoldBack + sink): hold body, wait_idle(), stats()
  // Keylog lines derived by the keys thread, waiting for the pump's next hold body.
  struct ParkedKeys {
    std::array<uint8_t, 32> client_random;
    std::string lines;
    uint32_t source;
  };
  using Parked = std::vector<ParkedKeys>;
  std::mutex pend_mu;
  Parked pending;
  HoldBack hb;
  // The key check (enable_key_check), under mu like the hold-back.
  std::unique_ptr<ehp::tls::KeyVerifier> kv;
  std::unique_ptr<Observer> kv_observer;
  std::map<uint32_t, KeyCheckCounts> key_counts;
  std::set<uint32_t> failed_reported;
  Correlator::KeyCheckFailed on_key_failed;
  ehp::tls::ClientRandomDedup dedup;
  std::atomic<uint64_t> secrets_in{0}, secrets_duplicate{0}, secrets_null{0}, keys_derived{0};
  std::atomic<uint64_t> packet_batches{0}, packets_in{0};
  DedupNode dedup_node;
  DeriveNode derive_node;
  HoldNode hold_node;
};

struct Correlator::Exec {
  // Two slots, both reserved for calling ("master") threads, so no TBB worker ever joins and
  // the pump and the keys thread never wait for each other to enter.
  tbb::task_arena arena{2, 2};
};

Correlator::Correlator(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity,
                       size_t derive_concurrency, KeyPolicy* policy)
    : x_(std::make_unique<Exec>()) {
  // A graph attaches to the arena it is built in.
  x_->arena.execute(
      [&] { g_ = std::make_unique<Graph>(cfg, sink, dedup_capacity, derive_concurrency, policy); });
}

Correlator::~Correlator() {
  x_->arena.execute([&] {
    g_->g.wait_for_all();
    g_.reset();
  });
}

void Correlator::push_packets(const PacketMeta* metas, const std::span<const uint8_t>* frames,
                              size_t n) {
  if (n == 0) return;
  g_->packet_batches.fetch_add(1, std::memory_order_relaxed);
  g_->packets_in.fetch_add(n, std::memory_order_relaxed);
  HoldMsg m;
  m.kind = HoldMsg::Kind::Packets;
  m.metas = metas;
  m.frames = frames;
  m.n = n;
  x_->arena.execute([&] { g_->put_and_wait(std::move(m)); });
}

void Correlator::push_secrets(const SecretsEvent& ev) {
  g_->secrets_in.fetch_add(1, std::memory_order_relaxed);
  // Lightweight nodes: dedup and derivation run right here; nothing is spawned, so there is
  // nothing to wait for (and waiting on the graph would wait for the pump's batch too).
  x_->arena.execute([&] { g_->dedup_node.try_put(ev); });
}

void Correlator::tick(uint64_t now_ns) {
  HoldMsg m;
  m.kind = HoldMsg::Kind::Tick;
  m.now_ns = now_ns;
  x_->arena.execute([&] { g_->put_and_wait(std::move(m)); });
}

void Correlator::wait_idle() {
  x_->arena.execute([&] { g_->g.wait_for_all(); });
  std::lock_guard lk(g_->mu);
  g_->apply_pending_locked();
}

void Correlator::drain() {
  HoldMsg m;
  m.kind = HoldMsg::Kind::Flush;
  x_->arena.execute([&] {
    g_->g.wait_for_all();
    g_->put_and_wait(std::move(m));
  });
}

CorrelatorStats Correlator::stats() const {
  CorrelatorStats s;
  {
    std::lock_guard lk(g_->mu);
    s.holdback = g_->hb.stats();
    for (const auto& [src, c] : g_->key_counts) s.key_checks.push_back(c);
  }
  s.secrets_in = g_->secrets_in.load(std::memory_order_relaxed);
  s.duplicates = g_->secrets_duplicate.load(std::memory_order_relaxed);
  s.null_keys = g_->secrets_null.load(std::memory_order_relaxed);
  s.keys_derived = g_->keys_derived.load(std::memory_order_relaxed);
  s.packet_batches = g_->packet_batches.load(std::memory_order_relaxed);
  s.packets_in = g_->packets_in.load(std::memory_order_relaxed);
  return s;
}

void Correlator::enable_key_check(KeyCheckFailed on_first_failure) {
  std::lock_guard lk(g_->mu);
  Graph* g = g_.get();
  g->on_key_failed = std::move(on_first_failure);
  g->kv = std::make_unique<ehp::tls::KeyVerifier>(
      ehp::tls::KeyVerifierConfig{},
      [g](uint32_t source, ehp::tls::KeyCheck r, std::string_view why) { g->key_result(source, r, why); });
  g->kv_observer = std::make_unique<Graph::Observer>(*g);
  g->hb.set_observer(g->kv_observer.get());
}

}  // namespace ehp::correlate
