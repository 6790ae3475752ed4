// SPDX-License-Identifier: BSD-2-Clause
// io_uring writer, unprivileged tests on the filesystem of the build dir (ext4 here).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "output/fs_warm.h"
#include "writer_testlib.h"

using ehp::output::Writer;
using ehp::output::WriterOptions;
using ehp::writer_test::PcapngFeeder;
using ehp::writer_test::TempDir;
using ehp::writer_test::file_size;
using ehp::writer_test::read_file;
using ehp::writer_test::readers_complaints;
using Clock = std::chrono::steady_clock;

namespace {

std::string test_parent_dir() {
  const char* d = std::getenv("EHP_WRITER_TEST_DIR");
  return d ? d : EHP_WRITER_TEST_DIR_DEFAULT;
}

bool dir_supports_odirect(const std::string& dir) {
  struct statfs fs {};
  if (statfs(dir.c_str(), &fs) != 0) return false;
  return fs.f_type == EXT4_SUPER_MAGIC || fs.f_type == XFS_SUPER_MAGIC ||
         fs.f_type == BTRFS_SUPER_MAGIC;
}

// Flags (octal, from /proc/self/fdinfo) of every fd this process has open on `path`.
std::vector<long> open_flags_of(const std::string& path) {
  std::vector<long> flags;
  for (int fd = 0; fd < 1024; fd++) {
    char link[4096];
    const std::string proc = "/proc/self/fd/" + std::to_string(fd);
    const ssize_t n = readlink(proc.c_str(), link, sizeof link - 1);
    if (n <= 0 || std::string(link, size_t(n)) != path) continue;
    std::ifstream info("/proc/self/fdinfo/" + std::to_string(fd));
    std::string key, value;
    while (info >> key >> value)
      if (key == "flags:") flags.push_back(std::strtol(value.c_str(), nullptr, 8));
  }
  return flags;
}

std::unique_ptr<Writer> must_open(const std::string& path, const WriterOptions& o) {
  std::string err;
  auto w = Writer::open(path, o, &err);
  EXPECT_TRUE(w) << err;
  return w;
}

TEST(Writer, CreatesMode0600EvenWithUmask0AndTruncates) {
  TempDir dir(test_parent_dir());
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/out.pcapng";
  {  // a pre-existing, larger, world-readable file
    std::vector<char> junk(3 << 20, 'x');
    FILE* f = fopen(path.c_str(), "wb");
    ASSERT_TRUE(f);
    fwrite(junk.data(), 1, junk.size(), f);
    fclose(f);
    chmod(path.c_str(), 0666);
  }
  const mode_t old_umask = umask(0);
  auto w = must_open(path, WriterOptions{});
  umask(old_umask);
  ASSERT_TRUE(w);
  PcapngFeeder feed(*w, 1);
  ASSERT_TRUE(feed.shb() && feed.idb() && feed.epb(60));
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(read_file(path), feed.expected());  // O_TRUNC: nothing of the 3 MiB left

  // A brand-new file, umask 0: still 0600, not 0666.
  const std::string fresh = dir.path() + "/fresh.pcapng";
  umask(0);
  auto w2 = must_open(fresh, WriterOptions{});
  umask(old_umask);
  ASSERT_TRUE(w2);
  ASSERT_TRUE(w2->close(&err)) << err;
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 0);
}

TEST(Writer, RefusesSymlinkAndReportsOpenErrors) {
  TempDir dir(test_parent_dir());
  const std::string target = dir.path() + "/target";
  const std::string link = dir.path() + "/link.pcapng";
  ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
  std::string err;
  EXPECT_FALSE(Writer::open(link, WriterOptions{}, &err));  // O_NOFOLLOW
  EXPECT_NE(err.find("link.pcapng"), std::string::npos) << err;
  EXPECT_EQ(file_size(target), -1) << "the symlink target must not be created";
  err.clear();
  EXPECT_FALSE(Writer::open(dir.path() + "/no/such/dir/x", WriterOptions{}, &err));
  EXPECT_NE(err.find("No such file or directory"), std::string::npos) << err;
}

