// SPDX-License-Identifier: BSD-2-Clause
// Correlator throughput (packets/s, bytes/s):
//   - non-TLS traffic through the flow graph, per batch size (the per-message cost of the graph
//     shows at batch 1: that is "one flow-graph event");
//   - TLS sessions that are held back and released by their secrets (TLS 1.3: the HKDF
//     derivation runs in the graph), with 64 sessions in flight at once;
//   - the same two loads through HoldBack alone, to separate the graph's cost from the hold-back's;
//   - the sink alone on the same frames: the ceiling, so the figures can be read as ratios taken
//     in one run (absolute times drift on this shared machine).
// The sink copies each frame into a ring like the real writer does (the Sink contract says the
// frame must be copied before returning).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "correlate/correlator.h"
#include "correlate/holdback.h"
#include "tls/secrets.h"

namespace {

using namespace ehp::correlate;

class CopySink : public Sink {
 public:
  CopySink() : ring_(8u << 20) {}
  void packet(const PacketMeta&, std::span<const uint8_t> f) override {
    if (pos_ + f.size() > ring_.size()) pos_ = 0;
    std::memcpy(ring_.data() + pos_, f.data(), f.size());
    pos_ += f.size();
    ++packets;
  }
  void secrets(std::string_view l) override { dsb_bytes += l.size(); }
  uint64_t packets = 0, dsb_bytes = 0;

 private:
  std::vector<uint8_t> ring_;
  size_t pos_ = 0;
};

void put16(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8); p[1] = uint8_t(v); }

// Ethernet/IPv4/TCP or UDP frame of `frame_len` bytes; payload filled by the caller.
std::vector<uint8_t> frame(bool tcp, uint16_t sport, uint16_t dport, size_t frame_len) {
  std::vector<uint8_t> f(frame_len, 0x5a);
  std::memset(f.data(), 2, 12);
  f[12] = 0x08; f[13] = 0x00;
  uint8_t* ip = f.data() + 14;
  std::memset(ip, 0, tcp ? 40 : 28);
  ip[0] = 0x45;
  put16(ip + 2, uint16_t(frame_len - 14));
  ip[8] = 64;
  ip[9] = tcp ? 6 : 17;
  // Client 10.0.0.1, server 10.0.0.2 (the server side is the one on port 443 or 80).
  const bool from_server = sport == 443 || sport == 80;
  ip[12] = 10; ip[15] = from_server ? 2 : 1;
  ip[16] = 10; ip[19] = from_server ? 1 : 2;
  put16(ip + 20, sport);
  put16(ip + 22, dport);
  if (tcp) {
    ip[32] = 5 << 4;
    ip[33] = 0x18;
  } else {
    put16(ip + 24, uint16_t(frame_len - 34));
  }
  return f;
}

constexpr size_t kTcpPayload = 14 + 20 + 20;

std::vector<uint8_t> hello(uint8_t type, uint16_t sport, uint16_t dport) {
  std::vector<uint8_t> f = frame(true, sport, dport, kTcpPayload + 5 + 4 + 43);
  uint8_t* p = f.data() + kTcpPayload;
  p[0] = 22; p[1] = 3; p[2] = 1; put16(p + 3, 4 + 43);
  p[5] = type; p[6] = 0; put16(p + 7, 43);
  p[9] = 3; p[10] = 3;  // random at p+11 (filled per session)
  return f;
}

void appdata(std::vector<uint8_t>& f) {
  uint8_t* p = f.data() + kTcpPayload;
  p[0] = 23; p[1] = 3; p[2] = 3; put16(p + 3, uint16_t(f.size() - kTcpPayload - 5));
}

struct Batch {
  std::vector<PacketMeta> metas;
  std::vector<std::span<const uint8_t>> spans;
  void add(const std::vector<uint8_t>& f, uint64_t ts) {
    PacketMeta m{};
    m.ts_ns = ts;
    m.linktype = 1;
    m.wire_len = m.cap_len = uint32_t(f.size());
    metas.push_back(m);
    spans.emplace_back(f);
  }
};

