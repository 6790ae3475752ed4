// SPDX-License-Identifier: BSD-2-Clause
// io_uring writer on filesystems the e2e script mounts (root): a small tmpfs that fills up
// (ENOSPC), a ramfs, which refuses O_DIRECT, and an ext4 on a loop device that was shrunk under
// the mounted filesystem, so writes past the new end fail with EIO. Run by
// tests/e2e/writer_fs.sh, which sets EHP_WRITER_TMPFS (a tmpfs of EHP_WRITER_TMPFS_BYTES),
// EHP_WRITER_RAMFS and EHP_WRITER_EIO.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>

#include "writer_testlib.h"

using ehp::output::Writer;
using ehp::output::WriterOptions;
using ehp::writer_test::PcapngFeeder;
using ehp::writer_test::read_file;
using ehp::writer_test::readers_complaints;

namespace {

std::string env_dir(const char* name) {
  const char* d = std::getenv(name);
  return d ? d : "";
}

// Fill the tmpfs with real pcapng blocks until the writer reports ENOSPC; the file must then
// hold exactly a prefix of what was committed, end on a complete block, and read back cleanly.
void enospc_run(bool direct, const std::string& name) {
  const std::string dir = env_dir("EHP_WRITER_TMPFS");
  ASSERT_FALSE(dir.empty()) << "run through tests/e2e/writer_fs.sh";
  const uint64_t fs_bytes = std::strtoull(std::getenv("EHP_WRITER_TMPFS_BYTES"), nullptr, 10);
  const std::string path = dir + "/" + name;
  WriterOptions o;
  o.direct = direct;
  o.buffer_bytes = 256 << 10;
  o.buffers = 8;
  std::string err;
  auto w = Writer::open(path, o, &err);
  ASSERT_TRUE(w) << err;
  PcapngFeeder feed(*w, direct ? 21 : 22);
  bool ok = feed.shb() && feed.idb() && feed.dsb();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ok && std::chrono::steady_clock::now() < deadline) ok = feed.random_block(60000);
  EXPECT_FALSE(ok) << "never failed";
  EXPECT_TRUE(w->failed());
  EXPECT_NE(w->error().find("No space left on device"), std::string::npos) << w->error();
  EXPECT_NE(w->error().find(path), std::string::npos) << w->error();
  EXPECT_FALSE(w->close(&err));
  EXPECT_EQ(err, w->error());
  const auto st = w->stats();
  const auto got = read_file(path);
  std::fprintf(stderr, "%s: direct_io=%d committed=%lu file=%zu truncated_to=%lu short=%lu\n",
               name.c_str(), int(st.direct_io), (unsigned long)st.bytes_committed, got.size(),
               (unsigned long)st.truncated_to_bytes, (unsigned long)st.short_writes);
  EXPECT_EQ(uint64_t(got.size()), st.truncated_to_bytes);
  // Most of the filesystem got used: the cut lost at most a few buffers' worth.
  EXPECT_GT(got.size(), fs_bytes / 2);
  ASSERT_LE(got.size(), feed.expected().size());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), feed.expected().begin())) << "content differs";
  EXPECT_EQ(ehp::pcapng::complete_prefix(got), got.size()) << "file does not end on a block";
  EXPECT_EQ(readers_complaints(path), "");
  struct stat sb {};
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 07777, 0600u);
  ::unlink(path.c_str());  // room for the next case
}

TEST(WriterFs, EnospcOnSmallTmpfsDirect) { enospc_run(true, "direct.pcapng"); }
TEST(WriterFs, EnospcOnSmallTmpfsBuffered) { enospc_run(false, "buffered.pcapng"); }

// ramfs has no O_DIRECT: open() gets EINVAL and the writer must fall back to buffered I/O.
TEST(WriterFs, FallsBackToBufferedWhenODirectRefused) {
  const std::string dir = env_dir("EHP_WRITER_RAMFS");
  ASSERT_FALSE(dir.empty()) << "run through tests/e2e/writer_fs.sh";
  const std::string path = dir + "/fallback.pcapng";
  WriterOptions o;
  o.buffer_bytes = 64 << 10;
  o.buffers = 4;
  std::string err;
  auto w = Writer::open(path, o, &err);
  ASSERT_TRUE(w) << err;
  EXPECT_FALSE(w->stats().direct_io);
  PcapngFeeder feed(*w, 23);
  bool ok = feed.shb() && feed.idb();
  while (ok && feed.expected().size() < (4u << 20)) ok = feed.random_block(9000);
  ASSERT_TRUE(ok) << w->error();
  ASSERT_TRUE(w->close(&err)) << err;
  EXPECT_EQ(read_file(path), feed.expected());
  EXPECT_EQ(readers_complaints(path), "");
}

// The device under an ext4 ends before the filesystem does: O_DIRECT writes past the end get
// EIO from the block layer. The writer must report it and leave the blocks that did reach the
// device as a valid pcapng.
TEST(WriterFs, EioFromFailingDeviceDirect) {
  const std::string dir = env_dir("EHP_WRITER_EIO");
  ASSERT_FALSE(dir.empty()) << "run through tests/e2e/writer_fs.sh";
  const std::string path = dir + "/eio-direct.pcapng";
  WriterOptions o;
  o.buffer_bytes = 256 << 10;
  o.buffers = 8;
  std::string err;
  auto w = Writer::open(path, o, &err);
  ASSERT_TRUE(w) << err;
  EXPECT_TRUE(w->stats().direct_io);
  PcapngFeeder feed(*w, 24);
  bool ok = feed.shb() && feed.idb();
  while (ok && feed.expected().size() < (96u << 20)) ok = feed.random_block(60000);
  EXPECT_FALSE(ok) << "never failed";
  EXPECT_FALSE(w->close(&err));
  EXPECT_NE(err.find("Input/output error"), std::string::npos) << err;
  const auto st = w->stats();
  const auto got = read_file(path);
  std::fprintf(stderr, "eio: committed=%lu file=%zu truncated_to=%lu\n",
               (unsigned long)st.bytes_committed, got.size(), (unsigned long)st.truncated_to_bytes);
  EXPECT_EQ(uint64_t(got.size()), st.truncated_to_bytes);
  EXPECT_GT(got.size(), 1u << 20);
  ASSERT_LE(got.size(), feed.expected().size());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), feed.expected().begin())) << "content differs";
  EXPECT_EQ(ehp::pcapng::complete_prefix(got), got.size()) << "file does not end on a block";
  EXPECT_EQ(readers_complaints(path), "");
  ::unlink(path.c_str());
}

// Buffered writes land in the page cache; the device error shows up at writeback, and the
// writer must report it from close() (fsync) instead of claiming success.
TEST(WriterFs, EioFromFailingDeviceBufferedSurfacesAtClose) {
  const std::string dir = env_dir("EHP_WRITER_EIO");
  ASSERT_FALSE(dir.empty()) << "run through tests/e2e/writer_fs.sh";
  const std::string path = dir + "/eio-buffered.pcapng";
  WriterOptions o;
  o.direct = false;
  std::string err;
  auto w = Writer::open(path, o, &err);
  ASSERT_TRUE(w) << err;
  PcapngFeeder feed(*w, 25);
  bool ok = feed.shb() && feed.idb();
  while (ok && feed.expected().size() < (64u << 20)) ok = feed.random_block(9000);
  EXPECT_FALSE(w->close(&err));
  EXPECT_NE(err.find("Input/output error"), std::string::npos) << err;
  ::unlink(path.c_str());
}

}  // namespace