TEST(Writer, UsesODirectOnARealFilesystem) {
  TempDir dir(test_parent_dir());
  if (!dir_supports_odirect(dir.path()))
    GTEST_SKIP() << dir.path() << " is not ext4/xfs/btrfs; set EHP_WRITER_TEST_DIR";
  const std::string path = dir.path() + "/direct.pcapng";
  auto w = must_open(path, WriterOptions{});
  ASSERT_TRUE(w);
  EXPECT_TRUE(w->stats().direct_io);
  // The kernel's view: one description with O_DIRECT (data), one without (the unaligned tail).
  const auto flags = open_flags_of(path);
  ASSERT_EQ(flags.size(), 2u);
  EXPECT_EQ(int(flags[0] & O_DIRECT) + int(flags[1] & O_DIRECT), O_DIRECT);
  PcapngFeeder feed(*w, 2);
  ASSERT_TRUE(feed.shb() && feed.idb());
  while (feed.expected().size() < (5u << 20)) ASSERT_TRUE(feed.random_block(9000));
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  EXPECT_TRUE(w->stats().direct_io) << "O_DIRECT was dropped during the run";
  EXPECT_EQ(read_file(path), feed.expected());
  // Space was preallocated ahead (fallocate KEEP_SIZE), and what was not written was given
  // back at close.
  EXPECT_GT(w->stats().prealloc_calls, 0u);
  // ...and the file was sized ahead of each batch of writes, so none of them extended it.
  EXPECT_GT(w->stats().size_ahead_calls, 0u);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_LE(uint64_t(st.st_blocks) * 512, uint64_t(st.st_size) + (1u << 20));
  EXPECT_EQ(readers_complaints(path), "");
}

// Many buffers, random block sizes (1 B to a full buffer), timed flushes every few ms racing the
// producer, explicit flush() calls and idle gaps: the file must equal the committed bytes.
void byte_exact_run(bool direct, uint64_t seed, bool pad_tail = false, bool prealloc = true) {
  TempDir dir(test_parent_dir());
  const std::string path = dir.path() + "/exact.bin";
  WriterOptions o;
  o.direct = direct;
  o.buffer_bytes = 64 << 10;
  o.buffers = 4;
  o.flush_interval_ms = 4;
  o.pad_tail = pad_tail;
  if (!prealloc) o.prealloc_bytes = 0;
  auto w = must_open(path, o);
  ASSERT_TRUE(w);
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> expected;
  const size_t target = 24u << 20;
  while (expected.size() < target) {
    const uint32_t r = uint32_t(rng() % 1000);
    size_t n = r < 700 ? 1 + rng() % 300 : r < 990 ? 1 + rng() % 9000 : 1 + rng() % o.buffer_bytes;
    if (r == 999) n = o.buffer_bytes;  // exactly the largest block
    uint8_t* p = w->reserve(n);
    ASSERT_TRUE(p) << w->error();
    for (size_t i = 0; i < n; i++) p[i] = uint8_t(rng());
    expected.insert(expected.end(), p, p + n);
    w->commit(n);
    if (rng() % 5000 == 0) w->flush();
    if (rng() % 20000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(6));
  }
  EXPECT_EQ(w->reserve(o.buffer_bytes + 1), nullptr) << "over-size blocks are refused";
  EXPECT_FALSE(w->failed()) << "...without failing the writer";
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  const auto st = w->stats();
  EXPECT_EQ(st.bytes_committed, expected.size());
  EXPECT_GT(st.flushes, 0u) << "timed flushes did not run";
  // Sized ahead only over preallocated space (a hole would send the writes to io-wq again).
  if (!prealloc) {
    EXPECT_EQ(st.size_ahead_calls, 0u);
  } else if (st.direct_io) {
    EXPECT_GT(st.size_ahead_calls, 0u);
  }
  const auto got = read_file(path);
  ASSERT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "content differs";
  EXPECT_EQ(w->reserve(10), nullptr) << "closed writer accepts no more";
  EXPECT_TRUE(w->close(&err)) << "close is idempotent";
}

TEST(Writer, ByteExactAcrossManyBuffersDirect) { byte_exact_run(true, 11); }
TEST(Writer, ByteExactAcrossManyBuffersBuffered) { byte_exact_run(false, 12); }
// Tails padded with filler blocks and overwritten by the next write: the final file holds
// exactly the committed bytes (the last filler is cut off at close).
TEST(Writer, ByteExactAcrossManyBuffersDirectPaddedTails) { byte_exact_run(true, 13, true); }
TEST(Writer, ByteExactDirectWithoutPreallocationExtends) { byte_exact_run(true, 14, true, false); }

