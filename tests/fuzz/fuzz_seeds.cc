// SPDX-License-Identifier: BSD-2-Clause
// Seed corpus generator for the fuzz targets (run by tools/fuzz.sh; nothing binary is committed).
//   fuzz_seeds <dir>   writes <dir>/<target>/seed_NNN for every target in tests/fuzz/.
// Seeds are built with the project's own encoders where there are some (pcapng blocks, key log
// lines, libpcap-compiled filters), so the fuzzers start from inputs the real code produces.
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "abi/capture_abi.h"
#include "tls/keys.h"
#include "filter/cbpf.h"
#include "output/pcapng.h"

namespace {

using Bytes = std::vector<uint8_t>;

std::string g_dir;
int g_failures = 0;

void put(const std::string& target, const Bytes& b) {
  static int counter = 0;
  const std::string dir = g_dir + "/" + target;
  mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/seed_" + std::to_string(counter++);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size()) {
    std::perror(path.c_str());
    ++g_failures;
  }
  if (f) std::fclose(f);
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
Bytes be16(uint16_t v) { return {uint8_t(v >> 8), uint8_t(v)}; }

// TLS handshake record with a ClientHello (type 1) or ServerHello (type 2).
Bytes tls_hello(uint8_t type) {
  Bytes body = {3, 3};
  for (int i = 0; i < 32; ++i) body.push_back(uint8_t(0xa0 + i));  // random
  body.push_back(0);                                             // session id
  if (type == 1) body.insert(body.end(), {0, 2, 0x13, 0x01, 1, 0});  // suites, compression
  else body.insert(body.end(), {0x13, 0x01, 0});
  body.insert(body.end(), {0, 0});  // no extensions
  Bytes hs = {type, 0, uint8_t(body.size() >> 8), uint8_t(body.size())};
  hs.insert(hs.end(), body.begin(), body.end());
  Bytes rec = {22, 3, 1, uint8_t(hs.size() >> 8), uint8_t(hs.size())};
  rec.insert(rec.end(), hs.begin(), hs.end());
  return rec;
}
Bytes tcp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes h = cat({be16(sport), be16(dport), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0}});
  return cat({h, payload});
}
Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  return cat({be16(sport), be16(dport), be16(uint16_t(8 + payload.size())), {0, 0}, payload});
}
Bytes ipv4(uint8_t proto, const Bytes& l4, uint16_t frag = 0) {
  const uint16_t total = uint16_t(20 + l4.size());
  return cat({{0x45, 0}, be16(total), {0, 1}, be16(frag), {64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, l4});
}
Bytes ipv6(uint8_t next, const Bytes& l4) {
  Bytes h = cat({{0x60, 0, 0, 0}, be16(uint16_t(l4.size())), {next, 64}});
  for (int i = 0; i < 16; ++i) h.push_back(i == 15 ? 1 : (i == 0 ? 0xfd : 0));
  for (int i = 0; i < 16; ++i) h.push_back(i == 15 ? 2 : (i == 0 ? 0xfd : 0));
  return cat({h, l4});
}
Bytes eth(uint16_t ethertype, const Bytes& l3, bool vlan = false) {
  Bytes h = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2};
  if (vlan) h = cat({h, be16(0x8100), {0, 42}});
  return cat({h, be16(ethertype), l3});
}

