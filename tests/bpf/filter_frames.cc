// SPDX-License-Identifier: BSD-2-Clause
#include "filter_frames.h"

namespace ehp::filter::test {

uint32_t FrameMaker::ipv4_addr() {
  static const std::vector<uint32_t> pool = {
      0x0a000001, 0x0a000002, 0x0a010203, 0xc0a80114, 0xc0a80707, 0xac100504,
      0xac1fff01, 0x08080808, 0xe00000fb /* 224.0.0.251 */, 0xffffffff, 0x7f000001};
  return rng_.chance(80) ? rng_.pick(pool) : static_cast<uint32_t>(rng_.next());
}

void FrameMaker::ipv6_addr(Bytes& b) {
  static const std::vector<std::vector<uint8_t>> pool = {
      {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},              // fe80::1
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},        // 2001:db8::1
      {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5},        // 2001:db8:1::5
      {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},                    // ::1
      {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb}};          // ff02::fb
  if (rng_.chance(80)) {
    const auto& a = rng_.pick(pool);
    b.insert(b.end(), a.begin(), a.end());
  } else {
    random_bytes(b, 16);
  }
}

uint32_t FrameMaker::port() {
  static const std::vector<uint32_t> pool = {80,   443,  22,   53,   1000, 1500, 2000,
                                             2001, 440,  450,  5353, 5000, 6000, 8080};
  return rng_.chance(75) ? rng_.pick(pool) : rng_.below(65536);
}

void FrameMaker::mac(Bytes& b) {
  static const std::vector<std::vector<uint8_t>> pool = {
      {0x02, 0, 0, 0, 0, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x01, 0x00, 0x5e, 0, 0, 0xfb}};
  if (rng_.chance(60)) {
    const auto& m = rng_.pick(pool);
    b.insert(b.end(), m.begin(), m.end());
  } else {
    random_bytes(b, 6);
  }
}

void FrameMaker::l4(Bytes& b, uint8_t proto, std::string& kind) {
  if (proto == 6) {
    kind += "/tcp";
    put16(b, port());
    put16(b, port());
    put32(b, static_cast<uint32_t>(rng_.next()));
    put32(b, static_cast<uint32_t>(rng_.next()));
    const uint32_t opt_words = rng_.chance(30) ? rng_.below(4) : 0;
    put8(b, (5 + opt_words) << 4);
    static const std::vector<uint32_t> flags = {0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01};
    put8(b, rng_.chance(80) ? rng_.pick(flags) : rng_.below(256));
    put16(b, rng_.below(65536));
    put16(b, 0);
    put16(b, 0);
    random_bytes(b, opt_words * 4);
    if (rng_.chance(20)) {  // a TLS record header
      put8(b, 0x16); put8(b, 0x03); put8(b, 0x01); put8(b, 0x00);
    }
  } else if (proto == 17) {
    kind += "/udp";
    put16(b, port());
    put16(b, port());
    const uint32_t payload = rng_.below(64);
    put16(b, 8 + payload);
    put16(b, 0);
    if (rng_.chance(20)) put32(b, 0xdeadbeef);
    random_bytes(b, payload);
    return;
  } else if (proto == 1 || proto == 58) {
    kind += proto == 1 ? "/icmp" : "/icmp6";
    static const std::vector<uint32_t> types4 = {0, 8, 3, 11}, types6 = {128, 129, 135, 136, 1};
    put8(b, rng_.chance(85) ? rng_.pick(proto == 1 ? types4 : types6) : rng_.below(256));
    put8(b, rng_.below(4));
    put16(b, 0);
    put32(b, static_cast<uint32_t>(rng_.next()));
  } else {
    kind += "/proto" + std::to_string(proto);
  }
  // Payload: mostly small, sometimes large enough for len/greater filters.
  random_bytes(b, rng_.chance(15) ? 500 + rng_.below(900) : rng_.below(120));
}

FrameMaker::Bytes FrameMaker::ipv4(std::string& kind) {
  static const std::vector<uint8_t> protos = {6, 6, 6, 17, 17, 1, 47};
  const uint8_t proto = rng_.chance(95) ? rng_.pick(protos) : static_cast<uint8_t>(rng_.below(256));
  const uint32_t opt_words = rng_.chance(20) ? 1 + rng_.below(4) : 0;
  Bytes b;
  kind += opt_words ? "ip4+opt" : "ip4";
  put8(b, 0x40 | (5 + opt_words));
  put8(b, rng_.below(256));  // tos
  put16(b, 0);               // total length, set below
  put16(b, rng_.below(65536));
  uint32_t frag = 0;
  const uint32_t fr = rng_.below(100);
  if (fr < 15) frag = 0x2000;                              // MF: first fragment
  else if (fr < 25) frag = 0x2000 | (1 + rng_.below(200));  // middle fragment
  else if (fr < 32) frag = 1 + rng_.below(200);             // last fragment
  else if (fr < 70) frag = 0x4000;                          // DF
  if (frag & 0x1fff) kind += "/frag";
  put16(b, frag);
  put8(b, rng_.below(256));  // ttl
  put8(b, proto);
  put16(b, 0);
  put32(b, ipv4_addr());
  put32(b, ipv4_addr());
  for (uint32_t i = 0; i < opt_words * 4; ++i) put8(b, i + 1 == opt_words * 4 ? 0 : 1);  // NOPs, EOL
  l4(b, proto, kind);
  const uint32_t total = rng_.chance(90) ? static_cast<uint32_t>(b.size()) : rng_.below(65536);
  b[2] = static_cast<uint8_t>(total >> 8);
  b[3] = static_cast<uint8_t>(total);
  return b;
}

