// SPDX-License-Identifier: BSD-2-Clause
// Golden-byte tests for the pcapng encoders. Every expected block below was derived by hand from
// the pcapng spec (draft-ietf-opsawg-pcapng sections 3-4), not from the encoder's output:
// little-endian, block = type | total length | fixed fields | data padded to 4 | options | length.
#include "output/pcapng.h"

#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <string>
#include <vector>

namespace ehp::pcapng {
namespace {

// "0a 0d|0d0a" -> bytes; anything but hex digits is only for readability.
std::vector<uint8_t> hex(std::string_view s) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!std::isxdigit(u)) continue;
    const int v = std::isdigit(u) ? c - '0' : (std::tolower(u) - 'a' + 10);
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi << 4 | v));
      hi = -1;
    }
  }
  EXPECT_EQ(hi, -1) << "odd number of hex digits";
  return out;
}

std::string to_hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < b.size(); ++i) {
    if (i && i % 4 == 0) s += ' ';
    s += d[b[i] >> 4];
    s += d[b[i] & 15];
  }
  return s;
}

using EncodeFn = std::function<size_t(std::span<uint8_t>)>;

// Checks size == returned == expected length, the bytes, that nothing past the block is
// touched, and that a buffer one byte short is refused.
void expect_block(std::string_view expected_hex, size_t size, const EncodeFn& encode) {
  const std::vector<uint8_t> want = hex(expected_hex);
  ASSERT_EQ(size, want.size());
  std::vector<uint8_t> buf(size + 16, 0xAA);  // poison, so unwritten padding shows up
  ASSERT_EQ(encode(std::span<uint8_t>(buf.data(), size)), size);
  EXPECT_EQ(to_hex(std::span<const uint8_t>(buf.data(), size)), to_hex(want));
  for (size_t i = size; i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xAA) << "wrote past the end at " << i;
  std::vector<uint8_t> small(size - 1, 0xAA);
  EXPECT_EQ(encode(std::span<uint8_t>(small)), 0u) << "must refuse a buffer one byte short";
}

TEST(PcapngGolden, ShbWithAllOptions) {
  ShbInfo i{.hardware = "x86_64", .os = "Linux", .userappl = "ehp"};
  expect_block(
      "0a0d0d0a 40000000"                      // type, total length 64
      "4d3c2b1a 0100 0000 ffffffffffffffff"    // magic, major 1, minor 0, section length -1
      "0200 0600 7838365f3634 0000"            // shb_hardware "x86_64" + 2 pad
      "0300 0500 4c696e7578 000000"            // shb_os "Linux" + 3 pad
      "0400 0300 656870 00"                    // shb_userappl "ehp" + 1 pad
      "0000 0000"                              // opt_endofopt
      "40000000",
      shb_size(i), [&](std::span<uint8_t> o) { return encode_shb(o, i); });
}

TEST(PcapngGolden, ShbWithoutOptionsHasNoEndOfOpt) {
  ShbInfo i{};
  expect_block("0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000", shb_size(i),
               [&](std::span<uint8_t> o) { return encode_shb(o, i); });
}

TEST(PcapngGolden, IdbWithAllOptions) {
  IdbInfo i{.linktype = 1, .snaplen = 262144, .name = "lo", .description = "loopback", .filter = "tcp"};
  expect_block(
      "01000000 3c000000"            // IDB, 60 bytes
      "0100 0000 00000400"           // LINKTYPE_ETHERNET, reserved, snaplen 262144
      "0200 0200 6c6f 0000"          // if_name "lo"
      "0300 0800 6c6f6f706261636b"   // if_description "loopback" (no pad)
      "0b00 0400 00 746370"          // if_filter: type 0 (libpcap string) + "tcp"
      "0900 0100 09 000000"          // if_tsresol 9 (ns)
      "0000 0000 3c000000",
      idb_size(i), [&](std::span<uint8_t> o) { return encode_idb(o, i); });
}