std::vector<std::pair<uint16_t, Bytes>> frames() {  // (linktype, frame)
  const Bytes ch = tls_hello(1), sh = tls_hello(2);
  return {
      {1, eth(0x0800, ipv4(6, tcp(40000, 443, ch)))},
      {1, eth(0x86dd, ipv6(6, tcp(443, 40000, sh)))},
      {1, eth(0x0800, ipv4(6, tcp(40000, 443, ch)), true)},
      {1, eth(0x0800, ipv4(6, tcp(40000, 443, cat({{20, 3, 3, 0, 1, 1}, ch}))))},  // CCS + 2nd ClientHello
      {1, eth(0x0800, ipv4(17, udp(5353, 53, {1, 2, 3, 4})))},
      {1, eth(0x86dd, ipv6(0, cat({{6, 0, 1, 4, 0, 0, 0, 0}, tcp(1, 443, ch)})))},  // hop-by-hop
      {1, eth(0x86dd, ipv6(44, cat({{6, 0, 0, 8, 0, 0, 0, 1}, {9, 9, 9, 9}})))},     // fragment
      {1, eth(0x0800, ipv4(6, {1, 2, 3}, 0x0010))},                                   // non-first fragment
      {101, ipv4(6, tcp(40000, 443, ch))},
      {101, ipv6(17, udp(1, 2, {}))},
  };
}

void frame_seeds() {
  for (const auto& [lt, f] : frames()) put("fuzz_frame", cat({{uint8_t(lt == 101)}, f}));
}

void ring_seeds() {
  uint8_t which = 0;
  for (const auto& [lt, f] : frames()) {
    ehp_capture_hdr h{};
    h.ts_ns = 123456789;
    h.ifindex = 2;
    h.wire_len = uint32_t(f.size());
    h.cap_len = uint32_t(f.size());
    h.direction = which++ & 1;
    h.flags = EHP_CAP_F_ATTRIBUTED;
    h.proc.pid = 4242;
    std::memcpy(h.proc.comm, "curl", 5);
    Bytes rec(sizeof h);
    std::memcpy(rec.data(), &h, sizeof h);
    rec.insert(rec.end(), f.begin(), f.end());
    const uint32_t len = uint32_t(rec.size());
    Bytes ring(8);
    std::memcpy(ring.data(), &len, 4);
    ring.insert(ring.end(), rec.begin(), rec.end());
    while (ring.size() % 8) ring.push_back(0);
    Bytes discarded = ring;
    discarded[3] |= 0x40;  // BPF_RINGBUF_DISCARD_BIT
    put("fuzz_ring_record", cat({{uint8_t(lt == 101)}, ring, discarded, ring}));
  }
}

ehp::tls::Secrets secrets(uint16_t version, uint16_t cipher) {
  ehp::tls::Secrets s;
  s.version = version;
  s.cipher_id = cipher;
  for (size_t i = 0; i < 32; ++i) s.client_random[i] = uint8_t(i + 1);
  for (size_t i = 0; i < 48; ++i) s.master_key[i] = uint8_t(0x40 + i);
  for (size_t i = 0; i < 64; ++i) {
    s.handshake_secret[i] = uint8_t(0x11 + i);
    s.handshake_traffic_hash[i] = uint8_t(0x22 + i);
    s.client_app_traffic_secret[i] = uint8_t(0x33 + i);
    s.server_app_traffic_secret[i] = uint8_t(0x44 + i);
    s.exporter_master_secret[i] = uint8_t(0x55 + i);
  }
  return s;
}

void keylog_seeds() {
  std::string all;
  for (auto [v, c] : {std::pair<uint16_t, uint16_t>{0x0303, 0xc02f}, {0x0304, 0x1301}, {0x0304, 0x1302}}) {
    const std::string lines = ehp::tls::keylog_lines(secrets(v, c));
    all += lines;
    size_t start = 0;
    while (start < lines.size()) {
      const size_t nl = lines.find('\n', start);
      const std::string line = lines.substr(start, nl + 1 - start);
      put("fuzz_keylog", cat({{0}, Bytes(line.begin(), line.end())}));
      start = nl + 1;
    }
  }
  for (const char* s : {"# comment\n", "CLIENT_RANDOM  00\r\n", "", "EXPORTER_SECRET 00 00\r\n"})
    put("fuzz_keylog", cat({{0}, Bytes(s, s + std::strlen(s))}));
  // Odd mode: version selector, cipher selector, then secret material.
  for (uint8_t vsel : {0, 1})
    for (uint8_t csel : {0, 1, 2}) {
      Bytes b = {1, vsel, csel};
      for (int i = 0; i < 400; ++i) b.push_back(uint8_t(i * 7 + 1));
      put("fuzz_keylog", b);
    }
  (void)all;
}

