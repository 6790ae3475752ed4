// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/key_policy.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "abi/attribution_abi.h"
#include "base/clock.h"

namespace ehp::pipeline {
namespace {

constexpr uint64_t kYesTtlNs = 10'000'000'000ull;
constexpr uint64_t kNoTtlNs = 1'000'000'000ull;
constexpr size_t kCacheMax = 65536;
constexpr uint64_t kMarkValidNs = 30'000'000'000ull;
// /proc/PID/maps of a process at the kernel's default map count limit (65,530) is ~6.5 MB.
constexpr size_t kMapsReadCap = 8u << 20;

// 16-byte attribution address: IPv4 stored v4-mapped (abi/attribution_abi.h).
void put_addr(uint8_t out[16], const ehp::net::FrameInfo& fi, const std::array<uint8_t, 16>& a) {
  if (fi.ip_version == 4) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, a.data(), 4);
  } else {
    memcpy(out, a.data(), 16);
  }
}

}  // namespace

bool TracedProcessPolicy::maps_name_any(std::string_view maps,
                                        const std::vector<tlsprobe::TlsProbe::FileId>& files) {
  // "start-end perms offset MAJ:MIN inode   path": fields 4 and 5.
  size_t pos = 0;
  while (pos < maps.size()) {
    size_t eol = maps.find('\n', pos);
    if (eol == std::string_view::npos) eol = maps.size();
    std::string_view line = maps.substr(pos, eol - pos);
    pos = eol + 1;
    size_t f = 0;
    std::string_view field[5];
    size_t i = 0;
    while (f < 5 && i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ') ++j;
      if (j > i) field[f++] = line.substr(i, j - i);
      i = j;
    }
    if (f < 5) continue;
    const std::string_view dev = field[3], ino_s = field[4];
    const size_t colon = dev.find(':');
    if (colon == std::string_view::npos) continue;
    unsigned maj = 0, min = 0;
    uint64_t ino = 0;
    if (std::from_chars(dev.data(), dev.data() + colon, maj, 16).ec != std::errc() ||
        std::from_chars(dev.data() + colon + 1, dev.data() + dev.size(), min, 16).ec != std::errc() ||
        std::from_chars(ino_s.data(), ino_s.data() + ino_s.size(), ino).ec != std::errc() || ino == 0)
      continue;
    const uint64_t d = makedev(maj, min);
    for (const auto& file : files)
      if (file.ino == ino && file.dev == d) return true;
  }
  return false;
}

bool TracedProcessPolicy::process_gives_keys(uint32_t pid, uint32_t uid) {
  if (pid == 0) return false;
  if (o_.pid && *o_.pid != pid) return false;
  if (o_.uid && *o_.uid != uid) return false;
  if (o_.probe && o_.probe->process_seen(pid, kMarkValidNs)) return true;
  // Exec'ed after the start and found mapping a TLS binary not yet traced (the probe's late
  // looks): its probes may be in place before its handshake ends; hold (a delay at worst). Not
  // cached: it is over in 2 s.
  if (o_.probe && o_.probe->process_pending(pid)) return true;
  const uint64_t now = mono_ns();
  auto it = cache_.find(pid);
  if (it != cache_.end() && it->second.until_ns > now) return it->second.yes;
  if (cache_.size() >= kCacheMax) cache_.clear();

  bool yes = false;
  ++st_.maps_read;
  const std::string path = o_.proc_root + "/" + std::to_string(pid) + "/maps";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd >= 0) {
    // Read in pieces and scan whole lines as they come: bounded memory, bounded total.
    std::string buf;
    buf.reserve(64 * 1024);
    size_t total = 0;
    char chunk[16384];
    for (;;) {
      const ssize_t r = ::read(fd, chunk, sizeof chunk);
      if (r <= 0) break;
      total += size_t(r);
      buf.append(chunk, size_t(r));
      const size_t last_nl = buf.rfind('\n');
      if (last_nl != std::string::npos) {
        if (maps_name_any(std::string_view(buf).substr(0, last_nl + 1), o_.files)) {
          yes = true;
          break;
        }
        buf.erase(0, last_nl + 1);
      }
      if (total >= kMapsReadCap) {
        ++st_.maps_too_large;
        yes = true;  // cannot tell: hold (a delay at worst), rather than lose the session
        break;
      }
    }
    if (!yes && !buf.empty()) yes = maps_name_any(buf, o_.files);
    ::close(fd);
  } else if (errno == EACCES || errno == EPERM) {
    // After -Z the maps of another user's process cannot be read: cannot tell, so hold (a delay
    // at worst). Forwarded traffic names no local process and is still not held.
    ++st_.maps_unreadable;
    yes = true;
  }
  cache_[pid] = Cached{yes, now + (yes ? kYesTtlNs : kNoTtlNs)};
  return yes;
}

bool TracedProcessPolicy::keyable(const correlate::PacketMeta& meta, const ehp::net::FrameInfo& fi) {
  ++st_.asked;
  if (o_.probe) {
    // Binaries traced after the start (the probe's late looks): take the new list, and forget the
    // "no" answers given without it.
    if (const uint64_t gen = o_.probe->files_generation(); gen != files_gen_) {
      files_gen_ = gen;
      o_.files = o_.probe->traced_files();
      cache_.clear();
    }
  }
  if (o_.files.empty()) return false;
  bool yes = meta.proc.known && process_gives_keys(meta.proc.info.pid, meta.proc.info.uid);
  if (!yes && o_.attr_map_fd >= 0 && (fi.ip_version == 4 || fi.ip_version == 6)) {
    // Both ends' exact sockets (no wildcards: a listener's port says nothing about whether this
    // host is the destination; an accepted socket gets its exact entry before any TLS byte).
    for (int end = 0; end < 2 && !yes; ++end) {
      ehp_attr_key k{};
      const bool src_local = end == 0;
      put_addr(k.local_addr, fi, src_local ? fi.src : fi.dst);
      put_addr(k.remote_addr, fi, src_local ? fi.dst : fi.src);
      k.local_port = htons(src_local ? fi.sport : fi.dport);
      k.remote_port = htons(src_local ? fi.dport : fi.sport);
      k.proto = fi.l4_proto;
      ehp_attr_value v{};
      if (bpf_map_lookup_elem(o_.attr_map_fd, &k, &v) != 0) continue;
      if (meta.proc.known && v.proc.pid == meta.proc.info.pid) continue;  // asked above
      yes = process_gives_keys(v.proc.pid, v.proc.uid);
    }
  }
  if (yes) ++st_.keyable;
  return yes;
}

}  // namespace ehp::pipeline