// Non-TLS traffic: UDP and plain TCP, arg0 = frame bytes, arg1 = batch size.
void BM_CorrelatorNonTls(benchmark::State& state) {
  const size_t len = size_t(state.range(0)), batch = size_t(state.range(1));
  CopySink sink;
  Correlator c({}, sink, 65536);
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < batch; ++i) frames.push_back(frame(i & 1, uint16_t(1000 + i), 80, len));
  Batch b;
  for (auto& f : frames) b.add(f, 1);
  for (auto _ : state) c.push_packets(b.metas.data(), b.spans.data(), batch);
  c.drain();
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * len));
  if (sink.packets != uint64_t(state.iterations()) * batch) state.SkipWithError("packets lost");
}
BENCHMARK(BM_CorrelatorNonTls)->ArgsProduct({{64, 1400}, {1, 32, 256}});

// Ceiling for the two above in the same run: the frames handed straight to the copying sink.
void BM_SinkOnlyBaseline(benchmark::State& state) {
  const size_t len = size_t(state.range(0)), batch = 256;
  CopySink sink;
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < batch; ++i) frames.push_back(frame(i & 1, uint16_t(1000 + i), 80, len));
  PacketMeta m{};
  for (auto _ : state)
    for (auto& f : frames) sink.packet(m, f);
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * len));
}
BENCHMARK(BM_SinkOnlyBaseline)->Arg(64)->Arg(1400);

// The same load through HoldBack directly (no graph).
void BM_HoldBackNonTls(benchmark::State& state) {
  const size_t len = size_t(state.range(0)), batch = 256;
  CopySink sink;
  HoldBack hb({}, sink);
  std::vector<std::vector<uint8_t>> frames;
  for (size_t i = 0; i < batch; ++i) frames.push_back(frame(i & 1, uint16_t(1000 + i), 80, len));
  for (auto _ : state)
    for (auto& f : frames) {
      PacketMeta m{};
      m.ts_ns = 1;
      m.linktype = 1;
      m.wire_len = m.cap_len = uint32_t(f.size());
      hb.on_packet(m, f);
    }
  state.SetItemsProcessed(int64_t(state.iterations() * batch));
  state.SetBytesProcessed(int64_t(state.iterations() * batch * len));
}
BENCHMARK(BM_HoldBackNonTls)->Arg(64)->Arg(1400);

// Held TLS: 64 sessions in flight on 64 5-tuples; each session is ClientHello, ServerHello and
// kData application-data packets of 1400 B, all held, then its TLS 1.3 secrets arrive (derived
// in the graph) and release it. One iteration = one round of 64 sessions.
constexpr int kFlows = 64, kData = 8;

struct HeldLoad {
  std::vector<std::vector<uint8_t>> ch, sh, data;
  uint64_t round = 0;
  HeldLoad() {
    for (int i = 0; i < kFlows; ++i) {
      uint16_t port = uint16_t(30000 + i);
      ch.push_back(hello(1, port, 443));
      sh.push_back(hello(2, 443, port));
      for (int k = 0; k < kData; ++k) {
        data.push_back(frame(true, (k & 1) ? 443 : port, (k & 1) ? port : 443, 1400));
        appdata(data.back());
      }
    }
  }
  std::array<uint8_t, 32> random(int flow) const {
    std::array<uint8_t, 32> r{};
    r.fill(0x42);
    std::memcpy(r.data(), &round, 8);
    r[8] = uint8_t(flow);
    r[9] = uint8_t(flow >> 8);
    return r;
  }
  // Sets this round's client randoms and fills `b` with all packets, interleaved across flows.
  void build(Batch& b, uint64_t ts) {
    ++round;
    b.metas.clear();
    b.spans.clear();
    for (int i = 0; i < kFlows; ++i) {
      auto r = random(i);
      std::memcpy(ch[i].data() + kTcpPayload + 11, r.data(), 32);
      b.add(ch[i], ts);
    }
    for (int i = 0; i < kFlows; ++i) b.add(sh[i], ts);
    for (int k = 0; k < kData; ++k)
      for (int i = 0; i < kFlows; ++i) b.add(data[size_t(i * kData + k)], ts);
  }
  ehp::tls::Secrets secrets(int flow) const {
    ehp::tls::Secrets s;
    s.version = ehp::tls::kTls13;
    s.cipher_id = 0x1301;
    s.client_random = random(flow);
    s.handshake_secret.fill(1);
    s.handshake_traffic_hash.fill(2);
    s.client_app_traffic_secret.fill(3);
    s.server_app_traffic_secret.fill(4);
    s.exporter_master_secret.fill(5);
    return s;
  }
};