TEST(PcapngGolden, IdbRawMinimalStillWritesTsresol) {
  IdbInfo i{.linktype = kLinktypeRaw, .snaplen = 65535};
  expect_block("01000000 20000000 6500 0000 ffff0000 0900 0100 09000000 00000000 20000000", idb_size(i),
               [&](std::span<uint8_t> o) { return encode_idb(o, i); });
}

TEST(PcapngGolden, EpbWithoutOptions) {
  EpbInfo i{.interface_id = 1, .ts_ns = 0x1122334455667788ull, .caplen = 5, .origlen = 60};
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  expect_block(
      "06000000 28000000"                       // EPB, 40 bytes
      "01000000 44332211 88776655"              // interface 1, ts high, ts low
      "05000000 3c000000"                       // caplen 5, origlen 60
      "0102030405 000000"                       // data + 3 pad
      "28000000",                               // no options: no opt_endofopt either
      epb_size(i), [&](std::span<uint8_t> o) { return encode_epb(o, i, data); });
}

// The inline per-packet encoder: hand-derived bytes, and the general encoder's bytes for the
// same fields at every padding shape (caplen 0..9, 1500).
TEST(PcapngGolden, PlainEpbEqualsGeneralEncoder) {
  const std::vector<uint8_t> data = {1, 2, 3, 4, 5};
  std::vector<uint8_t> buf(epb_plain_size(5) + 8, 0xAA);
  encode_epb_plain(buf.data(), 1, 0x1122334455667788ull, 5, 60, 2, data.data());
  EXPECT_EQ(to_hex(std::span<const uint8_t>(buf.data(), epb_plain_size(5))),
            to_hex(hex("06000000 34000000"       // EPB, 52 bytes
                       "01000000 44332211 88776655"
                       "05000000 3c000000"
                       "0102030405 000000"
                       "0200 0400 02000000"      // epb_flags = 2 (outbound)
                       "0000 0000"               // opt_endofopt
                       "34000000")));
  for (size_t i = epb_plain_size(5); i < buf.size(); ++i) ASSERT_EQ(buf[i], 0xAA) << i;
  for (uint32_t caplen : {0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 1500u}) {
    std::vector<uint8_t> frame(caplen);
    for (uint32_t k = 0; k < caplen; ++k) frame[k] = uint8_t(k * 7 + 1);
    EpbInfo i{.interface_id = 3, .ts_ns = 0x0102030405060708ull, .caplen = caplen, .origlen = caplen + 4,
              .flags = 1};
    std::vector<uint8_t> want(epb_size(i)), got(epb_plain_size(caplen), 0xAA);
    ASSERT_EQ(want.size(), got.size()) << caplen;
    ASSERT_EQ(encode_epb(want, i, frame), want.size());
    encode_epb_plain(got.data(), 3, i.ts_ns, caplen, caplen + 4, 1, frame.data());
    EXPECT_EQ(to_hex(got), to_hex(want)) << "caplen " << caplen;
  }
}

TEST(PcapngGolden, EpbWithEveryOption) {
  EpbInfo i{.interface_id = 0, .ts_ns = 1, .caplen = 4, .origlen = 4, .flags = kFlagOutbound,
            .comment = "pid=1 comm=a", .has_pid_tid = true, .pid = 1234, .tid = 1235,
            .has_packetid = true, .packetid = 0x0102030405060708ull, .has_queue = true, .queue = 3,
            .has_dropcount = true, .dropcount = 7, .has_verdict_tc = true, .verdict_tc = 2};
  const std::vector<uint8_t> data = {0xde, 0xad, 0xbe, 0xef};
  expect_block(
      "06000000 7c000000 00000000 00000000 01000000 04000000 04000000 deadbeef"
      "0200 0400 02000000"                          // epb_flags: outbound
      "0100 0c00 7069643d3120636f6d6d3d61"          // opt_comment "pid=1 comm=a" (12, no pad)
      "0800 0800 d2040000 d3040000"                 // epb_processid_threadid 1234/1235
      "0500 0800 0807060504030201"                  // epb_packetid
      "0600 0400 03000000"                          // epb_queue 3
      "0400 0800 0700000000000000"                  // epb_dropcount 7
      "0700 0900 01 0200000000000000 000000"        // epb_verdict: type 1 (eBPF TC), u64 2, pad 3
      "0000 0000 7c000000",
      epb_size(i), [&](std::span<uint8_t> o) { return encode_epb(o, i, data); });
}

