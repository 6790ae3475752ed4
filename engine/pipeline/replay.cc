// SPDX-License-Identifier: BSD-2-Clause
// `ecapture-hp replay`: pushes a capture file through the same correlator, sink and io_uring
// writer as a live capture; the benchmark of the userspace pipeline. The input's TLS keys (its
// Decryption Secrets Blocks) go through the correlator as keys, so the output decrypts as the
// input did.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>
#include <vector>

#include "correlate/correlator.h"
#include "engine.h"
#include "pipeline/capture_file.h"
#include "sink/pcapng_sink.h"
#include "tls/keys.h"

namespace ehp {
namespace {
int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 1;
}

// One DSB's key log text -> one Secrets per client random (its lines as the library logged
// them). Lines that are not NSS key log lines are counted and skipped.
void keys_of_dsb(std::string_view text, std::vector<tls::Secrets>* out, uint64_t* bad_lines) {
  std::map<std::array<uint8_t, 32>, size_t> index;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto e = tls::parse_keylog_line(line);
    if (!e) {
      ++*bad_lines;
      continue;
    }
    auto [it, fresh] = index.emplace(e->client_random, out->size());
    if (fresh) {
      out->emplace_back();
      out->back().client_random = e->client_random;
    }
    auto& logged = (*out)[it->second].logged;
    logged.append(line);
    logged.push_back('\n');
  }
}

}  // namespace

int run_replay(const ReplayConfig& rc) {
  std::string err;
  auto in = pipeline::CaptureFileReader::open(rc.input, &err);
  if (!in) return fail(err);
  // Load the whole input once; --repeat pushes it again without re-reading the disk. Keys stay
  // where they were in the file: before the packets that follow them.
  std::vector<correlate::PacketMeta> metas;
  std::vector<uint8_t> arena;
  std::vector<std::pair<size_t, size_t>> spans;
  struct KeysAt {
    size_t before_packet;
    tls::Secrets s;
  };
  std::vector<KeysAt> keys;
  uint64_t bad_key_lines = 0, dsbs = 0;
  pipeline::CaptureRecord r;
  int got;
  while ((got = in->next(&r, &err)) == 1) {
    if (r.kind == pipeline::CaptureRecord::Kind::TlsKeyLog) {
      ++dsbs;
      std::vector<tls::Secrets> ss;
      keys_of_dsb(std::string_view(reinterpret_cast<const char*>(r.data.data()), r.data.size()), &ss, &bad_key_lines);
      for (auto& s : ss) keys.push_back({metas.size(), std::move(s)});
      continue;
    }
    correlate::PacketMeta m{};
    m.ts_ns = r.ts_ns;
    m.interface_id = r.interface_id;
    m.linktype = in->interfaces()[r.interface_id].linktype;
    m.wire_len = r.wire_len;
    m.cap_len = uint32_t(r.data.size());
    spans.emplace_back(arena.size(), r.data.size());
    arena.insert(arena.end(), r.data.begin(), r.data.end());
    metas.push_back(m);
  }
  if (got < 0) return fail(err);
  // A capture cut mid-write (disk full, killed writer): keep what is readable, as tshark does.
  if (in->truncated_at() >= 0)
    fprintf(stderr, "ecapture-hp: warning: %s: the last record (at byte %lld) is cut short; replaying the %zu packets before it\n",
            rc.input.c_str(), (long long)in->truncated_at(), metas.size());
  if (bad_key_lines)
    fprintf(stderr, "ecapture-hp: warning: %s: %llu lines of its decryption secrets blocks are not key log lines (skipped)\n",
            rc.input.c_str(), (unsigned long long)bad_key_lines);

  std::vector<SinkIface> sifaces;
  const auto& ifs = in->interfaces();
  for (size_t i = 0; i < ifs.size(); ++i)
    sifaces.push_back({ifs[i].name.empty() ? (ifs.size() == 1 ? std::string("replay") : "replay" + std::to_string(i))
                                           : ifs[i].name,
                       "replay of " + rc.input, ifs[i].linktype});
  if (sifaces.empty()) sifaces.push_back({"replay", "replay of " + rc.input, 1});
  SinkOptions so;
  so.path = rc.output;
  so.direct_io = rc.direct_io;
  auto sink = PcapngSink::open(so, sifaces, &err);
  if (!sink) return fail(err);
  correlate::HoldBackConfig hc;
  // Keys come only from the input: when it has none, nothing is held and the output keeps the
  // input's order; when it has some, a session is held until its keys (which normally precede
  // it in the file, so it is written at once) or its hold time runs out.
  correlate::FixedKeyPolicy policy(!keys.empty());
  correlate::Correlator corr(hc, *sink, 1 << 16, 0, &policy);
  std::vector<std::span<const uint8_t>> frames(spans.size());
  for (size_t i = 0; i < spans.size(); ++i)
    frames[i] = std::span<const uint8_t>(arena.data() + spans[i].first, spans[i].second);

  auto t0 = std::chrono::steady_clock::now();
  uint64_t pkts = 0, bytes = 0;
  constexpr size_t kBatch = 256;
  for (uint32_t rep = 0; rep < rc.repeat && !sink->failed(); ++rep) {
    size_t k = 0;
    for (size_t i = 0; i < metas.size();) {
      // The keys that precede packet i, then packets up to the next keys (at most a batch).
      while (k < keys.size() && keys[k].before_packet <= i) corr.push_secrets(keys[k++].s);
      size_t n = std::min(kBatch, metas.size() - i);
      if (k < keys.size()) n = std::min(n, keys[k].before_packet - i);
      corr.push_packets(metas.data() + i, frames.data() + i, n);
      for (size_t j = 0; j < n; ++j) bytes += frames[i + j].size();
      pkts += n;
      i += n;
    }
    while (k < keys.size()) corr.push_secrets(keys[k++].s);
  }
  corr.drain();
  bool ok = sink->close(&err);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!ok) return fail(err);
  printf("replay: %llu packets, %llu bytes in %.3f s, %.0f pkt/s, %.1f MB/s\n", (unsigned long long)pkts,
         (unsigned long long)bytes, s, pkts / s, bytes / s / 1e6);
  if (dsbs)
    printf("replay: %llu decryption secrets blocks in the input, %llu sessions' keys written\n", (unsigned long long)dsbs,
           (unsigned long long)sink->stats().dsbs);
  return 0;
}

}  // namespace ehp
