// SPDX-License-Identifier: BSD-2-Clause
// Throughput of each pcapng encoder (bytes/s and items/s), with a plain memcpy of the same
// packet sizes as the ceiling in the same run: the EPB encoder should stay close to it.
// Blocks are written back to back into a 64 MiB ring, the way the writer fills its batch buffers,
// so the figures include the memory traffic rather than one hot cache line.
#include "output/pcapng.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace ehp::pcapng;

// 64 MiB: larger than this machine's 32 MiB L3, so the figures are memory-bound like the
// writer's real batch buffers, not cache-bound.
constexpr size_t kRingBytes = 64u << 20;

class Ring {
 public:
  Ring() : buf_(kRingBytes) {}
  // Room for `n` bytes at the cursor, wrapping to the start when the tail is too short.
  std::span<uint8_t> next(size_t n) {
    if (pos_ + n > buf_.size()) pos_ = 0;
    return {buf_.data() + pos_, buf_.size() - pos_};
  }
  void advance(size_t n) { pos_ += n; }
  uint8_t* data() { return buf_.data(); }

 private:
  std::vector<uint8_t> buf_;
  size_t pos_ = 0;
};

template <typename Fn>
void run(benchmark::State& state, size_t size, Fn encode) {
  Ring ring;
  size_t total = 0;
  for (auto _ : state) {
    const size_t n = encode(ring.next(size));
    if (n != size) {
      state.SkipWithError("encoder refused");
      break;
    }
    ring.advance(n);
    total += n;
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(total));
  state.SetItemsProcessed(state.iterations());
}

void BM_EncodeShb(benchmark::State& state) {
  const ShbInfo i{.hardware = "x86_64", .os = "Linux 6.18.0", .userappl = "ecapture-hp 0.1.0"};
  run(state, shb_size(i), [&](std::span<uint8_t> o) { return encode_shb(o, i); });
}
BENCHMARK(BM_EncodeShb);

void BM_EncodeIdb(benchmark::State& state) {
  const IdbInfo i{.name = "eth0", .description = "ecapture-hp TC egress+ingress", .filter = "tcp port 443"};
  run(state, idb_size(i), [&](std::span<uint8_t> o) { return encode_idb(o, i); });
}
BENCHMARK(BM_EncodeIdb);

// A TLS 1.3 session's key log: 5 lines of label + 64 hex random + 96 hex secret (SHA-384).
void BM_EncodeDsb(benchmark::State& state) {
  std::string keylog;
  for (const char* label : {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
                            "CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"})
    keylog += std::string(label) + " " + std::string(64, 'a') + " " + std::string(96, 'b') + "\n";
  run(state, dsb_size(keylog), [&](std::span<uint8_t> o) { return encode_dsb(o, keylog); });
}
BENCHMARK(BM_EncodeDsb);

void BM_EncodeIsb(benchmark::State& state) {
  const IsbInfo i{.interface_id = 1, .ts_ns = 2, .starttime_ns = 1, .endtime_ns = 2, .ifrecv = 1000000,
                  .ifdrop = 3, .osdrop = 4, .usrdeliv = 999993};
  run(state, isb_size(i), [&](std::span<uint8_t> o) { return encode_isb(o, i); });
}
BENCHMARK(BM_EncodeIsb);

enum Opts { kNone = 0, kTypical = 1, kAll = 2 };

// Arg 0: packet bytes; arg 1: option set. "Typical" is what the capture writes per packet:
// direction, the process comment and pid/tid.
void BM_EncodeEpb(benchmark::State& state) {
  const std::vector<uint8_t> pkt(static_cast<size_t>(state.range(0)), 0x42);
  EpbInfo i{.ts_ns = 1764151200'000000001ull, .caplen = static_cast<uint32_t>(pkt.size()),
            .origlen = static_cast<uint32_t>(pkt.size())};
  if (state.range(1) >= kTypical) {
    i.flags = kFlagOutbound;
    i.comment = "pid=123456 tid=123457 uid=1000 comm=curl";
    i.has_pid_tid = true;
    i.pid = 123456;
    i.tid = 123457;
  }
  if (state.range(1) >= kAll) {
    i.has_packetid = i.has_queue = i.has_dropcount = i.has_verdict_tc = true;
    i.packetid = 77;
    i.queue = 1;
  }
  uint64_t ts = i.ts_ns;
  run(state, epb_size(i), [&](std::span<uint8_t> o) {
    i.ts_ns = ++ts;  // a field that changes per packet, as in real use
    return encode_epb(o, i, pkt);
  });
  state.SetLabel(state.range(1) == kNone ? "no options" : state.range(1) == kTypical ? "typical options" : "all options");
}
BENCHMARK(BM_EncodeEpb)->ArgsProduct({{64, 1400}, {kNone, kTypical, kAll}});

// The ceiling: copying the packet bytes alone into the same ring.
void BM_MemcpyBaseline(benchmark::State& state) {
  const std::vector<uint8_t> pkt(static_cast<size_t>(state.range(0)), 0x42);
  run(state, pkt.size(), [&](std::span<uint8_t> o) {
    std::memcpy(o.data(), pkt.data(), pkt.size());
    return pkt.size();
  });
}
BENCHMARK(BM_MemcpyBaseline)->Arg(64)->Arg(1400);

// complete_prefix over a 64 MiB buffer of 1400-B EPBs (the writer runs it after ENOSPC).
void BM_CompletePrefix(benchmark::State& state) {
  std::vector<uint8_t> buf(kRingBytes);
  const std::vector<uint8_t> pkt(1400, 0x42);
  const ShbInfo shb{};
  const IdbInfo idb{};
  const EpbInfo epb{.caplen = 1400, .origlen = 1400, .flags = kFlagInbound, .comment = "pid=1 comm=x"};
  size_t n = encode_shb(buf, shb);
  n += encode_idb(std::span(buf).subspan(n), idb);
  while (n + epb_size(epb) <= buf.size()) n += encode_epb(std::span(buf).subspan(n), epb, pkt);
  const std::span<const uint8_t> file(buf.data(), n);
  for (auto _ : state) benchmark::DoNotOptimize(complete_prefix(file));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_CompletePrefix);

}  // namespace

BENCHMARK_MAIN();
