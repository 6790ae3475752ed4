// SPDX-License-Identifier: BSD-2-Clause
// Process identity, in one shape from the kernel to the file. The BPF side fills the ABI's
// ehp_proc_info (bpf/abi/attribution_abi.h: pid = tgid, tid, uid, gid, comm); capture's
// PacketRef, the correlator's PacketMeta and the TLS probe's events carry it as this struct,
// copied whole, and the sink formats it with format_process().
#pragma once
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "abi/attribution_abi.h"

namespace ehp {

struct Process {
  ehp_proc_info info{};
  bool known = false;  // false: no process could be named (info is zero)

  std::string_view comm() const { return {info.comm, strnlen(info.comm, sizeof info.comm)}; }
};

// "pid=1234 tid=1235 uid=0 comm=curl": the EPB comment that `frame.comment contains "curl"`
// filters on. Writes at most cap bytes (no NUL), returns the length. No printf: it runs per
// packet.
inline size_t format_process(const ehp_proc_info& p, char* out, size_t cap) {
  char* w = out;
  char* const end = out + cap;
  auto put = [&](std::string_view s) {
    const size_t n = std::min(s.size(), size_t(end - w));
    memcpy(w, s.data(), n);
    w += n;
  };
  auto num = [&](uint32_t v) {
    auto r = std::to_chars(w, end, v);
    if (r.ec == std::errc()) w = r.ptr;
  };
  put("pid=");
  num(p.pid);
  put(" tid=");
  num(p.tid);
  put(" uid=");
  num(p.uid);
  put(" comm=");
  put(std::string_view(p.comm, strnlen(p.comm, sizeof p.comm)));
  return size_t(w - out);
}

inline std::string format_process(const ehp_proc_info& p) {
  char buf[96];
  return std::string(buf, format_process(p, buf, sizeof buf));
}

}  // namespace ehp
