// SPDX-License-Identifier: BSD-2-Clause
// Correlator: secrets go through null rejection, dedup and derivation in the flow graph and meet
// the packets in the serial hold-back node.
#include "correlate/correlator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>

#include "tls/keys.h"
#include "holdback_testlib.h"

namespace ehp::correlate {
namespace {

using namespace ehp::testlib;

constexpr uint64_t kMs = 1'000'000;

std::string hex(const Random& r) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : r) {
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

ehp::tls::Secrets tls12(const Random& r, uint8_t key_fill = 0x5a) {
  ehp::tls::Secrets s;
  s.version = ehp::tls::kTls12;
  s.cipher_id = 0xc02f;
  s.client_random = r;
  s.master_key.fill(key_fill);
  return s;
}

ehp::tls::Secrets tls13(const Random& r) {
  ehp::tls::Secrets s;
  s.version = ehp::tls::kTls13;
  s.cipher_id = 0x1301;
  s.client_random = r;
  s.handshake_secret.fill(1);
  s.handshake_traffic_hash.fill(2);
  s.client_app_traffic_secret.fill(3);
  s.server_app_traffic_secret.fill(4);
  s.exporter_master_secret.fill(5);
  return s;
}

// Thread-safe recording: the sink is called from the serial node, which may run on a TBB worker.
class LockedSink : public Sink {
 public:
  void packet(const PacketMeta& m, std::span<const uint8_t> f) override {
    std::lock_guard lk(mu);
    inner.packet(m, f);
  }
  void secrets(std::string_view l) override {
    std::lock_guard lk(mu);
    inner.secrets(l);
  }
  std::mutex mu;
  RecordingSink inner;
};

struct Batch {
  std::deque<std::vector<uint8_t>> frames;
  std::vector<PacketMeta> metas;
  std::vector<std::span<const uint8_t>> spans;
  void add(uint64_t ts, std::vector<uint8_t> f) {
    frames.push_back(std::move(f));
    metas.push_back(meta_at(ts, frames.back().size()));
  }
  void push(Correlator& c) {
    spans.clear();
    for (auto& f : frames) spans.emplace_back(f);
    c.push_packets(metas.data(), spans.data(), metas.size());
  }
};

Endpoint cli(uint16_t port) { return {0x0a000001, port}; }
const Endpoint kSrv{0x0a000002, 443};

TEST(Correlator, SecretsReleaseHeldFlowWithDsbFirst) {
  LockedSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(1);
  Batch b;
  b.add(1, tcp_frame(cli(40000), kSrv, kPsh | kAck, hello_record(1, r)));
  b.add(2, udp_frame(cli(1), kSrv, 50));
  b.add(3, tcp_frame(kSrv, cli(40000), kPsh | kAck, hello_record(2, make_random(2))));
  b.push(c);
  ASSERT_EQ(sink.inner.events.size(), 1u) << "only the UDP packet may pass before the keys";
  c.push_secrets(tls12(r));
  c.wait_idle();
  ASSERT_EQ(sink.inner.events.size(), 4u);
  EXPECT_EQ(sink.inner.events[1].kind, Event::Secrets);
  std::string key_hex;
  for (int i = 0; i < 48; ++i) key_hex += "5a";
  EXPECT_EQ(sink.inner.events[1].lines, "CLIENT_RANDOM " + hex(r) + " " + key_hex + "\n");
  EXPECT_EQ(sink.inner.events[2].meta.ts_ns, 1u);
  EXPECT_EQ(sink.inner.events[3].meta.ts_ns, 3u);
  auto st = c.stats();
  EXPECT_EQ(st.keys_derived, 1u);
  EXPECT_EQ(st.holdback.released_keyed, 1u);
  EXPECT_EQ(st.packets_in, 3u);
  EXPECT_EQ(st.packet_batches, 1u);
}

// The lifetime contract: once push_packets() returns, the caller may reuse the memory the frames
// were in (ring slots). Held packets must come out with their original bytes.
TEST(Correlator, FramesMayBeReusedAfterPushPacketsReturns) {
  LockedSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(9);
  Batch b;
  b.add(1, tcp_frame(cli(40000), kSrv, kPsh | kAck, hello_record(1, r)));
  b.add(2, tcp_frame(cli(40000), kSrv, kPsh | kAck, appdata_record(3000, 0x77)));
  std::vector<std::vector<uint8_t>> original(b.frames.begin(), b.frames.end());
  b.push(c);
  for (auto& f : b.frames) std::fill(f.begin(), f.end(), 0xEE);  // the ring slot is reused
  c.push_secrets(tls12(r));
  c.wait_idle();
  ASSERT_EQ(sink.inner.events.size(), 3u);
  EXPECT_EQ(sink.inner.events[1].bytes, original[0]);
  EXPECT_EQ(sink.inner.events[2].bytes, original[1]);
}

TEST(Correlator, Tls13SecretsBecomeFiveLinesInOneDsb) {
  LockedSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(3);
  Batch b;
  b.add(1, tcp_frame(cli(40000), kSrv, kPsh | kAck, hello_record(1, r)));
  b.push(c);
  c.push_secrets(tls13(r));
  c.wait_idle();
  ASSERT_EQ(sink.inner.events.size(), 2u);
  const std::string& l = sink.inner.events[0].lines;
  for (const char* label : {"CLIENT_HANDSHAKE_TRAFFIC_SECRET ", "SERVER_HANDSHAKE_TRAFFIC_SECRET ",
                            "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 ", "EXPORTER_SECRET "})
    EXPECT_NE(l.find(std::string(label) + hex(r)), std::string::npos) << label;
  EXPECT_EQ(sink.inner.events[1].meta.ts_ns, 1u);
}

TEST(Correlator, DuplicateSecretsAreWrittenOnce) {
  LockedSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(4);
  for (int i = 0; i < 5; ++i) c.push_secrets(tls12(r));
  c.wait_idle();
  EXPECT_EQ(sink.inner.events.size(), 1u);
  auto st = c.stats();
  EXPECT_EQ(st.secrets_in, 5u);
  EXPECT_EQ(st.duplicates, 4u);
  EXPECT_EQ(st.holdback.dsb_written, 1u);
}

TEST(Correlator, NullKeysAreRejectedAndDoNotShadowRealOnes) {
  LockedSink sink;
  HoldBackConfig cfg;
  cfg.hold_ns = 100 * kMs;
  Correlator c(cfg, sink, 1024);
  Random r = make_random(5);
  Batch b;
  b.add(1, tcp_frame(cli(40000), kSrv, kPsh | kAck, hello_record(1, r)));
  b.push(c);
  c.push_secrets(tls12(r, 0));           // all-zero master key: read too early
  c.push_secrets(tls12(Random{}, 0x11)); // all-zero client random
  auto t13 = tls13(make_random(6));
  t13.cipher_id = 0x9999;                // unknown suite
  c.push_secrets(t13);
  c.wait_idle();
  EXPECT_EQ(sink.inner.events.size(), 0u);
  EXPECT_EQ(c.stats().null_keys, 3u);
  c.push_secrets(tls12(r));  // the real secrets for the same random still get through
  c.wait_idle();
  ASSERT_EQ(sink.inner.events.size(), 2u);
  EXPECT_EQ(sink.inner.events[0].kind, Event::Secrets);
  EXPECT_EQ(c.stats().duplicates, 0u);
}

TEST(Correlator, TickReleasesStalledFlowAndDrainFlushes) {
  LockedSink sink;
  HoldBackConfig cfg;
  cfg.hold_ns = 100 * kMs;
  Correlator c(cfg, sink, 1024);
  Batch b;
  b.add(1000, tcp_frame(cli(40000), kSrv, kPsh | kAck, hello_record(1, make_random(7))));
  b.add(1001, tcp_frame(cli(40001), kSrv, kPsh | kAck, hello_record(1, make_random(8))));
  b.push(c);
  c.tick(1000 + 50 * kMs);
  c.wait_idle();
  EXPECT_EQ(sink.inner.events.size(), 0u);
  c.tick(1000 + 100 * kMs);
  c.wait_idle();
  EXPECT_EQ(sink.inner.events.size(), 1u);
  EXPECT_EQ(c.stats().holdback.released_timeout, 1u);
  c.drain();
  EXPECT_EQ(sink.inner.events.size(), 2u);
  EXPECT_EQ(c.stats().holdback.released_timeout, 2u);
}

// Packets from one thread, secrets (with duplicates) from another, racing: every flow ends up
// either keyed with its DSB before its ClientHello or released by keys-before-hello, and no
// packet is lost or reordered within its flow.
TEST(Correlator, ConcurrentPacketsAndSecretsKeepPerFlowOrder) {
  LockedSink sink;
  Correlator c({}, sink, 4096);
  constexpr int kFlows = 200;
  std::thread keys([&] {
    for (int rep = 0; rep < 2; ++rep)
      for (int i = 0; i < kFlows; ++i) c.push_secrets(tls12(make_random(static_cast<uint8_t>(i)), 0x33));
  });
  uint64_t ts = 1;
  for (int i = 0; i < kFlows; ++i) {
    Batch b;
    uint16_t port = static_cast<uint16_t>(42000 + i);
    b.add(ts++, tcp_frame(cli(port), kSrv, kPsh | kAck, hello_record(1, make_random(static_cast<uint8_t>(i)))));
    b.add(ts++, tcp_frame(kSrv, cli(port), kPsh | kAck, hello_record(2, make_random(250))));
    b.add(ts++, tcp_frame(cli(port), kSrv, kPsh | kAck, appdata_record(100, 1)));
    b.push(c);
  }
  keys.join();
  c.drain();
  auto st = c.stats();
  // make_random(i) for i and i+256 collide only above 255; 200 distinct randoms.
  EXPECT_EQ(st.duplicates, static_cast<uint64_t>(kFlows));
  EXPECT_EQ(st.holdback.dsb_written, static_cast<uint64_t>(kFlows));
  EXPECT_EQ(st.holdback.released_timeout, 0u);
  std::map<std::string, uint16_t> port_of;
  for (int i = 0; i < kFlows; ++i) port_of[hex(make_random(static_cast<uint8_t>(i)))] = static_cast<uint16_t>(42000 + i);
  std::map<uint16_t, std::vector<uint64_t>> per_flow;
  std::map<uint16_t, bool> dsb_seen;
  size_t packets = 0;
  for (const Event& e : sink.inner.events) {
    if (e.kind == Event::Secrets) {
      ASSERT_GE(e.lines.size(), 14u + 64u);
      dsb_seen[port_of.at(e.lines.substr(14, 64))] = true;
      continue;
    }
    ++packets;
    uint16_t sport = static_cast<uint16_t>(e.bytes[34] << 8 | e.bytes[35]);
    uint16_t dport = static_cast<uint16_t>(e.bytes[36] << 8 | e.bytes[37]);
    uint16_t port = sport == 443 ? dport : sport;
    if (per_flow[port].empty()) {
      EXPECT_TRUE(dsb_seen[port]) << "ClientHello of " << port << " before its DSB";
    }
    per_flow[port].push_back(e.meta.ts_ns);
  }
  EXPECT_EQ(packets, 3u * kFlows);
  for (auto& [port, v] : per_flow) {
    ASSERT_EQ(v.size(), 3u) << port;
    EXPECT_LT(v[0], v[1]);
    EXPECT_LT(v[1], v[2]);
  }
}

}  // namespace
}  // namespace ehp::correlate

