// SPDX-License-Identifier: BSD-2-Clause
// holdback_replay: replays a capture through HoldBack with TLS secrets delivered LATE, the way the
// uprobes deliver them (after the ServerHello and some application data), and writes a pcapng
// with ehp::pcapng's encoders. Used by holdback_e2e.sh to prove that the hold-back makes every session
// decrypt from the file alone, and that writing the keys when they arrive (--mode direct) does not.
//
//   holdback_replay --mode hold|direct|graph --out OUT.pcapng IN.pcap[ng] KEYLOG...
//
// --mode graph goes through the whole Correlator flow graph instead: packets in batches of 32,
// secrets as ehp::tls::Secrets through dedup, null check and derivation. A key log holds the
// derived TLS 1.3 secrets, not the handshake_secret the graph derives them from, so only TLS 1.2
// sessions (CLIENT_RANDOM + master secret) get secrets in this mode; TLS 1.3 sessions must be
// released by the final drain() as timeouts.
//
// Keys of a session (all its NSS key log lines, matched by client_random) are delivered right
// after the first client packet whose TCP payload starts with an application-data record (type 23)
// following the ServerHello -- i.e. after the encrypted HTTP request is already in the capture --
// or at the session's first FIN/RST if that comes earlier; leftovers at EOF.
// Last line: "holdback_replay: mode=M packets=P written=W dsb=D late_keys=L keyed=K timeout=T
// overflow=O without_flow=F (keys after request=R at close=C at eof=E)"
#include <pcap/pcap.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "correlate/correlator.h"
#include "net/frame.h"
#include "correlate/holdback.h"
#include "tls/keys.h"
#include "output/pcapng.h"

namespace {

using ehp::correlate::PacketMeta;
using Random = std::array<uint8_t, 32>;

// A minimal pcapng file writer on top of the block encoders: SHB + one IDB, then EPBs and DSBs.
class PcapngFileSink : public ehp::correlate::Sink {
 public:
  PcapngFileSink(const char* path, uint16_t linktype) : f_(std::fopen(path, "wb")) {
    if (!f_) return;
    ehp::pcapng::ShbInfo shb{"", "Linux", "ehp holdback_replay"};
    put(ehp::pcapng::shb_size(shb), [&](std::span<uint8_t> o) { return ehp::pcapng::encode_shb(o, shb); });
    ehp::pcapng::IdbInfo idb;
    idb.linktype = linktype;
    idb.name = "lo";
    put(ehp::pcapng::idb_size(idb), [&](std::span<uint8_t> o) { return ehp::pcapng::encode_idb(o, idb); });
  }
  ~PcapngFileSink() override {
    if (f_) std::fclose(f_);
  }
  bool ok() const { return f_ != nullptr && !failed_; }
  void packet(const PacketMeta& m, std::span<const uint8_t> frame) override {
    ehp::pcapng::EpbInfo e;
    e.ts_ns = m.ts_ns;
    e.caplen = static_cast<uint32_t>(frame.size());
    e.origlen = m.wire_len;
    put(ehp::pcapng::epb_size(e), [&](std::span<uint8_t> o) { return ehp::pcapng::encode_epb(o, e, frame); });
    ++packets;
  }
  void secrets(std::string_view lines) override {
    put(ehp::pcapng::dsb_size(lines), [&](std::span<uint8_t> o) { return ehp::pcapng::encode_dsb(o, lines); });
    ++dsbs;
  }
  uint64_t packets = 0, dsbs = 0;

