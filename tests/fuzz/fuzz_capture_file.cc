// SPDX-License-Identifier: BSD-2-Clause
// libFuzzer target: the replay input reader (engine/pipeline/capture_file.h), which reads pcap and
// pcapng files a user was handed (hostile input).
//
// Input: a byte string taken as a whole capture file. Properties:
//   - no read outside what was read from the file (ASan) and no crash or hang on any input;
//   - next() answers 1, 0 or -1 only; -1 comes with a one-line reason;
//   - a record is never larger than the reader's block cap, nor than the file;
//   - a packet names an interface the file declared before it;
//   - a cut last record is reported at an offset inside the file;
//   - once next() answered 0 or -1, the reader stops (no records after the end).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "pipeline/capture_file.h"

namespace {
using ehp::fuzz::fail;
constexpr const char* kT = "fuzz_capture_file";
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ehp::fuzz::input_file(kT, data, size);
  if (fd < 0) return 0;
  std::string err;
  auto r = ehp::pipeline::CaptureFileReader::open("/proc/self/fd/" + std::to_string(fd), &err);
  if (!r) {
    if (err.empty() || err.find('\n') != std::string::npos) fail(kT, "open refused without a one-line reason");
    close(fd);
    return 0;
  }
  ehp::pipeline::CaptureRecord rec;
  int rc = 1;
  for (int i = 0; i < 100000 && rc == 1; ++i) {
    err.clear();
    rc = r->next(&rec, &err);
    if (rc != 1 && rc != 0 && rc != -1) fail(kT, "next() answered " + std::to_string(rc));
    if (rc == -1 && (err.empty() || err.find('\n') != std::string::npos))
      fail(kT, "a damaged file without a one-line reason: '" + err + "'");
    if (rc != 1) break;
    if (rec.data.size() > ehp::pipeline::CaptureFileReader::kMaxBlockBytes) fail(kT, "a record past the block cap");
    if (rec.data.size() > size) fail(kT, "a record larger than the file");
    if (rec.kind == ehp::pipeline::CaptureRecord::Kind::Packet && rec.interface_id >= r->interfaces().size())
      fail(kT, "a packet of interface " + std::to_string(rec.interface_id) + " of " +
                   std::to_string(r->interfaces().size()) + " declared");
  }
  if (r->truncated_at() >= 0 && uint64_t(r->truncated_at()) >= size) fail(kT, "a cut reported past the end");
  if (rc != 1) {
    err.clear();
    if (r->next(&rec, &err) == 1) fail(kT, "a record after the end");
  }
  r.reset();
  close(fd);
  return 0;
}
