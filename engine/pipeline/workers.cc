// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/workers.h"

#include <pthread.h>

#include <chrono>
#include <cstdio>
#include <span>

#include "base/clock.h"
#include "pipeline/privileges.h"

namespace ehp::pipeline {

// ---- Pump ------------------------------------------------------------------------------------

Pump::Pump(capture::Capture& cap, correlate::Correlator& corr, PcapngSink& sink, Limits limits, bool drop_caps)
    : cap_(cap), corr_(corr), sink_(sink), limits_(limits), drop_caps_(drop_caps) {
  const auto& ifaces = cap_.interfaces();
  for (uint32_t id = 0; id < ifaces.size(); ++id) {
    map_ifindex(ifaces[id].ifindex, id);
    linktypes_.push_back(ifaces[id].linktype);
  }
}

// ifindexes grow with every device created (container churn): a dense table up to
// kDenseIfindex, a map beyond, so the table never takes more than 4 MiB.
void Pump::map_ifindex(int ifindex, uint32_t id) {
  if (ifindex < 0) return;
  if (ifindex >= kDenseIfindex) {
    sparse_ifindex_to_id_[ifindex] = int(id);
    return;
  }
  if (size_t(ifindex) >= ifindex_to_id_.size()) ifindex_to_id_.resize(size_t(ifindex) + 1, -1);
  ifindex_to_id_[size_t(ifindex)] = int(id);
}

int Pump::id_of(uint32_t ifindex) const {
  if (ifindex < ifindex_to_id_.size()) return ifindex_to_id_[ifindex];
  if (ifindex < uint32_t(kDenseIfindex)) return -1;
  auto it = sparse_ifindex_to_id_.find(int(ifindex));
  return it == sparse_ifindex_to_id_.end() ? -1 : it->second;
}

void Pump::add_interface(int ifindex, uint32_t id, uint16_t linktype) {
  {
    std::lock_guard g(added_mu_);
    added_.push_back({ifindex, id, linktype});
  }
  added_gen_.fetch_add(1, std::memory_order_release);
}

void Pump::apply_added() {
  std::lock_guard g(added_mu_);
  for (const auto& a : added_) {
    map_ifindex(a.ifindex, a.id);
    if (a.id >= linktypes_.size()) linktypes_.resize(a.id + 1, 1);
    linktypes_[a.id] = a.linktype;
  }
  added_.clear();
}

Pump::~Pump() {
  stop_.store(true);
  join();
}

void Pump::start() { thread_ = std::thread([this] { run(); }); }

void Pump::join() {
  if (thread_.joinable()) thread_.join();
}

void Pump::run() {
  pthread_setname_np(pthread_self(), "ehp-pump");
  if (drop_caps_) drop_thread_caps();
  constexpr size_t kBatch = 256;
  constexpr uint64_t kTickNs = 100'000'000ull;
  std::vector<capture::PacketRef> refs(kBatch);
  std::vector<correlate::PacketMeta> metas(kBatch);
  std::vector<std::span<const uint8_t>> frames(kBatch);
  uint64_t next_tick = 0;
  for (;;) {
    const size_t n = cap_.next_batch(refs.data(), kBatch, 100);
    // Checked after the batch arrived: an interface's mapping is published before its filters
    // are attached, so any packet of it in this batch was produced after the publication.
    if (const uint32_t g = added_gen_.load(std::memory_order_acquire); g != added_seen_) {
      apply_added();
      added_seen_ = g;
    }
    const uint64_t now = mono_ns();
    if (n == 0 && stop_.load() && cap_.drained()) break;
    size_t take = n;
    if (limits_.stop_packets) {
      const uint64_t have = packets_.load(std::memory_order_relaxed);
      take = have >= limits_.stop_packets ? 0 : size_t(std::min<uint64_t>(n, limits_.stop_packets - have));
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < take; ++i) {
      const auto& r = refs[i];
      auto& m = metas[i];
      m.ts_ns = r.ts_ns;
      const int id = id_of(r.ifindex);
      m.interface_id = id < 0 ? 0 : uint32_t(id);
      m.linktype = m.interface_id < linktypes_.size() ? linktypes_[m.interface_id] : 1;
      m.direction = r.direction;
      m.wire_len = r.wire_len;
      m.cap_len = r.cap_len;
      m.proc = r.proc;
      frames[i] = std::span<const uint8_t>(r.data, r.cap_len);
      bytes += r.cap_len;
    }
    if (take) corr_.push_packets(metas.data(), frames.data(), take);
    if (n) cap_.release(refs[n - 1]);
    packets_.fetch_add(take, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
    if (limits_.stop_packets && packets_.load() >= limits_.stop_packets) autostop_ = true;
    if (now >= next_tick) {
      corr_.tick(wall_clock_ns());
      sink_.tick(wall_clock_ns());
      if (limits_.stop_file_bytes && sink_.stats().file_bytes >= limits_.stop_file_bytes) autostop_ = true;
      if (sink_.failed()) autostop_ = true;
      next_tick = now + kTickNs;
    }
  }
}

// ---- KeyReader --------------------------------------------------------------------------------

KeyReader::KeyReader(tlsprobe::TlsProbe* probe, OnSecrets on_secrets, OnData on_data, bool drop_caps)
    : probe_(probe), on_secrets_(std::move(on_secrets)), on_data_(std::move(on_data)), drop_caps_(drop_caps) {}

KeyReader::~KeyReader() { stop(); }

void KeyReader::start() {
  if (!probe_) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ehp-keys");
    if (drop_caps_) {
      // Attaching to binaries found after the start needs the privileges dropped here.
      if (probe_->stop_late_looks())
        fprintf(stderr, "ecapture-hp: -Z: processes started from now on are covered only if they use an already "
                        "traced binary (finding new ones needs the dropped privileges)\n");
      drop_thread_caps();
    }
    auto counted = [this](const tls::Secrets& s, const tlsprobe::ProcInfo& p) {
      secrets_.fetch_add(1, std::memory_order_relaxed);
      if (on_secrets_) on_secrets_(s, p);
    };
    while (!stop_.load(std::memory_order_relaxed)) probe_->poll(100, counted, on_data_);
    // What the ring holds at the stop, within 2 s: the probes are still attached, so a busy
    // traced process (or a stalled output under -m text) could keep this loop going forever.
    const uint64_t until = mono_ns() + 2'000'000'000ull;
    while (mono_ns() < until && probe_->poll(0, counted, on_data_) > 0) {
    }
  });
}

