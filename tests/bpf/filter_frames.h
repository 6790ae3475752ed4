// SPDX-License-Identifier: BSD-2-Clause
// Deterministic frame corpus for the filter differential test: Ethernet (optionally 802.1Q /
// QinQ tagged) IPv4/IPv6 TCP/UDP/ICMP with and without IP options, fragments, IPv6 extension
// headers, ARP, other ethertypes, truncated frames and random bytes; plus raw-IP frames for
// DLT_RAW. Every frame is >= 14 bytes (BPF_PROG_TEST_RUN refuses shorter skb input), and
// untagged IPv4/IPv6 frames keep their fixed IP header (it refuses those truncated shorter).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ehp::filter::test {

struct Frame {
  std::vector<uint8_t> bytes;
  std::string kind;  // for failure messages
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {  // splitmix64
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }
  bool chance(uint32_t pct) { return below(100) < pct; }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(static_cast<uint32_t>(v.size()))]; }

 private:
  uint64_t s_;
};

class FrameMaker {
 public:
  explicit FrameMaker(uint64_t seed) : rng_(seed) {}

  // One Ethernet frame of a random kind.
  Frame ethernet();
  // One raw IP packet (no L2), >= 14 bytes.
  Frame raw_ip();

 private:
  using Bytes = std::vector<uint8_t>;
  void put8(Bytes& b, uint32_t v) { b.push_back(static_cast<uint8_t>(v)); }
  void put16(Bytes& b, uint32_t v) { put8(b, v >> 8); put8(b, v); }
  void put32(Bytes& b, uint32_t v) { put16(b, v >> 16); put16(b, v); }
  void random_bytes(Bytes& b, size_t n) { for (size_t i = 0; i < n; ++i) put8(b, rng_.below(256)); }

  uint32_t ipv4_addr();
  void ipv6_addr(Bytes& b);
  uint32_t port();
  void mac(Bytes& b);
  void l4(Bytes& b, uint8_t proto, std::string& kind);
  Bytes ipv4(std::string& kind);
  Bytes ipv6(std::string& kind);
  Bytes arp();
  void truncate_maybe(Frame& f, size_t min_len);
  static size_t ethertype_min_len(const Bytes& b);

  Rng rng_;
};

}  // namespace ehp::filter::test