namespace ehp::correlate {
namespace {

// A sink that blocks inside packet() until released: the pump stuck behind a slow output.
class GateSink : public Sink {
 public:
  void packet(const PacketMeta& m, std::span<const uint8_t> f) override {
    {
      std::unique_lock lk(mu);
      entered = true;
      cv.notify_all();
      cv.wait(lk, [&] { return open; });
    }
    inner.packet(m, f);
  }
  void secrets(std::string_view l) override { inner.secrets(l); }
  void wait_entered() {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return entered; });
  }
  void release() {
    std::lock_guard lk(mu);
    open = true;
    cv.notify_all();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, open = false;
  RecordingSink inner;  // only touched by the thread inside the hold-back stage
};

// The keys thread never waits for a hold-back stage the pump holds (a blocked keys thread lets
// the uprobe ring overflow): push_secrets returns while the pump is stuck in the sink, and the
// keys reach the flow before its ClientHello as soon as the stage is free again.
TEST(Correlator, SecretsDoNotWaitForABusyHoldBackStage) {
  GateSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(31);
  Batch held;
  held.add(1, tcp_frame(cli(41000), kSrv, kPsh | kAck, hello_record(1, r)));
  held.push(c);  // held: waits for its keys, nothing reaches the sink
  Batch stuck;
  stuck.add(2, udp_frame(cli(7), kSrv, 40));
  std::thread pump([&] { stuck.push(c); });  // blocks inside the sink
  sink.wait_entered();
  std::atomic<bool> returned{false};
  std::thread keys([&] {
    c.push_secrets(tls12(r));
    returned = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!returned && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling interval only
  EXPECT_TRUE(returned.load()) << "push_secrets waited for the busy hold-back stage";
  sink.release();
  pump.join();
  keys.join();
  c.wait_idle();
  // UDP packet, then the DSB right before the held ClientHello.
  ASSERT_EQ(sink.inner.events.size(), 3u);
  EXPECT_EQ(sink.inner.events[0].meta.ts_ns, 2u);
  EXPECT_EQ(sink.inner.events[1].kind, Event::Secrets);
  EXPECT_EQ(sink.inner.events[2].meta.ts_ns, 1u);
  EXPECT_EQ(c.stats().holdback.released_keyed, 1u);
}

}  // namespace
}  // namespace ehp::correlate

namespace ehp::correlate {
namespace {

// push_secrets derives on the calling thread (lightweight nodes run inline only with noexcept
// bodies; otherwise a task would wait in the worker-less arena) and parks the lines; the pump's
// next message (here a tick) applies them before its own work, so the DSB precedes the
// ClientHello without anyone calling wait_idle().
TEST(Correlator, KeysDerivedInlineAndAppliedByTheNextPumpMessage) {
  LockedSink sink;
  Correlator c({}, sink, 1024);
  Random r = make_random(41);
  Batch b;
  b.add(1 * kMs, tcp_frame(cli(42000), kSrv, kPsh | kAck, hello_record(1, r)));
  b.push(c);
  c.push_secrets(tls12(r));
  EXPECT_EQ(c.stats().keys_derived, 1u) << "derivation did not run inside push_secrets";
  {
    std::lock_guard lk(sink.mu);
    EXPECT_EQ(sink.inner.events.size(), 0u) << "the keys thread must not write to the sink";
  }
  c.tick(2 * kMs);  // the pump's periodic message, well before --hold-ms
  std::lock_guard lk(sink.mu);
  ASSERT_EQ(sink.inner.events.size(), 2u);
  EXPECT_EQ(sink.inner.events[0].kind, Event::Secrets);
  EXPECT_EQ(sink.inner.events[1].meta.ts_ns, 1 * kMs);
}

}  // namespace
}  // namespace ehp::correlate