// pad_tail: while the capture runs, the file on disk always ends on a block boundary at a
// 4 KiB multiple (the tail went out by O_DIRECT with a filler after it), every committed block
// is there, and both readers read it; at close the filler is gone.
TEST(Writer, PaddedTailKeepsOpenFileValidAndAligned) {
  TempDir dir(test_parent_dir());
  if (!dir_supports_odirect(dir.path()))
    GTEST_SKIP() << dir.path() << " is not ext4/xfs/btrfs; set EHP_WRITER_TEST_DIR";
  const std::string path = dir.path() + "/padded.pcapng";
  WriterOptions o;
  o.pad_tail = true;
  o.flush_interval_ms = 0;  // flush() below is the only partial write
  auto w = must_open(path, o);
  ASSERT_TRUE(w);
  PcapngFeeder feed(*w, 21);
  ASSERT_TRUE(feed.shb() && feed.idb());
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 5 + round * 700; i++) ASSERT_TRUE(feed.epb(60 + (i * 37) % 1400));
    w->flush();
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    std::vector<uint8_t> got;
    while (Clock::now() < deadline) {
      got = read_file(path);
      if (got.size() >= feed.expected().size() &&
          std::equal(feed.expected().begin(), feed.expected().end(), got.begin()))
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling interval only
    }
    ASSERT_GE(got.size(), feed.expected().size()) << "round " << round;
    EXPECT_TRUE(std::equal(feed.expected().begin(), feed.expected().end(), got.begin()));
    EXPECT_EQ(got.size() % 4096, 0u) << "round " << round << ": not a 4 KiB multiple";
    EXPECT_GT(got.size(), feed.expected().size()) << "no filler after an unaligned tail";
    EXPECT_EQ(ehp::pcapng::complete_prefix(got), got.size()) << "round " << round;
    EXPECT_EQ(readers_complaints(path), "") << "round " << round;
  }
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  EXPECT_EQ(read_file(path), feed.expected());
}

