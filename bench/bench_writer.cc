// SPDX-License-Identifier: BSD-2-Clause
// Writer throughput to a real file, in bytes/s, in one run (absolute figures drift on this shared
// machine, ratios do not):
//   BM_UringDirect    ehp::output::Writer, io_uring + O_DIRECT + registered buffers (the default)
//   BM_UringBuffered  the same Writer with direct=false (page cache)
//   BM_Write2Loop     plain write(2) of the same 1 MiB buffers filled the same way (page cache),
//                     the shape of a bufio/fwrite-style writer
// Every run ends with fsync, so each figure is "bytes on disk per second". Blocks are 1400-B
// packet-sized records copied in with memcpy, like the encoder fills reserve()d space.
// The file goes to $EHP_BENCH_DIR (default: the current dir, i.e. the build dir, on a real disk;
// /tmp may be tmpfs) and is deleted after every iteration. $EHP_BENCH_WRITER_MB sets the
// bytes per iteration (default 256 MiB; CI's smoke run uses 8).
#include <fcntl.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "output/uring_writer.h"

namespace {

constexpr size_t kBlockBytes = 1400;
constexpr size_t kBufferBytes = 1 << 20;

size_t total_bytes() {
  const char* mb = std::getenv("EHP_BENCH_WRITER_MB");
  return size_t(mb ? std::strtoul(mb, nullptr, 10) : 256) << 20;
}

std::string bench_path() {
  const char* d = std::getenv("EHP_BENCH_DIR");
  return std::string(d ? d : ".") + "/p2-bench-writer-" + std::to_string(getpid()) + ".bin";
}

std::vector<uint8_t> make_block() {
  std::vector<uint8_t> b(kBlockBytes);
  for (size_t i = 0; i < b.size(); i++) b[i] = uint8_t(i * 131 + 7);
  return b;
}

void uring_run(benchmark::State& state, bool direct) {
  const size_t total = total_bytes();
  const auto block = make_block();
  const std::string path = bench_path();
  ehp::output::WriterStats last{};
  for (auto _ : state) {
    ehp::output::WriterOptions o;
    o.direct = direct;
    o.buffer_bytes = size_t(state.range(0));
    o.buffers = unsigned(state.range(1));
    std::string err;
    auto w = ehp::output::Writer::open(path, o, &err);
    if (!w) {
      state.SkipWithError(err.c_str());
      break;
    }
    for (size_t done = 0; done < total; done += kBlockBytes) {
      uint8_t* p = w->reserve(kBlockBytes);
      if (!p) break;
      std::memcpy(p, block.data(), kBlockBytes);
      w->commit(kBlockBytes);
    }
    if (!w->close(&err)) {
      state.SkipWithError(err.c_str());
      break;
    }
    last = w->stats();
    ::unlink(path.c_str());
  }
  ::unlink(path.c_str());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(total));
  state.counters["direct_io"] = last.direct_io;
  state.counters["backpressure_waits"] = double(last.backpressure_waits);
  state.counters["short_writes"] = double(last.short_writes);
}

void BM_UringDirect(benchmark::State& state) { uring_run(state, true); }
void BM_UringBuffered(benchmark::State& state) { uring_run(state, false); }

void BM_Write2Loop(benchmark::State& state) {
  const size_t total = total_bytes();
  const auto block = make_block();
  const std::string path = bench_path();
  std::vector<uint8_t> buf(kBufferBytes);
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      state.SkipWithError("open failed");
      break;
    }
    size_t used = 0;
    bool ok = true;
    auto drain = [&] {
      for (size_t off = 0; off < used && ok;) {
        const ssize_t r = ::write(fd, buf.data() + off, used - off);
        if (r <= 0) ok = false;
        else off += size_t(r);
      }
      used = 0;
    };
    for (size_t done = 0; done < total && ok; done += kBlockBytes) {
      if (used + kBlockBytes > buf.size()) drain();
      std::memcpy(buf.data() + used, block.data(), kBlockBytes);
      used += kBlockBytes;
    }
    drain();
    if (::fsync(fd) != 0) ok = false;
    ::close(fd);
    ::unlink(path.c_str());
    if (!ok) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(total));
}

// The writing happens on the writer thread: wall time is the honest clock.
// Args: buffer_bytes, buffers (= max writes in flight). 1 MiB x 16 is the default.
BENCHMARK(BM_UringDirect)
    ->Args({1 << 20, 16})
    ->Args({1 << 20, 8})
    ->Args({4 << 20, 8})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_UringBuffered)->Args({1 << 20, 16})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Write2Loop)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