void pcapng_seeds() {
  using namespace ehp::pcapng;
  Bytes file;
  auto add = [&](size_t size, auto&& enc) {
    Bytes b(size);
    if (enc(std::span<uint8_t>(b)) != size) ++g_failures;
    file.insert(file.end(), b.begin(), b.end());
  };
  const ShbInfo shb{"x86_64", "Linux", "ecapture-hp fuzz seeds"};
  add(shb_size(shb), [&](std::span<uint8_t> o) { return encode_shb(o, shb); });
  const IdbInfo idb{kLinktypeEthernet, 262144, "eth0", "seed", "tcp port 443", 9};
  add(idb_size(idb), [&](std::span<uint8_t> o) { return encode_idb(o, idb); });
  const std::string keys = ehp::tls::keylog_lines(secrets(0x0304, 0x1301));
  add(dsb_size(keys), [&](std::span<uint8_t> o) { return encode_dsb(o, keys); });
  for (const auto& lf : frames()) {
    if (lf.first != 1) continue;
    const Bytes& f = lf.second;  // (a structured binding cannot be captured by clang 14)
    EpbInfo e;
    e.ts_ns = 1700000000000000000ull;
    e.caplen = e.origlen = uint32_t(f.size());
    e.flags = kFlagOutbound;
    e.comment = "pid=1 comm=curl";
    e.has_pid_tid = true;
    e.pid = e.tid = 1;
    e.has_verdict_tc = true;
    add(epb_size(e), [&](std::span<uint8_t> o) { return encode_epb(o, e, f); });
  }
  IsbInfo isb;
  isb.ifrecv = 7;
  add(isb_size(isb), [&](std::span<uint8_t> o) { return encode_isb(o, isb); });
  put("fuzz_pcapng_prefix", file);
  put("fuzz_pcapng_prefix", Bytes(file.begin(), file.begin() + file.size() / 2));
  put("fuzz_pcapng_prefix", cat({file, file}));  // second section
  // The replay reader: the same pcapng (DSB, EPBs, ISB), cut, two sections; and a classic pcap.
  put("fuzz_capture_file", file);
  put("fuzz_capture_file", Bytes(file.begin(), file.end() - 7));
  put("fuzz_capture_file", cat({file, file}));
  Bytes pcap = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0};
  for (const auto& lf : frames()) {
    if (lf.first != 1) continue;
    const Bytes& f = lf.second;
    const uint32_t hdr[4] = {0x80000000u, 0, uint32_t(f.size()), uint32_t(f.size())};  // a time past 2038
    const auto* h = reinterpret_cast<const uint8_t*>(hdr);
    pcap.insert(pcap.end(), h, h + sizeof hdr);
    pcap.insert(pcap.end(), f.begin(), f.end());
  }
  put("fuzz_capture_file", pcap);
}

const char* const kExprs[] = {
    "tcp port 443", "udp", "ip6 and tcp", "vlan and tcp", "ip[2:2] > 100", "tcp[tcpflags] & tcp-syn != 0",
    "len > 100", "host 10.0.0.1 or net 192.168.0.0/16", "ether proto 0x88cc", "icmp[icmptype] == icmp-echo",
    "not port 22", "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x16030100", "ip and (ip[6:2] & 0x1fff) = 0",
    "ip6 protochain 6", "portrange 1000-2000 and ip[8] < 64", "udp and ip[0] & 0xf = 5 and udp[8:2] = 0x1234"};