// Committed data reaches the file within flush_interval_ms (2 s) while the producer calls
// nothing else; checked by polling the file with a deadline, then again after more data lands
// in the same 4 KiB block (the O_DIRECT tail rewrite).
TEST(Writer, DataVisibleWithin2sWithoutFurtherCalls) {
  TempDir dir(test_parent_dir());
  const std::string path = dir.path() + "/live.pcapng";
  auto w = must_open(path, WriterOptions{});  // defaults: 2000 ms
  ASSERT_TRUE(w);
  PcapngFeeder feed(*w, 3);
  for (int round = 0; round < 2; round++) {
    if (round == 0) {
      ASSERT_TRUE(feed.shb() && feed.idb());
    }
    for (int i = 0; i < 3 + round * 40; i++) ASSERT_TRUE(feed.epb(100 + i));
    const auto t0 = Clock::now();
    const auto deadline = t0 + std::chrono::milliseconds(2500);
    bool seen = false;
    while (Clock::now() < deadline) {
      if (file_size(path) == off_t(feed.expected().size()) && read_file(path) == feed.expected()) {
        seen = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval only
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ASSERT_TRUE(seen) << "round " << round << ": data not on file after " << ms << " ms";
    EXPECT_LE(ms, 2000) << "round " << round;
    // The file, still open, is already a valid pcapng.
    EXPECT_EQ(readers_complaints(path), "") << "round " << round;
  }
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  EXPECT_EQ(read_file(path), feed.expected());
}

// flush() hands the committed part over now, with the timer off (flush_interval_ms = 0).
TEST(Writer, ExplicitFlushWithTimerOff) {
  TempDir dir(test_parent_dir());
  const std::string path = dir.path() + "/flush.pcapng";
  WriterOptions o;
  o.flush_interval_ms = 0;
  auto w = must_open(path, o);
  ASSERT_TRUE(w);
  PcapngFeeder feed(*w, 6);
  ASSERT_TRUE(feed.shb() && feed.idb() && feed.epb(1000) && feed.dsb());
  w->flush();
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (Clock::now() < deadline && read_file(path) != feed.expected())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling interval only
  EXPECT_EQ(read_file(path), feed.expected()) << "flush() did not reach the file";
  EXPECT_EQ(w->stats().flushes, 1u);
  std::string err;
  ASSERT_TRUE(w->close(&err)) << err;
  EXPECT_EQ(read_file(path), feed.expected());
}

// Short writes for real: RLIMIT_FSIZE cuts a write at the limit (SIGXFSZ ignored, so the kernel
// returns the partial count, then EFBIG). The writer must resubmit the rest (that retry is what
// gets EFBIG), fail cleanly, and leave a file that ends in a complete block.
void rlimit_run(bool direct, rlim_t limit, bool pad_tail = false) {
  TempDir dir(test_parent_dir());
  const std::string path = dir.path() + "/fsize.pcapng";
  WriterOptions o;
  o.direct = direct;
  o.pad_tail = pad_tail;
  o.buffer_bytes = 64 << 10;
  o.buffers = 4;
  auto w = must_open(path, o);
  ASSERT_TRUE(w);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old {};
  getrlimit(RLIMIT_FSIZE, &old);
  struct rlimit lim = {limit, old.rlim_max};
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
  PcapngFeeder feed(*w, 4);
  bool ok = feed.shb() && feed.idb();
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (ok && Clock::now() < deadline) ok = feed.random_block(9000);
  std::string err;
  EXPECT_FALSE(w->close(&err));
  setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_FALSE(ok) << "the writer never failed";
  EXPECT_TRUE(w->failed());
  EXPECT_NE(err.find("File too large"), std::string::npos) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
  const auto st = w->stats();
  EXPECT_GE(st.short_writes, 1u) << "no short write was seen";
  const auto got = read_file(path);
  EXPECT_EQ(uint64_t(got.size()), st.truncated_to_bytes);
  EXPECT_LE(got.size(), limit);
  // At most one block (<= 9 KiB + options) short of the limit is lost.
  EXPECT_GT(got.size() + 12000, limit);
  ASSERT_LE(got.size(), feed.expected().size());
  EXPECT_TRUE(std::equal(got.begin(), got.end(), feed.expected().begin())) << "content differs";
  EXPECT_EQ(ehp::pcapng::complete_prefix(got), got.size()) << "file does not end on a block";
  EXPECT_EQ(readers_complaints(path), "");
}

TEST(Writer, ShortWriteAtFileSizeLimitDirect) { rlimit_run(true, 75 * 4096); }
TEST(Writer, ShortWriteAtFileSizeLimitBuffered) { rlimit_run(false, 300001); }
// An unaligned limit under O_DIRECT: the cut-down direct write is unaligned (EINVAL); the writer
// must still end with a valid file.
TEST(Writer, ShortWriteAtUnalignedLimitDirect) { rlimit_run(true, 400003); }
// The same with tails padded by filler blocks (what the engine uses): the filler never ends up
// in the kept file, which still holds exactly the committed bytes up to the cut.
TEST(Writer, ShortWriteAtFileSizeLimitDirectPaddedTails) { rlimit_run(true, 75 * 4096, true); }
TEST(Writer, ShortWriteAtUnalignedLimitDirectPaddedTails) { rlimit_run(true, 400003, true); }

// "-" writes to stdout; here stdout is a pipe drained slowly, so writes into the 64 KiB pipe
// come back short and are resubmitted. The reader must get exactly the committed bytes.
TEST(Writer, StdoutPipeByteExact) {
  int pfd[2];
  ASSERT_EQ(pipe2(pfd, O_CLOEXEC), 0);
  fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  ASSERT_GE(saved, 0);
  ASSERT_EQ(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
  WriterOptions o;
  o.buffer_bytes = 256 << 10;
  o.buffers = 4;
  o.flush_interval_ms = 10;
  std::string err;
  auto w = Writer::open("-", o, &err);
  dup2(saved, STDOUT_FILENO);  // the writer holds its own dup of the pipe
  close(saved);
  close(pfd[1]);
  ASSERT_TRUE(w) << err;
  EXPECT_FALSE(w->stats().direct_io);
  std::vector<uint8_t> got;
  std::thread reader([&] {
    // Read nothing until the producer has had to wait for a buffer (pipe full, every buffer
    // in flight): bounded depth means backpressure, not unbounded queueing.
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (w->stats().backpressure_waits == 0 && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling interval only
    std::vector<uint8_t> buf(8192);
    for (int i = 0;; i++) {
      ssize_t r = read(pfd[0], buf.data(), buf.size());
      if (r <= 0) break;
      got.insert(got.end(), buf.begin(), buf.begin() + r);
      if (i % 64 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  PcapngFeeder feed(*w, 5);
  bool ok = feed.shb() && feed.idb();
  while (ok && feed.expected().size() < (16u << 20)) ok = feed.random_block(60000);
  EXPECT_TRUE(ok) << w->error();
  EXPECT_TRUE(w->close(&err)) << err;
  const auto pst = w->stats();
  const uint64_t w_short = pst.short_writes, w_writes = pst.writes_submitted,
                 w_backpressure = pst.backpressure_waits;
  reader.join();  // close() closed the write end: the reader saw EOF
  w.reset();
  close(pfd[0]);
  EXPECT_EQ(got.size(), feed.expected().size());
  EXPECT_TRUE(got == feed.expected());
  EXPECT_EQ(ehp::pcapng::complete_prefix(got), got.size());
  // A 256 KiB write into a 64 KiB pipe comes back short; the rest was resubmitted (content above).
  EXPECT_GE(w_short, 1u) << "writes: " << w_writes;
  EXPECT_GE(w_backpressure, 1u) << "a stalled reader must make reserve() wait";
}

// The reader of "-" goes away (e.g. `ecapture-hp -w - | head -c 100`): with SIGPIPE ignored,
// as the engine does, the writer reports EPIPE and stops instead of hanging.
TEST(Writer, StdoutReaderGoneReportsBrokenPipe) {
  signal(SIGPIPE, SIG_IGN);
  int pfd[2];
  ASSERT_EQ(pipe2(pfd, O_CLOEXEC), 0);
  fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  ASSERT_EQ(dup2(pfd[1], STDOUT_FILENO), STDOUT_FILENO);
  WriterOptions o;
  o.buffer_bytes = 64 << 10;
  o.buffers = 2;
  std::string err;
  auto w = Writer::open("-", o, &err);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  close(pfd[1]);
  close(pfd[0]);  // nobody will ever read
  ASSERT_TRUE(w) << err;
  PcapngFeeder feed(*w, 7);
  bool ok = feed.shb() && feed.idb();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (ok && Clock::now() < deadline) ok = feed.random_block(1500);
  EXPECT_FALSE(ok);
  EXPECT_FALSE(w->close(&err));
  EXPECT_EQ(err, "write stdout: Broken pipe");
}

}  // namespace

namespace {
// The allocator warm-up (fs_warm.h) finds the output's ext4 filesystem and reads every group
// of it once per process; other filesystems are left alone.
TEST(Writer, WarmsTheExt4AllocatorOncePerFilesystem) {
  TempDir dir(test_parent_dir());
  const std::string path = dir.path() + "/warm.pcapng";
  auto w = must_open(path, WriterOptions{});
  ASSERT_TRUE(w);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const std::string groups = ehp::output::ext4_mb_groups_path(fd);
  ::close(fd);
  if (groups.empty()) GTEST_SKIP() << dir.path() << " is not on ext4 (or /proc/fs/ext4 unreadable)";
  ASSERT_TRUE(ehp::output::wait_block_allocator_warm(30000)) << "warm-up still running after 30 s";
  // One line per group after the header, as the kernel prints them.
  std::ifstream f(groups);
  size_t lines = 0;
  for (std::string l; std::getline(f, l);) lines++;
  ASSERT_GT(lines, 1u);
  EXPECT_EQ(ehp::output::block_groups_warmed(), lines - 1);
  // A second writer on the same filesystem does not read it again.
  auto w2 = must_open(dir.path() + "/warm2.pcapng", WriterOptions{});
  ASSERT_TRUE(w2);
  ASSERT_TRUE(ehp::output::wait_block_allocator_warm(30000));
  EXPECT_EQ(ehp::output::block_groups_warmed(), lines - 1);
  // tmpfs is not ext4: nothing to warm.
  const int shm = ::open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(shm, 0);
  EXPECT_EQ(ehp::output::ext4_mb_groups_path(shm), "");
  EXPECT_FALSE(ehp::output::warm_block_allocator_async(shm));
  ::close(shm);
  std::string err;
  EXPECT_TRUE(w->close(&err)) << err;
  EXPECT_TRUE(w2->close(&err)) << err;
}
}  // namespace
