// SPDX-License-Identifier: BSD-2-Clause
// See fs_warm.h for why this exists.
#include "output/fs_warm.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <limits.h>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace ehp::output {
namespace {

struct Warmer {
  std::mutex mu;
  std::condition_variable cv;
  std::set<dev_t> started;
  std::vector<std::thread> threads;
  unsigned running = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> groups{0};
  ~Warmer() {
    stop = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
};

Warmer& warmer() {
  static Warmer w;
  return w;
}

void read_all(Warmer& w, std::string path, unsigned max_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    // Small reads: about one group (one line, which may read a bitmap from disk) per call, so
    // stop/deadline are checked between groups and process exit is never held up for long.
    char buf[192];
    bool header = true;
    while (!w.stop.load(std::memory_order_relaxed) && std::chrono::steady_clock::now() < deadline) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      uint64_t lines = 0;
      for (ssize_t i = 0; i < n; i++) lines += buf[i] == '\n';
      if (header && lines) {  // the first line is the column header
        lines--;
        header = false;
      }
      w.groups.fetch_add(lines, std::memory_order_relaxed);
    }
    ::close(fd);
  }
  std::lock_guard lk(w.mu);
  w.running--;
  w.cv.notify_all();
}

}  // namespace

std::string ext4_mb_groups_path(int fd) {
  struct statfs sfs {};
  if (fstatfs(fd, &sfs) != 0 || sfs.f_type != EXT4_SUPER_MAGIC) return {};
  struct stat st {};
  if (fstat(fd, &st) != 0) return {};
  // /sys/dev/block/MAJ:MIN links to the block device's sysfs directory, named like the entry
  // ext4 creates under /proc/fs/ext4 (vda, vda1, dm-0, nvme0n1p2).
  const std::string link =
      "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  char target[PATH_MAX];
  ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) return {};
  std::string t(target, size_t(n));
  const std::string name = t.substr(t.rfind('/') + 1);
  if (name.empty()) return {};
  const std::string path = "/proc/fs/ext4/" + name + "/mb_groups";
  return access(path.c_str(), R_OK) == 0 ? path : std::string();
}

bool warm_block_allocator_async(int fd, unsigned max_seconds) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  Warmer& w = warmer();
  std::lock_guard lk(w.mu);
  // Each rotated file asks again: answer from the set without naming the device anew.
  if (w.started.count(st.st_dev)) return true;  // already warmed (or warming)
  std::string path = ext4_mb_groups_path(fd);
  if (path.empty()) return false;
  w.started.insert(st.st_dev);
  w.running++;
  w.threads.emplace_back(read_all, std::ref(w), std::move(path), max_seconds);
  return true;
}

uint64_t block_groups_warmed() { return warmer().groups.load(std::memory_order_relaxed); }

bool wait_block_allocator_warm(unsigned timeout_ms) {
  Warmer& w = warmer();
  std::unique_lock lk(w.mu);
  return w.cv.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return w.running == 0; });
}

}  // namespace ehp::output
