// The correlation flow graph; see correlator.h for the shape and the lifetime contract.
#include "correlate/correlator.h"

#include <oneapi/tbb/flow_graph.h>

#include <algorithm>
#include <string>
#include <tuple>

#include "correlate/tls_keys.h"

namespace ehp::correlate {
namespace {

bool all_zero(const uint8_t* p, size_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// One message for the serial hold-back node. Packet batches are passed by pointer (the caller
// blocks until `done`), keys carry their lines by value (one per session, not per packet).
struct HoldMsg {
  enum class Kind : uint8_t { Packets, Keys, Tick, Flush } kind = Kind::Tick;
  const PacketMeta* metas = nullptr;
  const std::span<const uint8_t>* frames = nullptr;
  size_t n = 0;
  std::atomic<bool>* done = nullptr;
  std::array<uint8_t, 32> client_random{};
  std::string lines;
  uint64_t now_ns = 0;
};

}  // namespace

bool secrets_are_null(const ehp::tls::Secrets& s) {
  if (all_zero(s.client_random.data(), s.client_random.size())) return true;
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
  using DeriveNode = tbb::flow::multifunction_node<SecretsEvent, std::tuple<HoldMsg>>;
  using HoldNode =
      tbb::flow::function_node<HoldMsg, tbb::flow::continue_msg, tbb::flow::queueing_lightweight>;

  Graph(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity, size_t derive_concurrency)
      : hb(cfg, sink),
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
                    [this](const SecretsEvent& ev, DeriveNode::output_ports_type& out) {
                      HoldMsg m;
                      m.kind = HoldMsg::Kind::Keys;
                      m.lines = ehp::tls::keylog_lines(ev.secrets);
                      if (m.lines.empty()) {
                        secrets_null.fetch_add(1, std::memory_order_relaxed);
                        return;
                      }
                      m.client_random = ev.secrets.client_random;
                      keys_derived.fetch_add(1, std::memory_order_relaxed);
                      std::get<0>(out).try_put(std::move(m));
                    }),
        // noexcept: oneTBB runs a lightweight node inline (no task handoff) only if its body
        // is noexcept. The only exception HoldBack can raise is bad_alloc (flow tables).
        hold_node(g, tbb::flow::serial, [this](const HoldMsg& m) noexcept {
          {
            std::lock_guard lk(mu);  // only contended by stats()
            switch (m.kind) {
              case HoldMsg::Kind::Packets:
                for (size_t i = 0; i < m.n; ++i) hb.on_packet(m.metas[i], m.frames[i]);
                break;
              case HoldMsg::Kind::Keys:
                hb.on_keys(m.client_random, m.lines);
                break;
              case HoldMsg::Kind::Tick:
                hb.tick(m.now_ns);
                break;
              case HoldMsg::Kind::Flush:
                hb.flush_all();
                break;
            }
          }
          if (m.done) {
            // The waiter's flag lives on its stack: after this store it may return at once, so
            // the wake-up goes through a long-lived counter, never through the flag itself.
            m.done->store(true, std::memory_order_seq_cst);
            done_epoch.fetch_add(1, std::memory_order_seq_cst);
            done_epoch.notify_all();
          }
          return tbb::flow::continue_msg{};
        }) {
    tbb::flow::make_edge(std::get<0>(dedup_node.output_ports()), derive_node);
    tbb::flow::make_edge(std::get<0>(derive_node.output_ports()), hold_node);
  }

  void put_and_wait(HoldMsg m) {
    std::atomic<bool> done{false};
    m.done = &done;
    hold_node.try_put(m);
    while (!done.load(std::memory_order_seq_cst)) {
      uint64_t epoch = done_epoch.load(std::memory_order_seq_cst);
      if (done.load(std::memory_order_seq_cst)) break;
      done_epoch.wait(epoch, std::memory_order_seq_cst);
    }
  }

  tbb::flow::graph g;
  mutable std::mutex mu;
  HoldBack hb;
  ehp::tls::ClientRandomDedup dedup;
  std::atomic<uint64_t> secrets_in{0}, secrets_duplicate{0}, secrets_null{0}, keys_derived{0};
  std::atomic<uint64_t> packet_batches{0}, packets_in{0};
  std::atomic<uint64_t> done_epoch{0};
  DedupNode dedup_node;
  DeriveNode derive_node;
  HoldNode hold_node;
};

Correlator::Correlator(HoldBackConfig cfg, Sink& sink, size_t dedup_capacity,
                       size_t derive_concurrency)
    : g_(std::make_unique<Graph>(cfg, sink, dedup_capacity, derive_concurrency)) {}

Correlator::~Correlator() { g_->g.wait_for_all(); }

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
  g_->put_and_wait(std::move(m));
}

void Correlator::push_secrets(const SecretsEvent& ev) {
  g_->secrets_in.fetch_add(1, std::memory_order_relaxed);
  g_->dedup_node.try_put(ev);
}

void Correlator::tick(uint64_t now_ns) {
  HoldMsg m;
  m.kind = HoldMsg::Kind::Tick;
  m.now_ns = now_ns;
  g_->hold_node.try_put(std::move(m));
}

void Correlator::wait_idle() { g_->g.wait_for_all(); }

void Correlator::drain() {
  wait_idle();
  HoldMsg m;
  m.kind = HoldMsg::Kind::Flush;
  g_->put_and_wait(std::move(m));
  wait_idle();
}

CorrelatorStats Correlator::stats() const {
  CorrelatorStats s;
  {
    std::lock_guard lk(g_->mu);
    s.holdback = g_->hb.stats();
  }
  s.secrets_in = g_->secrets_in.load(std::memory_order_relaxed);
  s.duplicates = g_->secrets_duplicate.load(std::memory_order_relaxed);
  s.null_keys = g_->secrets_null.load(std::memory_order_relaxed);
  s.keys_derived = g_->keys_derived.load(std::memory_order_relaxed);
  s.packet_batches = g_->packet_batches.load(std::memory_order_relaxed);
  s.packets_in = g_->packets_in.load(std::memory_order_relaxed);
  return s;
}

}  // namespace ehp::correlate
