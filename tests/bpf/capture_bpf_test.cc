// SPDX-License-Identifier: BSD-2-Clause
// Loads the real TC capture program and drives it with BPF_PROG_TEST_RUN (root). Checks the
// record ABI end to end: kernel program -> per-CPU ring -> consumer thread -> merge -> PacketRef.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "abi/capture_abi.h"
#include "capture/capture.h"

namespace ehp::capture {
namespace {

uint64_t wall_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}

// Ethernet + IPv4 + UDP frame of total length len with a recognisable payload.
std::vector<uint8_t> make_frame(size_t len, uint8_t seed) {
  std::vector<uint8_t> f(len);
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
  memcpy(f.data(), eth, 14);
  uint16_t ip_len = uint16_t(len - 14);
  uint8_t ip[20] = {0x45, 0, uint8_t(ip_len >> 8), uint8_t(ip_len), 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2};
  memcpy(f.data() + 14, ip, 20);
  uint16_t udp_len = uint16_t(len - 34);
  uint8_t udp[8] = {0x30, 0x39, 0x30, 0x3a, uint8_t(udp_len >> 8), uint8_t(udp_len), 0, 0};
  memcpy(f.data() + 34, udp, 8);
  for (size_t i = 42; i < len; i++) f[i] = uint8_t(seed + i * 7);
  return f;
}

int run_prog(int prog_fd, const std::vector<uint8_t>& frame, int repeat = 1) {
  LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_size_in = uint32_t(frame.size()),
              .repeat = repeat);
  int rc = bpf_prog_test_run_opts(prog_fd, &o);
  if (rc != 0) return rc;
  return int(o.retval);
}

void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  pthread_setaffinity_np(pthread_self(), sizeof(s), &s);
}

// Collects refs until `want` arrived or the timeout passed; copies bytes and releases.
struct Got {
  PacketRef ref;
  std::vector<uint8_t> bytes;
};
std::vector<Got> collect(Capture& c, size_t want, int timeout_ms) {
  std::vector<Got> out;
  PacketRef refs[64];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    size_t n = c.next_batch(refs, 64, 100);
    for (size_t i = 0; i < n; i++) {
      out.push_back({refs[i], std::vector<uint8_t>(refs[i].data, refs[i].data + refs[i].cap_len)});
      c.release(refs[i]);
    }
  }
  return out;
}

Options lo_opts() {
  Options o;
  o.ifaces = {"lo"};
  o.ring_bytes_per_cpu = 1u << 20;
  return o;
}

TEST(CaptureBpf, RejectsUnknownAndDownInterfaces) {
  std::string err;
  Options o;
  o.ifaces = {"p5nosuchif0"};
  EXPECT_EQ(Capture::open(o, &err), nullptr);
  EXPECT_NE(err.find("unknown interface 'p5nosuchif0'"), std::string::npos) << err;

  // A fresh veth pair is down until someone sets it up.
  (void)system("ip link del p5down0 2>/dev/null");
  ASSERT_EQ(system("ip link add p5down0 type veth peer name p5down1"), 0);
  o.ifaces = {"p5down0"};
  err.clear();
  EXPECT_EQ(Capture::open(o, &err), nullptr);
  EXPECT_NE(err.find("'p5down0' is down"), std::string::npos) << err;
  ASSERT_EQ(system("ip link del p5down0"), 0);

  o.ifaces = {"lo"};
  o.ring_bytes_per_cpu = 12345;
  err.clear();
  EXPECT_EQ(Capture::open(o, &err), nullptr);
  EXPECT_NE(err.find("power of two"), std::string::npos) << err;
}

TEST(CaptureBpf, BeforeLoadSeesProgramsAndCanAbort) {
  Options o = lo_opts();
  bool called = false;
  o.before_load = [&](bpf_object* obj, bpf_program* in, bpf_program* eg, std::string* err) {
    called = obj && in && eg && std::string(bpf_program__name(in)) == EHP_CAPTURE_PROG_INGRESS &&
             std::string(bpf_program__name(eg)) == EHP_CAPTURE_PROG_EGRESS;
    *err = "filter rejected";
    return false;
  };
  std::string err;
  EXPECT_EQ(Capture::open(o, &err), nullptr);
  EXPECT_TRUE(called);
  EXPECT_EQ(err, "filter rejected");
}

