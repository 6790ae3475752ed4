// SPDX-License-Identifier: BSD-2-Clause
// Clocks, in one place. BPF programs stamp events with bpf_ktime_get_ns (CLOCK_MONOTONIC); the
// file wants wall-clock time. Every event source converts with realtime_offset_ns().
#pragma once
#include <time.h>

#include <climits>
#include <cstdint>

namespace ehp {

inline uint64_t clock_ns(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}
inline uint64_t mono_ns() { return clock_ns(CLOCK_MONOTONIC); }
inline uint64_t wall_clock_ns() { return clock_ns(CLOCK_REALTIME); }

// CLOCK_REALTIME - CLOCK_MONOTONIC in ns: a REALTIME read bracketed between two MONOTONIC
// reads, the tightest of five brackets (a preemption between two reads would skew a naive
// difference by the preemption's length).
inline int64_t realtime_offset_ns() {
  int64_t best_gap = INT64_MAX, best = 0;
  for (int i = 0; i < 5; i++) {
    const int64_t a = int64_t(clock_ns(CLOCK_MONOTONIC));
    const int64_t r = int64_t(clock_ns(CLOCK_REALTIME));
    const int64_t b = int64_t(clock_ns(CLOCK_MONOTONIC));
    if (b - a < best_gap) {
      best_gap = b - a;
      best = r - (a + (b - a) / 2);
    }
  }
  return best;
}

}  // namespace ehp