void KeyReader::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

// ---- StatsReporter ----------------------------------------------------------------------------

StatsReporter::StatsReporter(std::function<std::string()> line, uint64_t interval_ns, bool drop_caps)
    : line_(std::move(line)), interval_ns_(interval_ns), drop_caps_(drop_caps) {}

StatsReporter::~StatsReporter() {
  request_stop();
  join();
}

void StatsReporter::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "ehp-stats");
    if (drop_caps_) drop_thread_caps();
    uint64_t next = mono_ns() + interval_ns_;
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (mono_ns() < next) continue;
      std::string l = line_();
      if (stop_.load()) break;
      fprintf(stderr, "ecapture-hp: %s\n", l.c_str());
      next = mono_ns() + interval_ns_;
    }
  });
}

void StatsReporter::join() {
  if (thread_.joinable()) thread_.join();
}

// ---- DrainGuard -------------------------------------------------------------------------------

DrainGuard::DrainGuard(const StopSignals& sig, unsigned signals_at_stop, std::string output_name, bool drop_caps) {
  thread_ = std::thread([this, &sig, first = signals_at_stop, output_name = std::move(output_name), drop_caps] {
    pthread_setname_np(pthread_self(), "ehp-drainwait");
    if (drop_caps) drop_thread_caps();
    const uint64_t hint_at = mono_ns() + 2'000'000'000ull;
    bool hinted = false;
    while (!done_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (sig.count() != first) {
        fprintf(stderr, "ecapture-hp: second signal: exiting without writing the rest (%s keeps what was flushed)\n",
                output_name.c_str());
        _exit(130);
      }
      if (!hinted && mono_ns() >= hint_at && !done_.load()) {
        fprintf(stderr, "ecapture-hp: still writing buffered packets; signal again to exit without them\n");
        hinted = true;
      }
    }
  });
}

DrainGuard::~DrainGuard() {
  done_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace ehp::pipeline