TEST(CaptureBpf, RecordCarriesFrameAndMetadata) {
  std::string err;
  auto c = Capture::open(lo_opts(), &err);
  ASSERT_TRUE(c) << err;
  ASSERT_EQ(c->interfaces().size(), 1u);
  EXPECT_EQ(c->interfaces()[0].linktype, 1);
  c->start();
  auto in = make_frame(1000, 1), eg = make_frame(200, 2);
  uint64_t before = wall_ns();
  // TC_ACT_UNSPEC (-1): never drops, lets the next filter run.
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), in), -1);
  EXPECT_EQ(run_prog(c->egress_prog_fd(), eg), -1);
  auto got = collect(*c, 2, 5000);
  uint64_t after = wall_ns();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_LE(got[0].ref.ts_ns, got[1].ref.ts_ns);
  EXPECT_EQ(got[0].ref.direction, EHP_DIR_INGRESS);
  EXPECT_EQ(got[0].bytes, in);
  EXPECT_EQ(got[0].ref.wire_len, 1000u);
  EXPECT_EQ(got[1].ref.direction, EHP_DIR_EGRESS);
  EXPECT_EQ(got[1].bytes, eg);
  for (auto& g : got) {
    // Wall clock, not monotonic: inside the test's own window.
    EXPECT_GE(g.ref.ts_ns + 1'000'000, before);
    EXPECT_LE(g.ref.ts_ns, after + 1'000'000);
    EXPECT_EQ(g.ref.ifindex, 1u);  // test_run uses the netns loopback device
    EXPECT_FALSE(g.ref.proc.known);
  }
  auto s = c->stats();
  EXPECT_EQ(s.kernel_records, 2u);
  EXPECT_EQ(s.records, 2u);
  EXPECT_EQ(s.kernel_bytes, 1200u);
  EXPECT_EQ(s.reserve_fail, 0u);
  EXPECT_EQ(s.delivered, 2u);
  EXPECT_FALSE(c->drained());
  c->detach();
  c->stop();
  PacketRef r;
  EXPECT_EQ(c->next_batch(&r, 1, 1000), 0u);
  EXPECT_TRUE(c->drained());
}

// Records still in the rings at stop() are delivered after it, then next_batch returns 0.
TEST(CaptureBpf, StopDrainsWhatIsLeft) {
  std::string err;
  auto c = Capture::open(lo_opts(), &err);
  ASSERT_TRUE(c) << err;
  c->start();
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), make_frame(500, 9), 100), -1);
  c->detach();
  c->stop();
  std::vector<PacketRef> refs(256);
  size_t total = 0, n;
  while ((n = c->next_batch(refs.data(), refs.size(), 1000)) > 0) {
    total += n;
    c->release(refs[n - 1]);
  }
  EXPECT_EQ(total, 100u);
  EXPECT_TRUE(c->drained());
  EXPECT_EQ(c->stats().kernel_records, 100u);
}

// Forced wakeups are edge-triggered on the ring's unread bytes: with nobody reading, 100
// records of ~1.5 KB cross a 64 KiB threshold exactly once, more records above it force no
// more, and every record is then delivered.
TEST(CaptureBpf, WakeupEdgeFollowsProducedBytes) {
  Options o = lo_opts();
  o.wakeup_bytes = 64 * 1024;
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  pin(0);
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), make_frame(1500, 5), 100), -1);
  auto s = c->stats();
  EXPECT_EQ(s.kernel_records, 100u);
  EXPECT_EQ(s.wakeups, 1u) << "one crossing of the threshold, one forced wakeup";
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), make_frame(1500, 6), 10), -1);
  EXPECT_EQ(c->stats().wakeups, 1u) << "still above the threshold: no new edge";
  c->start();
  auto got = collect(*c, 110, 5000);
  EXPECT_EQ(got.size(), 110u);
}

TEST(CaptureBpf, SnaplenTruncates) {
  Options o = lo_opts();
  o.snaplen = 100;
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  c->start();
  auto f = make_frame(1500, 3);
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), f), -1);
  auto got = collect(*c, 1, 5000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ref.wire_len, 1500u);
  EXPECT_EQ(got[0].ref.cap_len, 100u);
  EXPECT_EQ(got[0].bytes, std::vector<uint8_t>(f.begin(), f.begin() + 100));
  EXPECT_EQ(c->stats().truncated, 1u);
}

TEST(CaptureBpf, PidFilterKeepsUnattributedPacketsOut) {
  Options o = lo_opts();
  o.pid = 1;
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  c->start();
  auto f = make_frame(300, 4);
  EXPECT_EQ(run_prog(c->ingress_prog_fd(), f, 10), -1);
  auto s = c->stats();
  EXPECT_EQ(s.kernel_seen, 10u);
  EXPECT_EQ(s.filtered_proc, 10u);
  EXPECT_EQ(s.kernel_records, 0u);
  c->stop();
  PacketRef r;
  EXPECT_EQ(c->next_batch(&r, 1, 1000), 0u);
}