FrameMaker::Bytes FrameMaker::ipv6(std::string& kind) {
  static const std::vector<uint8_t> protos = {6, 6, 17, 17, 58, 0 /* hop-by-hop */, 44 /* fragment */};
  const uint8_t proto = rng_.pick(protos);
  Bytes b;
  kind += "ip6";
  put32(b, 0x60000000 | rng_.below(1u << 20));
  put16(b, 0);
  put8(b, proto);
  put8(b, rng_.below(256));
  ipv6_addr(b);
  ipv6_addr(b);
  uint8_t inner = proto;
  if (proto == 0 || proto == 44) {  // one extension header in front of TCP/UDP
    inner = rng_.chance(50) ? 6 : 17;
    kind += proto == 0 ? "/hbh" : "/fragh";
    put8(b, inner);
    put8(b, 0);
    if (proto == 0) { put16(b, 0x0104); put32(b, 0); }  // PadN
    else { put16(b, rng_.chance(50) ? 0 : 0x0011); put32(b, static_cast<uint32_t>(rng_.next())); }
  }
  l4(b, inner, kind);
  const uint32_t payload = static_cast<uint32_t>(b.size() - 40);
  b[4] = static_cast<uint8_t>(payload >> 8);
  b[5] = static_cast<uint8_t>(payload);
  return b;
}

FrameMaker::Bytes FrameMaker::arp() {
  Bytes b;
  put16(b, 1);
  put16(b, 0x0800);
  put8(b, 6);
  put8(b, 4);
  put16(b, rng_.chance(50) ? 1 : 2);
  mac(b);
  put32(b, ipv4_addr());
  mac(b);
  put32(b, ipv4_addr());
  return b;
}

size_t FrameMaker::ethertype_min_len(const Bytes& b) {
  const uint32_t type = b.size() >= 14 ? (uint32_t{b[12]} << 8 | b[13]) : 0;
  return type == 0x0800 ? 14 + 20 : type == 0x86dd ? 14 + 40 : 14;
}

void FrameMaker::truncate_maybe(Frame& f, size_t min_len) {
  if (f.bytes.size() > min_len && rng_.chance(15)) {
    f.bytes.resize(min_len + rng_.below(static_cast<uint32_t>(f.bytes.size() - min_len)));
    f.kind += "/trunc";
  }
}

Frame FrameMaker::ethernet() {
  Frame f;
  Bytes& b = f.bytes;
  mac(b);
  mac(b);
  const uint32_t k = rng_.below(100);
  if (k < 6) {  // random bytes, random length
    f.kind = "random";
    b.clear();
    random_bytes(b, 14 + rng_.below(200));
    while (b.size() < ethertype_min_len(b)) put8(b, rng_.below(256));
    return f;
  }
  // 802.1Q (sometimes QinQ 802.1ad outer) tags in the bytes, as BPF_PROG_TEST_RUN delivers them.
  if (rng_.chance(20)) {
    static const std::vector<uint32_t> vids = {10, 100, 200, 4094};
    const bool qinq = rng_.chance(20);
    f.kind = qinq ? "qinq/" : "vlan/";
    put16(b, qinq ? 0x88a8 : 0x8100);
    put16(b, (rng_.below(8) << 13) | (rng_.chance(85) ? rng_.pick(vids) : rng_.below(4096)));
    if (qinq) {
      put16(b, 0x8100);
      put16(b, rng_.pick(vids));
    }
  }
  Bytes l3;
  if (k < 50) {
    put16(b, 0x0800);
    l3 = ipv4(f.kind);
  } else if (k < 80) {
    put16(b, 0x86dd);
    l3 = ipv6(f.kind);
  } else if (k < 90) {
    put16(b, 0x0806);
    f.kind += "arp";
    l3 = arp();
  } else {
    static const std::vector<uint32_t> types = {0x88cc, 0x8847, 0x0842, 0x0800, 0x86dd};
    put16(b, rng_.pick(types));
    f.kind += "other";
    random_bytes(l3, rng_.below(100));
  }
  b.insert(b.end(), l3.begin(), l3.end());
  // BPF_PROG_TEST_RUN refuses (EINVAL) a frame whose outer ethertype is IPv4/IPv6 but whose IP
  // header is shorter than 20/40 bytes, so such frames keep their fixed IP header. Truncation
  // inside the IP header is still covered behind VLAN tags (the kernel does not look there).
  const size_t min_len = ethertype_min_len(b);
  while (b.size() < min_len) put8(b, 0);
  truncate_maybe(f, min_len);
  return f;
}

Frame FrameMaker::raw_ip() {
  Frame f;
  f.kind = "raw/";
  f.bytes = rng_.chance(60) ? ipv4(f.kind) : ipv6(f.kind);
  truncate_maybe(f, 14);
  return f;
}

}  // namespace ehp::filter::test