 private:
  template <class Enc>
  void put(size_t n, Enc enc) {
    if (!f_) return;
    if (buf_.size() < n) buf_.resize(n);
    size_t w = enc(std::span<uint8_t>(buf_.data(), n));
    if (w != n || std::fwrite(buf_.data(), 1, n, f_) != n) failed_ = true;
  }
  std::FILE* f_;
  bool failed_ = false;
  std::vector<uint8_t> buf_;
};

struct FlowTrack {
  Random random{};
  bool have_random = false, seen_sh = false, keys_given = false;
  std::array<uint8_t, 16> client_ip{};
  uint16_t client_port = 0;
};

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "hold", out;
  std::vector<std::string> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--mode" && i + 1 < argc) mode = argv[++i];
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else inputs.push_back(a);
  }
  if (out.empty() || inputs.size() < 2 || (mode != "hold" && mode != "direct" && mode != "graph")) {
    std::fprintf(stderr, "usage: holdback_replay --mode hold|direct|graph --out OUT.pcapng IN KEYLOG...\n");
    return 2;
  }
  // Key log lines grouped per client_random, in file order; TLS 1.2 master secrets for --mode graph.
  std::map<Random, std::string> keys;
  std::map<Random, std::vector<uint8_t>> master_keys;
  for (size_t i = 1; i < inputs.size(); ++i) {
    std::ifstream in(inputs[i]);
    if (!in) {
      std::fprintf(stderr, "holdback_replay: cannot read key log %s\n", inputs[i].c_str());
      return 1;
    }
    std::string line;
    while (std::getline(in, line)) {
      auto e = ehp::tls::parse_keylog_line(line);
      if (!e) continue;
      keys[e->client_random] += line + "\n";
      if (e->label == "CLIENT_RANDOM") master_keys[e->client_random] = e->secret;
    }
  }
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline_with_tstamp_precision(inputs[0].c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!p) {
    std::fprintf(stderr, "holdback_replay: %s\n", err);
    return 1;
  }
  const uint16_t linktype = static_cast<uint16_t>(pcap_datalink(p));
  PcapngFileSink sink(out.c_str(), linktype);
  if (!sink.ok()) {
    std::fprintf(stderr, "holdback_replay: cannot write %s\n", out.c_str());
    return 1;
  }
  ehp::correlate::HoldBack hb({}, sink);
  ehp::correlate::Correlator graph({}, sink, 4096);
  // --mode graph: frames are copied per batch because pcap_next_ex reuses its buffer.
  constexpr size_t kBatch = 32;
  std::vector<std::vector<uint8_t>> batch_frames;
  std::vector<PacketMeta> batch_metas;
  std::vector<std::span<const uint8_t>> batch_spans;
  auto push_batch = [&] {
    batch_spans.clear();
    for (auto& f : batch_frames) batch_spans.emplace_back(f);
    graph.push_packets(batch_metas.data(), batch_spans.data(), batch_metas.size());
    batch_frames.clear();
    batch_metas.clear();
  };
  std::unordered_map<ehp::net::FlowKey, FlowTrack, ehp::net::FlowKeyHash> flows;
  uint64_t late_keys = 0, packets = 0, after_request = 0, at_close = 0;
  auto deliver = [&](FlowTrack& t, uint64_t& why) {
    if (t.keys_given || !t.have_random) return;
    t.keys_given = true;
    auto it = keys.find(t.random);
    if (it == keys.end()) return;
    if (mode == "hold") {
      hb.on_keys(t.random, it->second);
    } else if (mode == "graph") {
      auto mk = master_keys.find(t.random);
      if (mk == master_keys.end() || mk->second.size() != 48) return;  // TLS 1.3: see above
      push_batch();  // everything captured so far reaches the graph before the secrets
      ehp::tls::Secrets sec;
      sec.version = ehp::tls::kTls12;
      sec.client_random = t.random;
      std::memcpy(sec.master_key.data(), mk->second.data(), 48);
      graph.push_secrets(sec);
      graph.push_secrets(sec);  // the probe may report a session twice: dedup must drop it
    } else {
      sink.secrets(it->second);
    }
    ++late_keys;
    ++why;
  };
  pcap_pkthdr* h;
  const u_char* data;
  while (pcap_next_ex(p, &h, &data) == 1) {
    PacketMeta m{};
    m.ts_ns = static_cast<uint64_t>(h->ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(h->ts.tv_usec);
    m.linktype = linktype;
    m.wire_len = h->len;
    m.cap_len = h->caplen;
    std::span<const uint8_t> frame(data, h->caplen);
    ++packets;
    if (mode == "hold") {
      hb.on_packet(m, frame);
    } else if (mode == "graph") {
      batch_frames.emplace_back(frame.begin(), frame.end());
      batch_metas.push_back(m);
      if (batch_metas.size() == kBatch) push_batch();
    } else {
      sink.packet(m, frame);
    }

    // The "uprobe": decide whether this session's keys arrive now.
    ehp::net::FrameInfo fi;
    if (!ehp::net::decode_frame(linktype, frame, fi) || fi.l4_proto != 6) continue;
    FlowTrack& t = flows[ehp::net::flow_key(fi)];
    auto payload = frame.subspan(fi.l4_payload_offset, fi.l4_payload_len);
    auto hello = ehp::net::classify_tls(payload);
    if (hello.type == ehp::net::TlsHandshake::ClientHello) {
      if (t.keys_given && t.random != hello.random) t = FlowTrack{};  // a new session on the tuple
      t.random = hello.random;
      t.have_random = true;
      t.client_ip = fi.src;
      t.client_port = fi.sport;
    } else if (hello.type == ehp::net::TlsHandshake::ServerHello) {
      t.seen_sh = true;
    } else if (t.seen_sh && !payload.empty() && payload[0] == 23 && fi.src == t.client_ip &&
               fi.sport == t.client_port) {
      deliver(t, after_request);
    }
    if (t.seen_sh && (fi.tcp_flags & 0x05)) deliver(t, at_close);  // FIN or RST
  }
  pcap_close(p);
  uint64_t at_eof = 0;
  for (auto& [k, t] : flows) deliver(t, at_eof);
  hb.flush_all();
  push_batch();
  graph.drain();
  auto st = mode == "graph" ? graph.stats().holdback : hb.stats();
  if (mode == "graph") {
    auto gs = graph.stats();
    std::printf("holdback_replay: graph secrets=%llu duplicates=%llu null=%llu derived=%llu\n",
                (unsigned long long)gs.secrets_in, (unsigned long long)gs.duplicates,
                (unsigned long long)gs.null_keys, (unsigned long long)gs.keys_derived);
  }
  std::printf(
      "holdback_replay: mode=%s packets=%llu written=%llu dsb=%llu late_keys=%llu keyed=%llu "
      "timeout=%llu overflow=%llu without_flow=%llu (keys after request=%llu at close=%llu "
      "at eof=%llu)\n",
      mode.c_str(), (unsigned long long)packets, (unsigned long long)sink.packets,
      (unsigned long long)sink.dsbs, (unsigned long long)late_keys,
      (unsigned long long)st.released_keyed, (unsigned long long)st.released_timeout,
      (unsigned long long)st.released_overflow, (unsigned long long)st.keys_without_flow,
      (unsigned long long)after_request, (unsigned long long)at_close, (unsigned long long)at_eof);
  return sink.ok() && sink.packets == packets ? 0 : 1;
}
