// SPDX-License-Identifier: BSD-2-Clause
// filter/prepared.h is the engine's entry point and must compile next to <pcap.h> (this file
// includes both: that is half of the test). No privileges.
#include <gtest/gtest.h>
#include <pcap/pcap.h>

#include "filter/prepared.h"

namespace {

using ehp::filter::Prepared;

TEST(FilterPrepared, CompilesNextToPcapAndReportsErrors) {
  std::string err;
  EXPECT_FALSE(Prepared::compile("tcp prt 80", DLT_EN10MB, 262144, &err));
  EXPECT_EQ(err, "invalid filter 'tcp prt 80': syntax error");
  auto eth = Prepared::compile("tcp port 443", DLT_EN10MB, 262144, &err);
  auto raw = Prepared::compile("tcp port 443", 101 /* LINKTYPE_RAW */, 262144, &err);
  ASSERT_TRUE(eth && raw) << err;
  EXPECT_GT(eth->insn_count(), 10u);
  EXPECT_NE(eth->insn_count(), raw->insn_count());
  auto both = Prepared::compile_per_interface("tcp port 443", {{2, DLT_EN10MB}, {9, 101}}, 262144, &err);
  ASSERT_TRUE(both) << err;
  // ifindex load + 2 compares + return 0 block, then both bodies.
  EXPECT_EQ(both->insn_count(), 1 + 2 + 2 + eth->insn_count() + raw->insn_count());
  EXPECT_FALSE(Prepared::compile_per_interface("tcp", {{2, DLT_EN10MB}, {2, DLT_RAW}}, 262144, &err));
  EXPECT_FALSE(Prepared{}.install(nullptr, &err));
}

}  // namespace