void BM_CorrelatorHeldTls(benchmark::State& state) {
  const size_t batch = size_t(state.range(0));
  CopySink sink;
  Correlator c({}, sink, 1u << 18);
  HeldLoad load;
  Batch b;
  uint64_t packets = 0, bytes = 0;
  for (auto _ : state) {
    load.build(b, 1);
    for (size_t off = 0; off < b.metas.size(); off += batch)
      c.push_packets(b.metas.data() + off, b.spans.data() + off, std::min(batch, b.metas.size() - off));
    for (int i = 0; i < kFlows; ++i) c.push_secrets(load.secrets(i));
    c.wait_idle();
    packets += b.metas.size();
    for (auto& s : b.spans) bytes += s.size();
  }
  auto st = c.stats();
  state.SetItemsProcessed(int64_t(packets));
  state.SetBytesProcessed(int64_t(bytes));
  state.counters["held"] = double(st.holdback.packets_held);
  state.counters["keyed"] = double(st.holdback.released_keyed);
  state.counters["null"] = double(st.null_keys);
  state.counters["dup"] = double(st.duplicates);
  state.counters["timeout"] = double(st.holdback.released_timeout);
  state.counters["nokeys"] = double(st.holdback.keys_without_flow);
  if (st.holdback.released_keyed != uint64_t(state.iterations()) * kFlows || sink.packets != packets)
    state.SkipWithError("sessions not released by their keys");
}
BENCHMARK(BM_CorrelatorHeldTls)->Arg(32)->Arg(256)->UseRealTime();

// Held TLS through HoldBack alone, keys given as ready-made lines (no derivation, no graph).
void BM_HoldBackHeldTls(benchmark::State& state) {
  CopySink sink;
  HoldBack hb({}, sink);
  HeldLoad load;
  Batch b;
  const std::string lines(5 * 170, 'k');
  uint64_t packets = 0, bytes = 0;
  for (auto _ : state) {
    load.build(b, 1);
    for (size_t i = 0; i < b.metas.size(); ++i) hb.on_packet(b.metas[i], b.spans[i]);
    for (int i = 0; i < kFlows; ++i) hb.on_keys(load.random(i), lines);
    packets += b.metas.size();
    for (auto& s : b.spans) bytes += s.size();
  }
  state.SetItemsProcessed(int64_t(packets));
  state.SetBytesProcessed(int64_t(bytes));
  if (hb.stats().released_keyed != uint64_t(state.iterations()) * kFlows || sink.packets != packets)
    state.SkipWithError("sessions not released by their keys");
}
BENCHMARK(BM_HoldBackHeldTls);

// Secrets path alone: a duplicate is dropped at the dedup node (the common case when a probe
// fires on every SSL_write), a fresh one is derived and written.
void BM_CorrelatorDuplicateSecrets(benchmark::State& state) {
  CopySink sink;
  Correlator c({}, sink, 65536);
  HeldLoad load;
  auto s = load.secrets(1);
  c.push_secrets(s);
  for (auto _ : state) c.push_secrets(s);
  c.wait_idle();
  state.SetItemsProcessed(int64_t(state.iterations()));
}
BENCHMARK(BM_CorrelatorDuplicateSecrets);

}  // namespace

BENCHMARK_MAIN();
