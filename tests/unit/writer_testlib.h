// SPDX-License-Identifier: BSD-2-Clause
// Helpers shared by the io_uring writer tests: real pcapng blocks from ehp::pcapng's encoders, encoded
// straight into Writer::reserve() space (the way the engine uses it), and readers that run the
// real tools (tshark, tcpdump) on the result.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "output/pcapng.h"
#include "output/uring_writer.h"

namespace ehp::writer_test {

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

inline off_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// Runs a shell command, returns its exit status and combined output.
struct ToolResult {
  int status = -1;
  std::string output;
};
inline ToolResult run_tool(const std::string& cmd) {
  ToolResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// tshark and tcpdump disagree on what is malformed (docs/facts.md), so a file is valid only when
// both read it to the end without a complaint.
inline std::string readers_complaints(const std::string& path) {
  std::string bad;
  ToolResult t = run_tool("tshark -r '" + path + "' >/dev/null");
  if (t.status != 0 || !t.output.empty())
    bad += "tshark status " + std::to_string(t.status) + ": " + t.output + "\n";
  ToolResult d = run_tool("tcpdump -nr '" + path + "' >/dev/null");
  // tcpdump always prints "reading from file ..."; its errors start with "tcpdump:".
  if (d.status != 0 || d.output.find("tcpdump:") != std::string::npos)
    bad += "tcpdump status " + std::to_string(d.status) + ": " + d.output + "\n";
  return bad;
}

// Encodes real pcapng blocks into the writer and keeps a copy of every committed byte.
class PcapngFeeder {
 public:
  PcapngFeeder(output::Writer& w, uint64_t seed) : w_(w), rng_(seed) {}

  bool shb() {
    pcapng::ShbInfo info{"p2 test hw", "Linux", "ecapture-hp writer test"};
    return put(pcapng::shb_size(info),
               [&](std::span<uint8_t> out) { return pcapng::encode_shb(out, info); });
  }
  bool idb() {
    pcapng::IdbInfo info;
    info.name = "p2veth0";
    info.description = "writer test";
    return put(pcapng::idb_size(info),
               [&](std::span<uint8_t> out) { return pcapng::encode_idb(out, info); });
  }
  // An Ethernet/IPv4/UDP-looking frame of `caplen` bytes (content random; readers only need
  // well-formed blocks).
  bool epb(uint32_t caplen) {
    payload_.resize(caplen);
    for (auto& b : payload_) b = uint8_t(rng_());
    pcapng::EpbInfo info;
    info.ts_ns = 1'700'000'000'000'000'000ull + n_++ * 1000;
    info.caplen = info.origlen = caplen;
    info.flags = (n_ & 1) ? pcapng::kFlagInbound : pcapng::kFlagOutbound;
    info.comment = "pid=1234 tid=1234 uid=0 comm=curl";
    info.has_pid_tid = true;
    info.pid = info.tid = 1234;
    return put(pcapng::epb_size(info), [&](std::span<uint8_t> out) {
      return pcapng::encode_epb(out, info, payload_);
    });
  }
  bool dsb() {
    const std::string line =
        "CLIENT_RANDOM " + std::string(64, 'a') + " " + std::string(96, 'b') + "\n";
    return put(pcapng::dsb_size(line),
               [&](std::span<uint8_t> out) { return pcapng::encode_dsb(out, line); });
  }
  // Random mix: mostly EPBs from 1 to max_caplen bytes, some DSBs.
  bool random_block(uint32_t max_caplen) {
    if (rng_() % 50 == 0) return dsb();
    const uint32_t r = uint32_t(rng_() % 100);
    const uint32_t caplen = r < 60   ? 1 + uint32_t(rng_() % 200)
                            : r < 95 ? 1 + uint32_t(rng_() % 1514)
                                     : 1 + uint32_t(rng_() % max_caplen);
    return epb(caplen);
  }
  const std::vector<uint8_t>& expected() const { return expected_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  template <class F>
  bool put(size_t n, F encode) {
    uint8_t* p = w_.reserve(n);
    if (!p) return false;
    const size_t got = encode(std::span<uint8_t>(p, n));
    if (got != n) std::abort();  // encoder contract broken: not what this test checks
    expected_.insert(expected_.end(), p, p + n);
    w_.commit(n);
    return true;
  }
  output::Writer& w_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> expected_;
  uint64_t n_ = 0;
};

// Per-test scratch dir (prefix p2-), removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& parent) {
    std::string tmpl = parent + "/p2-writer-XXXXXX";
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) run_tool("rm -rf '" + path_ + "'");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ehp::writer_test
