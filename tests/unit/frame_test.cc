// SPDX-License-Identifier: BSD-2-Clause
// Unit tests for engine/net/frame: crafted Ethernet/VLAN/IPv4/IPv6/TCP/UDP frames,
// TLS hello recognition, and every truncation of every valid frame (run under ASan with
// -DEHP_SANITIZE=ON: each truncation is copied into an exactly-sized heap buffer so that a
// read past the captured bytes is a reported error, not silent).
#include "net/frame.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/sha.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace ehp::net {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }

std::array<uint8_t, 32> test_random(uint8_t seed) {
  std::array<uint8_t, 32> r;
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint8_t>(seed + 7 * i);
  return r;
}

// A minimal but well-formed TLS record carrying a ClientHello (msg_type 1) or ServerHello (2).
Bytes tls_hello(uint8_t msg_type, const std::array<uint8_t, 32>& random,
                uint16_t record_version = 0x0301) {
  Bytes body;
  put16(body, 0x0303);                              // legacy_version
  body.insert(body.end(), random.begin(), random.end());
  body.push_back(0);                                // session id length
  if (msg_type == 1) {
    put16(body, 2);
    put16(body, 0x1301);                            // cipher_suites
    body.push_back(1);
    body.push_back(0);                              // compression methods
  } else {
    put16(body, 0x1301);                            // cipher_suite
    body.push_back(0);                              // compression method
  }
  put16(body, 0);                                   // extensions length
  Bytes hs{msg_type, 0, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  append(hs, body);
  Bytes rec{22};
  put16(rec, record_version);
  put16(rec, static_cast<uint16_t>(hs.size()));
  append(rec, hs);
  return rec;
}

Bytes tcp(uint16_t sport, uint16_t dport, const Bytes& payload, size_t option_bytes = 0,
          uint8_t flags = 0x18, uint32_t seq = 0x01020304) {
  Bytes t;
  put16(t, sport);
  put16(t, dport);
  put32(t, seq);
  put32(t, 0);  // ack
  t.push_back(static_cast<uint8_t>(((20 + option_bytes) / 4) << 4));
  t.push_back(flags);
  put16(t, 65535);
  put16(t, 0);
  put16(t, 0);
  for (size_t i = 0; i < option_bytes; ++i) t.push_back(1);  // NOPs
  append(t, payload);
  return t;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload) {
  Bytes u;
  put16(u, sport);
  put16(u, dport);
  put16(u, static_cast<uint16_t>(8 + payload.size()));
  put16(u, 0);
  append(u, payload);
  return u;
}

struct V4 {
  uint8_t proto = IPPROTO_TCP;
  size_t option_bytes = 0;
  uint16_t frag_field = 0;  // flags + offset (8-byte units)
  std::array<uint8_t, 4> src{10, 0, 0, 1}, dst{10, 0, 0, 2};
};
Bytes ipv4(const V4& v, const Bytes& l4) {
  Bytes ip;
  ip.push_back(static_cast<uint8_t>(0x40 | (20 + v.option_bytes) / 4));
  ip.push_back(0);
  put16(ip, static_cast<uint16_t>(20 + v.option_bytes + l4.size()));
  put16(ip, 0x1234);
  put16(ip, v.frag_field);
  ip.push_back(64);
  ip.push_back(v.proto);
  put16(ip, 0);
  ip.insert(ip.end(), v.src.begin(), v.src.end());
  ip.insert(ip.end(), v.dst.begin(), v.dst.end());
  for (size_t i = 0; i < v.option_bytes; ++i) ip.push_back(1);  // NOP options
  append(ip, l4);
  return ip;
}

std::array<uint8_t, 16> v6addr(uint8_t last) {
  std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
  a[15] = last;
  return a;
}

struct Ext {
  uint8_t type;  // IPPROTO_HOPOPTS / ROUTING / DSTOPTS / FRAGMENT
  uint16_t frag_field = 0;
  size_t len_units = 0;  // extra 8-byte units for the generic headers
};
Bytes ipv6(uint8_t l4_proto, const std::vector<Ext>& exts, const Bytes& l4) {
  Bytes hdrs;
  for (size_t i = 0; i < exts.size(); ++i) {
    const uint8_t next = i + 1 < exts.size() ? exts[i + 1].type : l4_proto;
    if (exts[i].type == IPPROTO_FRAGMENT) {
      hdrs.push_back(next);
      hdrs.push_back(0);
      put16(hdrs, exts[i].frag_field);
      put32(hdrs, 0xabcdef01);
    } else {
      hdrs.push_back(next);
      hdrs.push_back(static_cast<uint8_t>(exts[i].len_units));
      hdrs.insert(hdrs.end(), 6 + 8 * exts[i].len_units, 0);
    }
  }
  Bytes ip{0x60, 0, 0, 0};
  put16(ip, static_cast<uint16_t>(hdrs.size() + l4.size()));
  ip.push_back(exts.empty() ? l4_proto : exts[0].type);
  ip.push_back(64);
  const auto s = v6addr(1), d = v6addr(2);
  ip.insert(ip.end(), s.begin(), s.end());
  ip.insert(ip.end(), d.begin(), d.end());
  append(ip, hdrs);
  append(ip, l4);
  return ip;
}

Bytes eth(uint16_t ethertype, const Bytes& l3, std::vector<uint16_t> vlan_tpids = {}) {
  Bytes f{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
  for (uint16_t tpid : vlan_tpids) {
    put16(f, tpid);
    put16(f, 100);  // TCI
  }
  put16(f, ethertype);
  append(f, l3);
  return f;
}

bool decode(uint16_t lt, const Bytes& f, FrameInfo& out) {
  return decode_frame(lt, std::span<const uint8_t>(f.data(), f.size()), out);
}

std::span<const uint8_t> payload_of(const Bytes& f, const FrameInfo& fi) {
  return std::span<const uint8_t>(f.data() + fi.l4_payload_offset, fi.l4_payload_len);
}

// ---------------------------------------------------------------------------------------

TEST(FrameDecode, EthernetIpv4TcpClientHello) {
  const auto rnd = test_random(1);
  const Bytes hello = tls_hello(1, rnd);
  const Bytes f = eth(0x0800, ipv4({}, tcp(40000, 443, hello, 0, 0x18, 0xdeadbeef)));
  FrameInfo fi;
  ASSERT_TRUE(decode(kLinktypeEthernet, f, fi));
  EXPECT_EQ(fi.ip_version, 4);
  EXPECT_EQ(fi.l4_proto, IPPROTO_TCP);
  EXPECT_FALSE(fi.is_fragment);
  EXPECT_EQ(fi.src[0], 10);
  EXPECT_EQ(fi.src[3], 1);
  EXPECT_EQ(fi.dst[3], 2);
  EXPECT_EQ(fi.sport, 40000);
  EXPECT_EQ(fi.dport, 443);
  EXPECT_EQ(fi.tcp_seq, 0xdeadbeefu);
  EXPECT_EQ(fi.tcp_flags, 0x18);
  EXPECT_EQ(fi.l4_payload_offset, 14u + 20 + 20);
  EXPECT_EQ(fi.l4_payload_len, hello.size());
  const TlsHello h = classify_tls(payload_of(f, fi));
  EXPECT_EQ(h.type, TlsHandshake::ClientHello);
  EXPECT_EQ(h.random, rnd);
}

TEST(FrameDecode, Ipv4OptionsTcpOptionsAndPadding) {
  const Bytes hello = tls_hello(2, test_random(9));
  V4 v;
  v.option_bytes = 12;
  Bytes f = eth(0x0800, ipv4(v, tcp(443, 40000, hello, 12)));
  FrameInfo fi;
  ASSERT_TRUE(decode(kLinktypeEthernet, f, fi));
  EXPECT_EQ(fi.l4_payload_offset, 14u + 32 + 32);
  EXPECT_EQ(fi.l4_payload_len, hello.size());
  EXPECT_EQ(classify_tls(payload_of(f, fi)).type, TlsHandshake::ServerHello);

  // A short segment padded to the Ethernet minimum: the padding is not payload.
  const Bytes small = eth(0x0800, ipv4({}, tcp(1, 2, Bytes{0xaa, 0xbb})));
  Bytes padded = small;
  padded.resize(60, 0);
  ASSERT_TRUE(decode(kLinktypeEthernet, padded, fi));
  EXPECT_EQ(fi.l4_payload_len, 2u);
}

TEST(FrameDecode, VlanTags) {
  const Bytes hello = tls_hello(1, test_random(2));
  const Bytes ip = ipv4({}, tcp(1234, 443, hello));
  FrameInfo fi;
  for (const auto& tags : std::vector<std::vector<uint16_t>>{{0x8100}, {0x88a8}, {0x88a8, 0x8100},
                                                             {0x8100, 0x8100}}) {
    const Bytes f = eth(0x0800, ip, tags);
    ASSERT_TRUE(decode(kLinktypeEthernet, f, fi)) << tags.size();
    EXPECT_EQ(fi.l4_payload_offset, 14u + 4 * tags.size() + 40);
    EXPECT_EQ(classify_tls(payload_of(f, fi)).type, TlsHandshake::ClientHello);
  }
  EXPECT_FALSE(decode(kLinktypeEthernet, eth(0x0800, ip, {0x88a8, 0x8100, 0x8100}), fi));
}

TEST(FrameDecode, Ipv4Fragments) {
  const Bytes hello = tls_hello(1, test_random(3));
  V4 first;
  first.frag_field = 0x2000;  // MF, offset 0: carries the TCP header
  Bytes f = eth(0x0800, ipv4(first, tcp(5555, 443, hello)));
  FrameInfo fi;
  ASSERT_TRUE(decode(kLinktypeEthernet, f, fi));
  EXPECT_FALSE(fi.is_fragment);
  EXPECT_EQ(fi.sport, 5555);
  EXPECT_EQ(classify_tls(payload_of(f, fi)).type, TlsHandshake::ClientHello);

  V4 later;
  later.frag_field = 185;  // offset 1480 bytes, no MF: the L4 bytes here are not a header
  f = eth(0x0800, ipv4(later, tcp(5555, 443, hello)));
  ASSERT_TRUE(decode(kLinktypeEthernet, f, fi));
  EXPECT_TRUE(fi.is_fragment);
  EXPECT_EQ(fi.l4_proto, IPPROTO_TCP);
  EXPECT_EQ(fi.sport, 0);
  EXPECT_EQ(fi.dport, 0);
  EXPECT_EQ(fi.l4_payload_offset, 14u + 20);
}

TEST(FrameDecode, Ipv6ExtensionHeaders) {
  const auto rnd = test_random(4);
  const Bytes hello = tls_hello(1, rnd);
  const std::vector<Ext> chain = {{IPPROTO_HOPOPTS, 0, 0},
                                  {IPPROTO_ROUTING, 0, 2},
                                  {IPPROTO_FRAGMENT, 0x0001, 0},  // offset 0, M=1
                                  {IPPROTO_DSTOPTS, 0, 1}};
  const Bytes f = eth(0x86dd, ipv6(IPPROTO_TCP, chain, tcp(40001, 8443, hello)));
  FrameInfo fi;
  ASSERT_TRUE(decode(kLinktypeEthernet, f, fi));
  EXPECT_EQ(fi.ip_version, 6);
  EXPECT_EQ(fi.l4_proto, IPPROTO_TCP);
  EXPECT_FALSE(fi.is_fragment);
  EXPECT_EQ(fi.src, v6addr(1));
  EXPECT_EQ(fi.dst, v6addr(2));
  EXPECT_EQ(fi.sport, 40001);
  EXPECT_EQ(fi.dport, 8443);
  EXPECT_EQ(fi.l4_payload_offset, 14u + 40 + 8 + 24 + 8 + 16 + 20);
  const TlsHello h = classify_tls(payload_of(f, fi));
  EXPECT_EQ(h.type, TlsHandshake::ClientHello);
  EXPECT_EQ(h.random, rnd);

  // A non-first fragment: no L4 header.
  const Bytes g = eth(0x86dd, ipv6(IPPROTO_TCP, {{IPPROTO_FRAGMENT, 0x00b8, 0}}, hello));
  ASSERT_TRUE(decode(kLinktypeEthernet, g, fi));
  EXPECT_TRUE(fi.is_fragment);
  EXPECT_EQ(fi.sport, 0);
  EXPECT_EQ(fi.l4_payload_offset, 14u + 40 + 8);

  // Nine extension headers exceed the walk's bound: refused rather than looped over.
  std::vector<Ext> long_chain(9, Ext{IPPROTO_DSTOPTS, 0, 0});
  EXPECT_FALSE(decode(kLinktypeEthernet, eth(0x86dd, ipv6(IPPROTO_TCP, long_chain, tcp(1, 2, {}))), fi));
}

TEST(FrameDecode, RawLinktypeAndUdp) {
  FrameInfo fi;
  const Bytes v4 = ipv4({.proto = IPPROTO_UDP}, udp(53, 5353, Bytes{1, 2, 3}));
  ASSERT_TRUE(decode(kLinktypeRaw, v4, fi));
  EXPECT_EQ(fi.ip_version, 4);
  EXPECT_EQ(fi.l4_proto, IPPROTO_UDP);
  EXPECT_EQ(fi.sport, 53);
  EXPECT_EQ(fi.dport, 5353);
  EXPECT_EQ(fi.l4_payload_offset, 28u);
  EXPECT_EQ(fi.l4_payload_len, 3u);
  const Bytes v6 = ipv6(IPPROTO_TCP, {}, tcp(443, 50000, tls_hello(2, test_random(5))));
  ASSERT_TRUE(decode(kLinktypeRaw, v6, fi));
  EXPECT_EQ(fi.ip_version, 6);
  EXPECT_EQ(classify_tls(payload_of(v6, fi)).type, TlsHandshake::ServerHello);
}

TEST(FrameDecode, RejectsNonIpAndBadHeaders) {
  FrameInfo fi;
  const Bytes ip = ipv4({}, tcp(1, 2, {}));
  EXPECT_FALSE(decode(kLinktypeEthernet, eth(0x0806, Bytes(28, 0)), fi));  // ARP
  EXPECT_FALSE(decode(113, eth(0x0800, ip), fi));                          // unknown linktype
  EXPECT_FALSE(decode(kLinktypeRaw, Bytes{0x50, 0, 0, 0}, fi));            // version 5
  Bytes bad = ip;
  bad[0] = 0x44;  // IHL 4 < 5
  EXPECT_FALSE(decode(kLinktypeRaw, bad, fi));
  bad = ip;
  bad[2] = 0;
  bad[3] = 10;  // total length below the header length
  EXPECT_FALSE(decode(kLinktypeRaw, bad, fi));
  bad = ip;
  bad[20 + 12] = 0x40;  // TCP data offset 4 < 5
  EXPECT_FALSE(decode(kLinktypeRaw, bad, fi));
  bad = ip;
  bad[20 + 12] = 0xf0;  // data offset 60 bytes beyond the segment
  EXPECT_FALSE(decode(kLinktypeRaw, bad, fi));
  Bytes v4_in_eth6 = eth(0x86dd, ip);  // ethertype says IPv6, header says 4
  EXPECT_FALSE(decode(kLinktypeEthernet, v4_in_eth6, fi));
}

TEST(FrameDecode, ZeroTotalLengthUsesCapture) {
  // GSO super-packets at TC can carry tot_len 0; the captured bytes are then the datagram.
  const Bytes hello = tls_hello(1, test_random(6));
  Bytes ip = ipv4({}, tcp(1, 443, hello));
  ip[2] = ip[3] = 0;
  FrameInfo fi;
  ASSERT_TRUE(decode(kLinktypeRaw, ip, fi));
  EXPECT_EQ(fi.l4_payload_len, hello.size());
}

// Every prefix of every valid frame: no out-of-bounds read (ASan), and the result is
// consistent -- decoding succeeds only once the headers are complete, and the payload it
// reports lies inside the truncated capture.
TEST(FrameDecode, EveryTruncationIsSafe) {
  const Bytes hello = tls_hello(1, test_random(7));
  V4 opts;
  opts.option_bytes = 8;
  V4 frag;
  frag.frag_field = 10;
  struct Case {
    uint16_t lt;
    Bytes frame;
    size_t headers_end;  // bytes needed before decode can succeed
  };
  const std::vector<Case> cases = {
      {kLinktypeEthernet, eth(0x0800, ipv4({}, tcp(1, 443, hello))), 14 + 20 + 20},
      {kLinktypeEthernet, eth(0x0800, ipv4(opts, tcp(1, 443, hello, 8)), {0x88a8, 0x8100}),
       22 + 28 + 28},
      {kLinktypeEthernet, eth(0x0800, ipv4(frag, hello)), 14 + 20},
      {kLinktypeEthernet,
       eth(0x86dd, ipv6(IPPROTO_TCP,
                        {{IPPROTO_HOPOPTS, 0, 1}, {IPPROTO_FRAGMENT, 0, 0}, {IPPROTO_ROUTING, 0, 0}},
                        tcp(1, 443, hello))),
       14 + 40 + 16 + 8 + 8 + 20},
      {kLinktypeRaw, ipv6(IPPROTO_UDP, {{IPPROTO_DSTOPTS, 0, 0}}, udp(1, 2, hello)), 40 + 8 + 8},
      {kLinktypeRaw, ipv4({.proto = IPPROTO_UDP}, udp(1, 2, hello)), 28},
  };
  for (size_t c = 0; c < cases.size(); ++c) {
    const Bytes& full = cases[c].frame;
    for (size_t len = 0; len <= full.size(); ++len) {
      // Exactly-sized heap copy: ASan flags any read at or past `len`.
      std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
      if (len) std::memcpy(buf.get(), full.data(), len);
      const std::span<const uint8_t> view(buf.get(), len);
      FrameInfo fi;
      const bool ok = decode_frame(cases[c].lt, view, fi);
      EXPECT_EQ(ok, len >= cases[c].headers_end) << "case " << c << " len " << len;
      if (!ok) continue;
      ASSERT_LE(size_t{fi.l4_payload_offset} + fi.l4_payload_len, len);
      const TlsHello h = classify_tls(view.subspan(fi.l4_payload_offset, fi.l4_payload_len));
      // (Case 2's non-first fragment carries the hello bytes as raw fragment data; the
      // caller must not classify fragments, so only L4 payloads are checked here.)
      if (fi.is_fragment) continue;
      if (fi.l4_payload_len >= 43) {
        EXPECT_EQ(h.type, TlsHandshake::ClientHello) << "case " << c << " len " << len;
      } else {
        EXPECT_EQ(h.type, TlsHandshake::None) << "case " << c << " len " << len;
      }
    }
  }
}

TEST(FrameDecode, RandomBytesNeverCrash) {
  std::mt19937 rng(42);
  FrameInfo fi;
  for (int i = 0; i < 20000; ++i) {
    const size_t len = rng() % 128;
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
    for (size_t j = 0; j < len; ++j) buf[j] = static_cast<uint8_t>(rng());
    if (len > 14 && (i & 1)) {
      buf[12] = 0x08;  // steer half of them into the IPv4/IPv6 paths
      buf[13] = 0;
      buf[14] = static_cast<uint8_t>((i & 2 ? 0x45 : 0x60) | (buf[14] & 0x0f));
    }
    const std::span<const uint8_t> view(buf.get(), len);
    for (uint16_t lt : {kLinktypeEthernet, kLinktypeRaw}) {
      if (decode_frame(lt, view, fi)) {
        ASSERT_LE(size_t{fi.l4_payload_offset} + fi.l4_payload_len, len);
        (void)classify_tls(view.subspan(fi.l4_payload_offset, fi.l4_payload_len));
      }
    }
    (void)classify_tls(view);
  }
}

// ---------------------------------------------------------------------------------------

TEST(FrameFlowKey, DirectionIndependent) {
  const Bytes ab = eth(0x0800, ipv4({}, tcp(40000, 443, {})));
  V4 rev;
  rev.src = {10, 0, 0, 2};
  rev.dst = {10, 0, 0, 1};
  const Bytes ba = eth(0x0800, ipv4(rev, tcp(443, 40000, {})));
  FrameInfo f1, f2;
  ASSERT_TRUE(decode(kLinktypeEthernet, ab, f1));
  ASSERT_TRUE(decode(kLinktypeEthernet, ba, f2));
  EXPECT_EQ(flow_key(f1), flow_key(f2));
  EXPECT_EQ(FlowKeyHash{}(flow_key(f1)), FlowKeyHash{}(flow_key(f2)));

  // Same addresses, ports distinguish; also same address both sides (loopback) sorts by port.
  FrameInfo f3 = f1;
  f3.sport = 40001;
  EXPECT_NE(flow_key(f1), flow_key(f3));
  FrameInfo lo1 = f1, lo2 = f1;
  lo1.dst = lo1.src;
  lo2 = lo1;
  std::swap(lo2.sport, lo2.dport);
  EXPECT_EQ(flow_key(lo1), flow_key(lo2));
  FrameInfo u = f1;
  u.l4_proto = IPPROTO_UDP;
  EXPECT_NE(flow_key(f1), flow_key(u));
}

TEST(FrameFlowKey, HashSpreads) {
  // 4096 client ports to one server: hashes must be distinct enough for a hash table.
  std::vector<size_t> seen;
  FrameInfo f;
  f.ip_version = 4;
  f.l4_proto = IPPROTO_TCP;
  f.src = {127, 0, 0, 1};
  f.dst = {127, 0, 0, 1};
  f.dport = 443;
  for (uint16_t p = 30000; p < 30000 + 4096; ++p) {
    f.sport = p;
    seen.push_back(FlowKeyHash{}(flow_key(f)) & 4095);
  }
  std::sort(seen.begin(), seen.end());
  const size_t distinct = std::unique(seen.begin(), seen.end()) - seen.begin();
  EXPECT_GT(distinct, 2000u);  // a random function gives ~2589 of 4096 buckets
}

// ---------------------------------------------------------------------------------------

TEST(FrameClassifyTls, RejectsNonHellos) {
  const auto rnd = test_random(8);
  const Bytes ch = tls_hello(1, rnd);
  EXPECT_EQ(classify_tls(ch).type, TlsHandshake::ClientHello);
  EXPECT_EQ(classify_tls(tls_hello(1, rnd, 0x0303)).type, TlsHandshake::ClientHello);
  EXPECT_EQ(classify_tls(tls_hello(2, rnd)).random, rnd);

  auto mutated = [&](size_t at, uint8_t v) {
    Bytes b = ch;
    b[at] = v;
    return classify_tls(b).type;
  };
  EXPECT_EQ(mutated(0, 23), TlsHandshake::None);    // application data record
  EXPECT_EQ(mutated(0, 21), TlsHandshake::None);    // alert
  EXPECT_EQ(mutated(1, 2), TlsHandshake::None);     // record version 2.x
  EXPECT_EQ(mutated(2, 5), TlsHandshake::None);     // record version 3.5
  EXPECT_EQ(mutated(5, 11), TlsHandshake::None);    // Certificate
  EXPECT_EQ(mutated(5, 4), TlsHandshake::None);     // NewSessionTicket
  EXPECT_EQ(mutated(9, 2), TlsHandshake::None);     // legacy_version 2.x
  EXPECT_EQ(mutated(3, 0x50), TlsHandshake::None);  // record length > 2^14 + 2048
  EXPECT_EQ(mutated(4, 10), TlsHandshake::None);    // record too short for a hello
  EXPECT_EQ(mutated(8, 10), TlsHandshake::None);    // handshake body too short
  Bytes short_payload(ch.begin(), ch.begin() + 42);
  EXPECT_EQ(classify_tls(short_payload).type, TlsHandshake::None);
  Bytes exact(ch.begin(), ch.begin() + 43);  // header + random is all that is needed
  EXPECT_EQ(classify_tls(exact).type, TlsHandshake::ClientHello);
  EXPECT_EQ(classify_tls({}).type, TlsHandshake::None);
  // An HTTP request is not TLS.
  const std::string http = "GET / HTTP/1.1\r\nHost: example\r\nUser-Agent: x\r\nAccept: */*\r\n\r\n";
  EXPECT_EQ(classify_tls(std::span(reinterpret_cast<const uint8_t*>(http.data()), http.size())).type,
            TlsHandshake::None);
}

TEST(FrameClassifyTls, SkipsLeadingChangeCipherSpec) {
  // Second ClientHello after a HelloRetryRequest, as OpenSSL sends it: CCS record first.
  const auto rnd = test_random(11);
  Bytes seg = {20, 3, 3, 0, 1, 1};
  append(seg, tls_hello(1, rnd, 0x0303));
  const TlsHello h = classify_tls(seg);
  EXPECT_EQ(h.type, TlsHandshake::ClientHello);
  EXPECT_EQ(h.random, rnd);
  // Every truncation of it, in an exactly-sized buffer, stays in bounds.
  for (size_t len = 0; len <= seg.size(); ++len) {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
    if (len) std::memcpy(buf.get(), seg.data(), len);
    const auto t = classify_tls(std::span<const uint8_t>(buf.get(), len));
    EXPECT_EQ(t.type, len >= 6 + 43 ? TlsHandshake::ClientHello : TlsHandshake::None) << len;
  }
  // A CCS alone, or a CCS with a bad body, is not a hello.
  EXPECT_EQ(classify_tls(Bytes{20, 3, 3, 0, 1, 1}).type, TlsHandshake::None);
  Bytes bad = seg;
  bad[5] = 2;
  EXPECT_EQ(classify_tls(bad).type, TlsHandshake::None);
}

TEST(FrameClassifyTls, HelloRetryRequestRecognised) {
  // The marker is SHA-256("HelloRetryRequest"); compute it independently.
  std::array<uint8_t, 32> hrr;
  const char* text = "HelloRetryRequest";
  SHA256(reinterpret_cast<const uint8_t*>(text), std::strlen(text), hrr.data());
  const TlsHello h = classify_tls(tls_hello(2, hrr));
  EXPECT_EQ(h.type, TlsHandshake::ServerHello);
  EXPECT_TRUE(is_hello_retry_request(h));
  EXPECT_FALSE(is_hello_retry_request(classify_tls(tls_hello(2, test_random(1)))));
  EXPECT_FALSE(is_hello_retry_request(classify_tls(tls_hello(1, hrr))));  // a ClientHello
}

}  // namespace
}  // namespace ehp::net
