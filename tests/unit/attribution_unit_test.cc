// SPDX-License-Identifier: BSD-2-Clause
// Pure parts of engine/capture/attribution (/proc/net rows -> map keys) and the process
// comment every EPB carries (engine/base/process.h, the sink's only formatter).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "base/process.h"
#include "capture/attribution.h"

using namespace ehp::capture;

TEST(AttributionFormat, CommentNamesProcess) {
  ehp_proc_info p{};
  p.pid = 1234;
  p.tid = 1235;
  p.uid = 0;
  p.gid = 5;
  std::memcpy(p.comm, "curl", 4);
  EXPECT_EQ(ehp::format_process(p), "pid=1234 tid=1235 uid=0 comm=curl");
  // A full 16-byte comm without terminator must not run past the array.
  std::memset(p.comm, 'x', sizeof(p.comm));
  EXPECT_EQ(ehp::format_process(p), "pid=1234 tid=1235 uid=0 comm=" + std::string(16, 'x'));
  // The buffer form never writes past its capacity (the sink appends it after a prefix).
  char buf[20];
  std::memset(buf, '#', sizeof buf);
  EXPECT_EQ(ehp::format_process(p, buf, 12), 12u);
  EXPECT_EQ(std::string(buf, 12), "pid=1234 tid");
  EXPECT_EQ(buf[12], '#');
  p.pid = 4294967295u;
  EXPECT_EQ(ehp::format_process(p).rfind("pid=4294967295 tid=1235", 0), 0u);
}

TEST(AttributionParse, TcpV4EstablishedRow) {
  // 127.0.0.1:8080 -> 10.1.2.3:443, ESTABLISHED, inode 4242 (little-endian host).
  const char* row =
      "   3: 0100007F:1F90 0302010A:01BB 01 00000000:00000000 00:00000000 00000000  1000        0 4242 1 "
      "0000000000000000 20 4 30 10 -1";
  ProcNetSocket s;
  ASSERT_TRUE(parse_proc_net_line(row, false, &s));
  EXPECT_EQ(s.local_port, 8080);
  EXPECT_EQ(s.remote_port, 443);
  EXPECT_EQ(s.state, 1);
  EXPECT_EQ(s.inode, 4242u);
  const uint8_t local[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  const uint8_t remote[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};
  EXPECT_EQ(std::memcmp(s.local_addr, local, 16), 0);
  EXPECT_EQ(std::memcmp(s.remote_addr, remote, 16), 0);

  ehp_attr_key k = key_for_socket(s, 6);
  EXPECT_EQ(k.proto, 6);
  EXPECT_EQ(k.local_port, htons(8080));
  EXPECT_EQ(k.remote_port, htons(443));
  EXPECT_EQ(std::memcmp(k.local_addr, local, 16), 0);
  EXPECT_EQ(k.pad[0] | k.pad[1] | k.pad[2], 0);
}

TEST(AttributionParse, Tcp6ListenRowBecomesWildcard) {
  // [::1]:22 LISTEN.
  const char* row =
      "   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A "
      "00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0";
  ProcNetSocket s;
  ASSERT_TRUE(parse_proc_net_line(row, true, &s));
  const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(std::memcmp(s.local_addr, lo6, 16), 0);
  EXPECT_EQ(s.state, 0x0A);
  ehp_attr_key k = key_for_socket(s, 6);
  ehp_attr_key wild{};
  wild.proto = 6;
  wild.local_port = htons(22);
  EXPECT_EQ(std::memcmp(&k, &wild, sizeof(k)), 0);
}

TEST(AttributionParse, RejectsGarbage) {
  ProcNetSocket s;
  EXPECT_FALSE(parse_proc_net_line("  sl  local_address rem_address   st tx_queue rx_queue", false, &s));
  EXPECT_FALSE(parse_proc_net_line("", false, &s));
  EXPECT_FALSE(parse_proc_net_line("   0: 0100007F:1F90 0302010A:01BB 01", false, &s));
  EXPECT_FALSE(parse_proc_net_line(
      "   3: 0100007G:1F90 0302010A:01BB 01 00000000:00000000 00:00000000 00000000 0 0 1 1", false, &s));
  // v4 row parsed as v6 is rejected, not misread.
  EXPECT_FALSE(parse_proc_net_line(
      "   3: 0100007F:1F90 0302010A:01BB 01 00000000:00000000 00:00000000 00000000 0 0 1 1", true, &s));
}

TEST(AttributionProc, ReadsOwnProcess) {
  ehp_proc_info p{};
  ASSERT_TRUE(read_proc_info(getpid(), &p));
  EXPECT_EQ(p.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(p.uid, getuid());
  EXPECT_EQ(p.gid, getgid());
  EXPECT_STRNE(p.comm, "");
  EXPECT_FALSE(read_proc_info(-5, &p));
}