// Many records from two CPUs at once: all delivered, globally ordered, nothing lost.
TEST(CaptureBpf, MergesCpusInTimestampOrder) {
  std::string err;
  auto c = Capture::open(lo_opts(), &err);
  ASSERT_TRUE(c) << err;
  c->start();
  unsigned ncpu = std::min(2u, std::thread::hardware_concurrency());
  const int per_thread = 4000;
  std::vector<std::thread> ts;
  for (unsigned cpu = 0; cpu < ncpu; cpu++) {
    ts.emplace_back([&, cpu] {
      pin(int(cpu));
      auto f = make_frame(64 + cpu * 100, uint8_t(cpu));
      for (int i = 0; i < per_thread / 100; i++) run_prog(cpu % 2 ? c->egress_prog_fd() : c->ingress_prog_fd(), f, 100);
    });
  }
  size_t want = size_t(per_thread) * ncpu;
  std::vector<uint64_t> stamps;
  PacketRef refs[256];
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (stamps.size() < want && std::chrono::steady_clock::now() < deadline) {
    size_t n = c->next_batch(refs, 256, 100);
    for (size_t i = 0; i < n; i++) {
      stamps.push_back(refs[i].ts_ns);
      c->release(refs[i]);
    }
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(stamps.size(), want);
  EXPECT_TRUE(std::is_sorted(stamps.begin(), stamps.end()));
  auto s = c->stats();
  EXPECT_EQ(s.out_of_order, 0u);
  EXPECT_EQ(s.kernel_records, want);
  EXPECT_EQ(s.reserve_fail, 0u);
  EXPECT_EQ(s.queue_full, 0u);
}

// A ring nobody releases fills up: the kernel counts every lost record on that CPU's counter.
TEST(CaptureBpf, ReserveFailuresCountedPerCpu) {
  Options o = lo_opts();
  o.ring_bytes_per_cpu = 16384;
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  c->start();
  const int total = 50;
  std::thread t([&] {
    pin(0);
    auto f = make_frame(1000, 5);
    run_prog(c->ingress_prog_fd(), f, total);
  });
  t.join();
  auto s = c->stats();
  ASSERT_GE(s.per_cpu_reserve_fail.size(), 1u);
  EXPECT_GT(s.per_cpu_reserve_fail[0], 0u);
  EXPECT_EQ(s.reserve_fail, s.per_cpu_reserve_fail[0]);
  EXPECT_EQ(s.kernel_records + s.reserve_fail, uint64_t(total));
  EXPECT_LT(s.kernel_records, 16u);
  // The records that fit are still delivered; releasing them frees the ring again.
  auto got = collect(*c, s.kernel_records, 5000);
  EXPECT_EQ(got.size(), s.kernel_records);
  std::thread t2([&] {
    pin(0);
    run_prog(c->ingress_prog_fd(), make_frame(1000, 6), 1);
  });
  t2.join();
  EXPECT_EQ(collect(*c, 1, 5000).size(), 1u);
}

}  // namespace
}  // namespace ehp::capture

namespace ehp::capture {
namespace {

// --cpus 0: one consumer thread on CPU 0 also drains the ring of CPU 1.
TEST(CaptureBpf, OneConsumerDrainsEveryRing) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs";
  Options o = lo_opts();
  o.cpus = {0};
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  c->start();
  for (int cpu : {1, 0}) {
    std::thread t([&] {
      pin(cpu);
      run_prog(c->egress_prog_fd(), make_frame(200, uint8_t(cpu)), 5);
    });
    t.join();
  }
  auto got = collect(*c, 10, 5000);
  EXPECT_EQ(got.size(), 10u);
  for (size_t i = 1; i < got.size(); i++) EXPECT_LE(got[i - 1].ref.ts_ns, got[i].ref.ts_ns);
  // CPU 1's packets were produced first, so they come first.
  if (got.size() == 10) {
    EXPECT_EQ(got[0].bytes, make_frame(200, 1));
    EXPECT_EQ(got[9].bytes, make_frame(200, 0));
  }
  o.cpus = {7777};
  EXPECT_EQ(Capture::open(o, &err), nullptr);
  EXPECT_NE(err.find("cpu 7777 is not online"), std::string::npos) << err;
}

// release(last ref) frees every earlier ref on EVERY ring (the writer releases once per batch).
// Small rings: if a ring's space were not returned, the second round would fail to reserve.
TEST(CaptureBpf, ReleasingLastRefFreesAllRings) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs";
  Options o = lo_opts();
  o.ring_bytes_per_cpu = 16384;  // 15 records of 1000-byte frames
  std::string err;
  auto c = Capture::open(o, &err);
  ASSERT_TRUE(c) << err;
  c->start();
  auto produce = [&](int cpu, int n) {
    std::thread t([&] {
      pin(cpu);
      run_prog(c->ingress_prog_fd(), make_frame(1000, uint8_t(cpu)), n);
    });
    t.join();
  };
  for (int round = 0; round < 3; round++) {
    produce(0, 12);
    produce(1, 12);
    std::vector<PacketRef> all;
    PacketRef refs[64];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (all.size() < 24 && std::chrono::steady_clock::now() < deadline) {
      size_t n = c->next_batch(refs, 64, 100);
      all.insert(all.end(), refs, refs + n);
    }
    ASSERT_EQ(all.size(), 24u) << "round " << round;
    c->release(all.back());
  }
  auto s = c->stats();
  EXPECT_EQ(s.reserve_fail, 0u);
  EXPECT_EQ(s.kernel_records, 72u);
}

}  // namespace
}  // namespace ehp::capture