// One EPB per option, caplen 0, to pin each option's encoding on its own.
struct OneOption {
  const char* name;
  std::function<void(EpbInfo&)> set;
  const char* total_hex;  // total length, LE
  const char* option_hex;
};

// Short test names in ctest instead of a byte dump of the struct.
void PrintTo(const OneOption& c, std::ostream* os) { *os << c.name; }

class PcapngEpbOption : public ::testing::TestWithParam<OneOption> {};

TEST_P(PcapngEpbOption, Golden) {
  const OneOption& c = GetParam();
  EpbInfo i{};
  c.set(i);
  const std::string want = std::string("06000000 ") + c.total_hex +
                           " 00000000 00000000 00000000 00000000 00000000 " + c.option_hex +
                           " 00000000 " + c.total_hex;
  expect_block(want, epb_size(i), [&](std::span<uint8_t> o) { return encode_epb(o, i, {}); });
}

INSTANTIATE_TEST_SUITE_P(
    All, PcapngEpbOption,
    ::testing::Values(
        OneOption{"flags_inbound", [](EpbInfo& i) { i.flags = kFlagInbound; }, "2c000000", "0200 0400 01000000"},
        OneOption{"comment_padded", [](EpbInfo& i) { i.comment = "abc"; }, "2c000000", "0100 0300 616263 00"},
        OneOption{"comment_exact", [](EpbInfo& i) { i.comment = "abcd"; }, "2c000000", "0100 0400 61626364"},
        OneOption{"pid_tid", [](EpbInfo& i) { i.has_pid_tid = true; i.pid = 0x01020304; i.tid = 5; },
                  "30000000", "0800 0800 04030201 05000000"},
        OneOption{"packetid", [](EpbInfo& i) { i.has_packetid = true; i.packetid = 0xffffffff00000001ull; },
                  "30000000", "0500 0800 01000000 ffffffff"},
        OneOption{"queue", [](EpbInfo& i) { i.has_queue = true; i.queue = 0x10; }, "2c000000", "0600 0400 10000000"},
        OneOption{"dropcount", [](EpbInfo& i) { i.has_dropcount = true; i.dropcount = 0x100000000ull; },
                  "30000000", "0400 0800 00000000 01000000"},
        OneOption{"verdict_tc", [](EpbInfo& i) { i.has_verdict_tc = true; i.verdict_tc = 0xffffffffffffffffull; },
                  "34000000", "0700 0900 01 ffffffffffffffff 000000"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(PcapngGolden, DsbKeylogPadded) {
  expect_block(
      "0a000000 18000000"        // DSB, 24 bytes
      "4b534c54 03000000"        // secrets type 0x544c534b ("TLSK"), length 3
      "41420a 00"                // "AB\n" + 1 pad
      "18000000",
      dsb_size("AB\n"), [](std::span<uint8_t> o) { return encode_dsb(o, "AB\n"); });
}

TEST(PcapngGolden, DsbEmpty) {
  expect_block("0a000000 14000000 4b534c54 00000000 14000000", dsb_size(""),
               [](std::span<uint8_t> o) { return encode_dsb(o, ""); });
}

// The writer's filler: an NRB with only nrb_record_end, then (n > 20) one comment of spaces.
TEST(PcapngGolden, FillerShapes) {
  expect_block("04000000 10000000 00000000 10000000", 16,
               [](std::span<uint8_t> o) { return encode_filler(o, 16); });
  expect_block("04000000 14000000 00000000 00000000 14000000", 20,
               [](std::span<uint8_t> o) { return encode_filler(o, 20); });
  expect_block("04000000 18000000 00000000 01000000 00000000 18000000", 24,
               [](std::span<uint8_t> o) { return encode_filler(o, 24); });
  expect_block("04000000 1c000000 00000000 01000400 20202020 00000000 1c000000", 28,
               [](std::span<uint8_t> o) { return encode_filler(o, 28); });
  uint8_t buf[64];
  EXPECT_EQ(encode_filler(buf, 12), 0u);  // below the smallest NRB
  EXPECT_EQ(encode_filler(buf, 18), 0u);  // not a multiple of 4
  EXPECT_EQ(encode_filler(std::span<uint8_t>(buf, 16), 20), 0u);  // does not fit
}

TEST(PcapngGolden, IsbAllCounters) {
  IsbInfo i{.interface_id = 1, .ts_ns = 0x0000000200000003ull, .starttime_ns = 0x0000000100000002ull,
            .endtime_ns = 0x10, .ifrecv = 100, .ifdrop = 5, .osdrop = 6, .usrdeliv = 95};
  expect_block(
      "05000000 64000000"                    // ISB, 100 bytes
      "01000000 02000000 03000000"           // interface 1, ts high, ts low
      "0200 0800 01000000 02000000"          // isb_starttime: high word then low word
      "0300 0800 00000000 10000000"          // isb_endtime
      "0400 0800 6400000000000000"           // isb_ifrecv 100
      "0500 0800 0500000000000000"           // isb_ifdrop 5
      "0700 0800 0600000000000000"           // isb_osdrop 6
      "0800 0800 5f00000000000000"           // isb_usrdeliv 95
      "0000 0000 64000000",
      isb_size(i), [&](std::span<uint8_t> o) { return encode_isb(o, i); });
}

TEST(PcapngGolden, IsbWithComment) {
  // An interface that went away: its ISB says so in opt_comment (after the counters).
  IsbInfo i{.interface_id = 2, .ts_ns = 1, .starttime_ns = 0, .endtime_ns = 1, .comment = "gone"};
  expect_block(
      "05000000 6c000000"                    // ISB, 108 bytes
      "02000000 00000000 01000000"           // interface 2, ts
      "0200 0800 00000000 00000000"          // isb_starttime
      "0300 0800 00000000 01000000"          // isb_endtime
      "0400 0800 0000000000000000"           // isb_ifrecv
      "0500 0800 0000000000000000"           // isb_ifdrop
      "0700 0800 0000000000000000"           // isb_osdrop
      "0800 0800 0000000000000000"           // isb_usrdeliv
      "0100 0400 676f6e65"                   // opt_comment "gone"
      "0000 0000 6c000000",
      isb_size(i), [&](std::span<uint8_t> o) { return encode_isb(o, i); });
  std::vector<uint8_t> buf(100000);
  const std::string big(70000, 'x');
  EXPECT_EQ(encode_isb(buf, IsbInfo{.comment = big}), 0u);
}

TEST(PcapngEncode, EpbRefusesDataOfTheWrongLength) {
  EpbInfo i{.caplen = 4, .origlen = 4};
  std::vector<uint8_t> buf(256);
  const std::vector<uint8_t> three = {1, 2, 3};
  EXPECT_EQ(encode_epb(buf, i, three), 0u);
}

TEST(PcapngEncode, RefusesOptionsLongerThanAnOptionCanSay) {
  const std::string big(70000, 'x');
  std::vector<uint8_t> buf(100000);
  EXPECT_EQ(encode_shb(buf, ShbInfo{.hardware = big}), 0u);
  EXPECT_EQ(encode_idb(buf, IdbInfo{.name = big}), 0u);
  EXPECT_EQ(encode_idb(buf, IdbInfo{.filter = std::string_view(big).substr(0, 65535)}), 0u);  // +1 type byte
  EXPECT_EQ(encode_epb(buf, EpbInfo{.comment = big}, {}), 0u);
  // A DSB has a u32 length, so a large key log is fine.
  EXPECT_EQ(encode_dsb(buf, big), dsb_size(big));
}

}  // namespace
}  // namespace ehp::pcapng
