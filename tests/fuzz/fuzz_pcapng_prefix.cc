// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: pcapng complete_prefix / scan_prefix (engine/output/pcapng.h), which the
// writer uses to cut a file back to valid blocks after ENOSPC.
//
// Input: a byte string taken as the start of a pcapng file. Properties:
//   - no read outside the bytes (ASan; the span is the fuzzer's exact-size buffer);
//   - n = complete_prefix(b) <= |b|, n % 4 == 0, and scan_prefix(b) agrees on n;
//   - a stop before the end comes with a reason; a full scan has an empty one;
//   - the prefix re-scans to itself: complete_prefix(b[0:n]) == n (and stops nowhere);
//   - a shorter cut never yields more: complete_prefix(b[0:c]) <= min(c, n) for c < n.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "output/pcapng.h"

namespace {
using ehp::fuzz::fail;
constexpr const char* kT = "fuzz_pcapng_prefix";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> all(data, size);
  const size_t n = ehp::pcapng::complete_prefix(all);
  const ehp::pcapng::PrefixResult r = ehp::pcapng::scan_prefix(all);
  if (n > size) fail(kT, "prefix longer than the input");
  if (n % 4 != 0) fail(kT, "prefix length not a multiple of 4");
  if (r.len_bytes != n) fail(kT, "scan_prefix and complete_prefix disagree");
  if (r.stop_reason == nullptr) fail(kT, "null stop_reason");
  if (n < size && r.stop_reason[0] == '\0') fail(kT, "stopped before the end without a reason");
  if (n == size && r.stop_reason[0] != '\0') fail(kT, std::string("full scan with a stop reason: ") + r.stop_reason);
  if (n > 0 && r.blocks == 0) fail(kT, "non-empty prefix of zero blocks");

  // Re-scan the prefix on its own exact-size allocation.
  const std::vector<uint8_t> prefix(data, data + n);
  const ehp::pcapng::PrefixResult again = ehp::pcapng::scan_prefix(prefix);
  if (again.len_bytes != n) fail(kT, "prefix does not re-scan to itself: " + std::to_string(n) + " -> " +
                                         std::to_string(again.len_bytes) + " (" + again.stop_reason + ")");
  if (again.blocks != r.blocks) fail(kT, "prefix re-scan counts other blocks");
  if (n > 0) {
    const size_t c = (size_t{data[0]} * 257 + data[size - 1]) % n;  // some cut inside the prefix
    const std::vector<uint8_t> cut(data, data + c);
    const size_t m = ehp::pcapng::complete_prefix(cut);
    if (m > c || m > n) fail(kT, "a shorter cut gives a longer prefix");
  }
  return 0;
}
