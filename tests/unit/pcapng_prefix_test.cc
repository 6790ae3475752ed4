// SPDX-License-Identifier: BSD-2-Clause
// complete_prefix: the writer truncates to it after ENOSPC, so it must stop exactly at the end of
// the last whole, well-formed block for every truncation and for common corruptions.
#include "output/pcapng.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace ehp::pcapng {
namespace {

struct File {
  std::vector<uint8_t> bytes;
  std::vector<size_t> ends;  // offset after each block
  template <typename Fn>
  void add(size_t size, Fn encode) {
    const size_t at = bytes.size();
    bytes.resize(at + size);
    ASSERT_EQ(encode(std::span<uint8_t>(bytes.data() + at, size)), size);
    ends.push_back(bytes.size());
  }
};

File sample() {
  File f;
  const ShbInfo shb{.hardware = "hw", .os = "os", .userappl = "app"};
  const IdbInfo idb{.name = "eth0", .filter = "tcp"};
  const std::vector<uint8_t> data(61, 0x5a);
  const EpbInfo epb{.caplen = 61, .origlen = 61, .flags = kFlagInbound, .comment = "pid=1",
                    .has_pid_tid = true, .pid = 1, .tid = 1, .has_verdict_tc = true};
  f.add(shb_size(shb), [&](auto o) { return encode_shb(o, shb); });
  f.add(idb_size(idb), [&](auto o) { return encode_idb(o, idb); });
  f.add(dsb_size("keys\n"), [&](auto o) { return encode_dsb(o, "keys\n"); });
  for (int i = 0; i < 3; ++i) f.add(epb_size(epb), [&](auto o) { return encode_epb(o, epb, data); });
  const IsbInfo isb{.ifrecv = 3};
  f.add(isb_size(isb), [&](auto o) { return encode_isb(o, isb); });
  f.add(shb_size(shb), [&](auto o) { return encode_shb(o, shb); });  // a second section
  f.add(idb_size(idb), [&](auto o) { return encode_idb(o, idb); });
  f.add(epb_size(epb), [&](auto o) { return encode_epb(o, epb, data); });
  return f;
}

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }

TEST(PcapngPrefix, WholeFileIsComplete) {
  const File f = sample();
  const PrefixResult r = scan_prefix(f.bytes);
  EXPECT_EQ(r.len_bytes, f.bytes.size());
  EXPECT_EQ(r.blocks, f.ends.size());
  EXPECT_STREQ(r.stop_reason, "");
}

TEST(PcapngPrefix, EveryTruncationStopsAtTheLastWholeBlock) {
  const File f = sample();
  for (size_t len = 0; len <= f.bytes.size(); ++len) {
    size_t want = 0;
    for (size_t e : f.ends)
      if (e <= len) want = e;
    ASSERT_EQ(complete_prefix(std::span<const uint8_t>(f.bytes.data(), len)), want) << "len " << len;
  }
}

TEST(PcapngPrefix, Corruptions) {
  const File f = sample();
  const size_t epb0 = f.ends[2];  // first EPB starts after SHB, IDB, DSB
  struct Case {
    const char* name;
    size_t at;
    uint32_t value;
    size_t want;
  };
  const Case cases[] = {
      {"trailer differs", f.ends[3] - 4, 0x1234, epb0},
      {"length not a multiple of 4", epb0 + 4, static_cast<uint32_t>(f.ends[3] - epb0 + 2), epb0},
      {"length below 12", epb0 + 4, 8, epb0},
      {"length past the end", epb0 + 4, 0x7fffffff, epb0},
      {"EPB interface with no IDB", epb0 + 8, 1, epb0},
      {"EPB caplen overruns the block", epb0 + 20, 4000, epb0},
      {"option overruns the block", epb0 + 28 + 64 + 2, 0xff00, epb0},  // epb_flags length
      {"epb_flags with the wrong length", epb0 + 28 + 64 + 2, 3, epb0},
      {"DSB secrets overrun", f.ends[1] + 12, 1000, f.ends[1]},
      {"SHB not little-endian", 8, 0x4d3c2b1a, 0},
      {"first block not an SHB", 0, kBlockEpb, 0},
  };
  for (const Case& c : cases) {
    std::vector<uint8_t> b = f.bytes;
    if (std::string_view(c.name) == "epb_flags with the wrong length" ||
        std::string_view(c.name) == "option overruns the block") {
      uint16_t v = static_cast<uint16_t>(c.value >> (c.value > 0xffff ? 16 : 0));
      if (c.value == 0xff00) v = 0xff00;
      std::memcpy(b.data() + c.at, &v, 2);
    } else {
      put32(b, c.at, c.value);
    }
    const PrefixResult r = scan_prefix(b);
    EXPECT_EQ(r.len_bytes, c.want) << c.name << " -> stopped with: " << r.stop_reason;
    EXPECT_STRNE(r.stop_reason, "") << c.name;
  }
}

TEST(PcapngPrefix, SecondSectionResetsInterfaces) {
  File f = sample();
  // The last EPB names interface 1: the second section has only interface 0.
  put32(f.bytes, f.ends[f.ends.size() - 2] + 8, 1);
  EXPECT_EQ(complete_prefix(f.bytes), f.ends[f.ends.size() - 2]);
}

TEST(PcapngPrefix, UnknownBlockTypesPassOnFraming) {
  File f = sample();
  // A custom block (0x00000BAD) with a 4-byte body, inserted after the IDB.
  const uint8_t custom[16] = {0xad, 0x0b, 0, 0, 16, 0, 0, 0, 1, 2, 3, 4, 16, 0, 0, 0};
  f.bytes.insert(f.bytes.begin() + static_cast<long>(f.ends[1]), custom, custom + 16);
  EXPECT_EQ(complete_prefix(f.bytes), f.bytes.size());
}

TEST(PcapngPrefix, GarbageNeverReadsPastTheBuffer) {
  // Deterministic pseudo-random mutations of a valid file; ASan builds catch overreads.
  const File f = sample();
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<uint8_t> b = f.bytes;
    for (int k = 0; k < 4; ++k) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      b[x % b.size()] = static_cast<uint8_t>(x >> 32);
    }
    const size_t cut = (x >> 40) % (b.size() + 1);
    const size_t n = complete_prefix(std::span<const uint8_t>(b.data(), cut));
    ASSERT_LE(n, cut);
    ASSERT_EQ(n % 4, 0u);
    // A prefix is itself complete: scanning just it consumes all of it.
    ASSERT_EQ(complete_prefix(std::span<const uint8_t>(b.data(), n)), n);
  }
}

}  // namespace
}  // namespace ehp::pcapng
