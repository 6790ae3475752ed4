// SPDX-License-Identifier: BSD-2-Clause
// TracedProcessPolicy (pipeline/key_policy.h): a process gives keys when its /proc/PID/maps names
// a traced file (device and inode), within -p/-u. Checked against this very test process.
#include "pipeline/key_policy.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace ehp::pipeline {
namespace {

tlsprobe::TlsProbe::FileId self_exe() {
  struct stat st {};
  EXPECT_EQ(stat("/proc/self/exe", &st), 0);
  return {uint64_t(st.st_dev), uint64_t(st.st_ino)};
}

std::string read_all(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

correlate::PacketMeta meta_of(uint32_t pid, uint32_t uid) {
  correlate::PacketMeta m{};
  m.proc.known = true;
  m.proc.info.pid = pid;
  m.proc.info.uid = uid;
  return m;
}

TEST(KeyPolicy, MapsTextNamesTheFileByDeviceAndInode) {
  const auto exe = self_exe();
  const std::string maps = read_all("/proc/self/maps");
  ASSERT_FALSE(maps.empty());
  EXPECT_TRUE(TracedProcessPolicy::maps_name_any(maps, {exe}));
  EXPECT_FALSE(TracedProcessPolicy::maps_name_any(maps, {{exe.dev, exe.ino + 1}}));
  EXPECT_FALSE(TracedProcessPolicy::maps_name_any(maps, {{exe.dev + 1, exe.ino}}));
  // Hand-made lines: device in hex major:minor, inode in decimal; junk lines are skipped.
  const uint64_t dev = makedev(0xfd, 0x01);
  EXPECT_TRUE(TracedProcessPolicy::maps_name_any(
      "garbage\n7f00-7f01 r-xp 00000000 fd:01 123456   /usr/lib/libssl.so.3\n", {{dev, 123456}}));
  EXPECT_FALSE(TracedProcessPolicy::maps_name_any("7f00-7f01 r-xp 00000000 fd:01 12345 /x\n", {{dev, 123456}}));
  EXPECT_FALSE(TracedProcessPolicy::maps_name_any("7f00-7f01 rw-p 00000000 00:00 0\n", {{makedev(0, 0), 0}}));
}

TEST(KeyPolicy, ProcessMappingATracedFileIsKeyableWithinPidAndUid) {
  const auto exe = self_exe();
  const uint32_t me = uint32_t(getpid()), uid = uint32_t(getuid());
  ehp::net::FrameInfo fi{};
  {
    TracedProcessPolicy p({{exe}, std::nullopt, std::nullopt, -1});
    EXPECT_TRUE(p.keyable(meta_of(me, uid), fi));
    EXPECT_FALSE(p.keyable(correlate::PacketMeta{}, fi)) << "no process named: forwarded traffic";
    // A process of ours that maps another executable (pid 1 may be unreadable even for root).
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      execl("/bin/sleep", "sleep", "5", (char*)nullptr);
      _exit(127);
    }
    bool execed = false;
    for (int i = 0; i < 200 && !execed; ++i) {
      execed = read_all(("/proc/" + std::to_string(child) + "/comm").c_str()) == "sleep\n";
      if (!execed) usleep(10000);
    }
    EXPECT_TRUE(execed);
    EXPECT_FALSE(p.keyable(meta_of(uint32_t(child), uid), fi)) << "sleep does not map this test binary";
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
  }
  {
    TracedProcessPolicy p({{exe}, me + 1, std::nullopt, -1});
    EXPECT_FALSE(p.keyable(meta_of(me, uid), fi)) << "-p names another process";
  }
  {
    TracedProcessPolicy p({{exe}, std::nullopt, uid + 1, -1});
    EXPECT_FALSE(p.keyable(meta_of(me, uid), fi)) << "-u names another user";
  }
  {
    TracedProcessPolicy p({{}, std::nullopt, std::nullopt, -1});
    EXPECT_FALSE(p.keyable(meta_of(me, uid), fi)) << "nothing traced: nothing keyable";
  }
}

}  // namespace
}  // namespace ehp::pipeline