void filter_seeds() {
  for (const char* e : kExprs) {
    for (int dlt : {1, 12}) {
      std::string err;
      auto cbpf = ehp::filter::compile_cbpf(e, dlt, 262144, &err);
      Bytes expr(e, e + std::strlen(e));
      // fuzz_translate: mode 2 = expression (byte 1 bit 0 = DLT_RAW), mode 0 = raw cBPF.
      put("fuzz_translate", cat({{2, uint8_t(dlt == 12)}, expr}));
      // fuzz_filter: even = expression (bit 1 = DLT_RAW), odd = raw cBPF.
      // (not protochain: its backward jump trips fuzz_filter's "libpcap output must translate"
      // check, which does not yet exempt programs bpf_validate refuses; listed in tests/fuzz/crashers/README.md)
      if (!std::strstr(e, "protochain")) put("fuzz_filter", cat({{uint8_t(dlt == 12 ? 2 : 0)}, expr}));
      if (!cbpf) continue;
      Bytes raw(cbpf->size() * 8);
      std::memcpy(raw.data(), cbpf->data(), raw.size());
      put("fuzz_translate", cat({{0}, raw}));
      put("fuzz_filter", cat({{1}, raw}));
    }
  }
  for (int i = 0; i < 8; ++i) {  // mode 1: constructed programs of a few sizes
    Bytes b = {1};
    for (int j = 0; j < 16 * (i + 1); ++j) b.push_back(uint8_t(j * 37 + i * 11));
    put("fuzz_translate", b);
  }
}

// libFuzzer dictionaries (<dir>/<target>.dict): tokens mutations would rarely hit by chance.
void dict(const std::string& target, std::initializer_list<const char*> words) {
  const std::string path = g_dir + "/" + target + ".dict";
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::perror(path.c_str());
    ++g_failures;
    return;
  }
  for (const char* w : words) std::fprintf(f, "\"%s\"\n", w);
  std::fclose(f);
}

void dictionaries() {
  const auto pcap_words = {"tcp", "udp", "icmp", "icmp6", "ip", "ip6", "arp", "vlan", "mpls", "pppoes",
                           "host", "net", "port", "portrange", "src", "dst", "and", "or", "not", "len",
                           "greater", "less", "ether", "proto", "protochain", "broadcast", "multicast",
                           "tcpflags", "tcp-syn", "tcp-ack", "[", "]", ":", "&", "|", "<<", ">>", "==",
                           "!=", "0x", "/16", "geneve", "inbound", "outbound", "ifname", "gateway"};
  dict("fuzz_translate", pcap_words);
  dict("fuzz_filter", pcap_words);
  dict("fuzz_keylog", {"CLIENT_RANDOM ", "CLIENT_EARLY_TRAFFIC_SECRET ", "CLIENT_HANDSHAKE_TRAFFIC_SECRET ",
                       "SERVER_HANDSHAKE_TRAFFIC_SECRET ", "CLIENT_TRAFFIC_SECRET_0 ", "SERVER_TRAFFIC_SECRET_0 ",
                       "EARLY_EXPORTER_SECRET ", "EXPORTER_SECRET ", "\\x0d\\x0a", "#"});
}

}  // namespace

// fuzz_elf: whole binaries, read as they are (EHP_ELF_SEEDS, ':'-separated paths); one that is
// missing is skipped.
void elf_seeds() {
#ifdef EHP_ELF_SEEDS
  std::string list = EHP_ELF_SEEDS;
  for (size_t at = 0; at <= list.size();) {
    size_t next = list.find(':', at);
    if (next == std::string::npos) next = list.size();
    const std::string path = list.substr(at, next - at);
    at = next + 1;
    FILE* f = path.empty() ? nullptr : std::fopen(path.c_str(), "rb");
    if (!f) continue;
    Bytes b;
    uint8_t buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) b.insert(b.end(), buf, buf + n);
    std::fclose(f);
    put("fuzz_elf", b);
  }
#endif
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  mkdir(g_dir.c_str(), 0755);
  frame_seeds();
  ring_seeds();
  keylog_seeds();
  pcapng_seeds();
  filter_seeds();
  elf_seeds();
  dictionaries();
  if (g_failures) std::fprintf(stderr, "fuzz_seeds: %d failures\n", g_failures);
  return g_failures ? 1 : 0;
}
