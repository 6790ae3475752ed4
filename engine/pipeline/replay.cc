// SPDX-License-Identifier: BSD-2-Clause
// `ecapture-hp replay`: pushes a capture file through the same correlator, sink and io_uring
// writer as a live capture; the benchmark of the userspace pipeline.
#include <pcap/pcap.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

#include "correlate/correlator.h"
#include "engine.h"
#include "sink/pcapng_sink.h"

namespace ehp {
namespace {
int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 1;
}
}  // namespace

int run_replay(const ReplayConfig& rc) {
  char errbuf[PCAP_ERRBUF_SIZE] = "";
  std::string err;
  pcap_t* p = pcap_open_offline(rc.input.c_str(), errbuf);
  if (!p) return fail(std::string("cannot read ") + rc.input + ": " + errbuf);
  int dlt = pcap_datalink(p);
  // Load the whole input once; --repeat pushes it again without re-reading the disk.
  std::vector<correlate::PacketMeta> metas;
  std::vector<uint8_t> arena;
  std::vector<std::pair<size_t, size_t>> spans;
  pcap_pkthdr* h;
  const u_char* data;
  int rc2;
  while ((rc2 = pcap_next_ex(p, &h, &data)) == 1) {
    correlate::PacketMeta m{};
    m.ts_ns = uint64_t(h->ts.tv_sec) * 1'000'000'000ull + uint64_t(h->ts.tv_usec) *
              (pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO ? 1 : 1000);
    m.linktype = uint16_t(dlt);
    m.wire_len = h->len;
    m.cap_len = h->caplen;
        spans.emplace_back(arena.size(), h->caplen);
    arena.insert(arena.end(), data, data + h->caplen);
    metas.push_back(m);
  }
  if (rc2 == -1) {
    std::string e = pcap_geterr(p);
    pcap_close(p);
    return fail("reading " + rc.input + ": " + e);
  }
  pcap_close(p);

  SinkOptions so;
  so.path = rc.output;
  so.direct_io = rc.direct_io;
  auto sink = PcapngSink::open(so, {{"replay", "replay of " + rc.input, uint16_t(dlt)}}, &err);
  if (!sink) return fail(err);
  correlate::HoldBackConfig hc;
  // No key comes during a replay (the input's DSBs are not read as keys), so nothing is held:
  // the output keeps the input's order.
  correlate::FixedKeyPolicy policy(false);
  correlate::Correlator corr(hc, *sink, 1 << 16, 0, &policy);
  std::vector<std::span<const uint8_t>> frames(spans.size());
  for (size_t i = 0; i < spans.size(); ++i)
    frames[i] = std::span<const uint8_t>(arena.data() + spans[i].first, spans[i].second);

  auto t0 = std::chrono::steady_clock::now();
  uint64_t pkts = 0, bytes = 0;
  constexpr size_t kBatch = 256;
  for (uint32_t r = 0; r < rc.repeat && !sink->failed(); ++r) {
    for (size_t i = 0; i < metas.size(); i += kBatch) {
      size_t n = std::min(kBatch, metas.size() - i);
      corr.push_packets(metas.data() + i, frames.data() + i, n);
      for (size_t j = 0; j < n; ++j) bytes += frames[i + j].size();
      pkts += n;
    }
  }
  corr.drain();
  bool ok = sink->close(&err);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!ok) return fail(err);
  printf("replay: %llu packets, %llu bytes in %.3f s, %.0f pkt/s, %.1f MB/s\n", (unsigned long long)pkts,
         (unsigned long long)bytes, s, pkts / s, bytes / s / 1e6);
  return 0;
}

}  // namespace ehp
