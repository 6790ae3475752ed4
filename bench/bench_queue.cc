// SPDX-License-Identifier: BSD-2-Clause
// Queue handoff between threads: a ring consumer hands 24-byte refs to the merger through a
// moodycamel::ConcurrentQueue (engine/capture/capture.cc), in bulk. items/s of one producer
// thread -> one consumer thread, per bulk size, against a mutex + std::deque baseline.
// Both threads share this machine's 2 cores with everything else: compare the two rows of one
// run, not runs.
#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>

namespace {

struct Item {  // the shape of capture.cc's ref: timestamp, ring position, lengths
  uint64_t ts_mono_ns;
  uint64_t pos;
  uint32_t len;
  uint32_t cap_len;
};
static_assert(sizeof(Item) == 24);

constexpr size_t kPerIteration = 1 << 14;
constexpr size_t kMaxBulk = 256;

void BM_MoodycamelHandoff(benchmark::State& st) {
  const size_t bulk = size_t(st.range(0));
  moodycamel::ConcurrentQueue<Item> q(1 << 16, 1, 0);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    moodycamel::ProducerToken tok(q);
    Item items[kMaxBulk];
    uint64_t seq = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (size_t i = 0; i < bulk; i++) items[i] = Item{seq, seq * 64, 1456, 1400}, ++seq;
      // Bounded like the engine's queue: back off (yield) when the consumer lags.
      while (!q.try_enqueue_bulk(tok, items, bulk)) {
        if (stop.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
      }
    }
  });
  moodycamel::ConsumerToken ctok(q);
  Item out[kMaxBulk];
  uint64_t sum = 0;
  for (auto _ : st) {
    size_t need = kPerIteration;
    while (need) {
      size_t n = q.try_dequeue_bulk(ctok, out, std::min(need, bulk));
      if (n == 0) {
        std::this_thread::yield();
        continue;
      }
      sum += out[n - 1].pos;
      need -= n;
    }
  }
  benchmark::DoNotOptimize(sum);
  stop = true;
  producer.join();
  st.SetItemsProcessed(int64_t(st.iterations() * kPerIteration));
  st.SetBytesProcessed(int64_t(st.iterations() * kPerIteration * sizeof(Item)));
}
BENCHMARK(BM_MoodycamelHandoff)->Arg(1)->Arg(64)->Arg(256)->ArgName("bulk")->UseRealTime();

// Baseline: the obvious locked queue, same bulk sizes and bound.
void BM_MutexDequeHandoff(benchmark::State& st) {
  const size_t bulk = size_t(st.range(0));
  std::mutex mu;
  std::deque<Item> q;
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    uint64_t seq = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      for (;;) {
        {
          std::lock_guard<std::mutex> g(mu);
          if (q.size() + bulk <= (1u << 16)) {
            for (size_t i = 0; i < bulk; i++) q.push_back(Item{seq, seq * 64, 1456, 1400}), ++seq;
            break;
          }
        }
        if (stop.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
      }
    }
  });
  uint64_t sum = 0;
  for (auto _ : st) {
    size_t need = kPerIteration;
    while (need) {
      size_t n = 0;
      {
        std::lock_guard<std::mutex> g(mu);
        while (n < bulk && n < need && !q.empty()) {
          sum += q.front().pos;
          q.pop_front();
          n++;
        }
      }
      if (n == 0) std::this_thread::yield();
      need -= n;
    }
  }
  benchmark::DoNotOptimize(sum);
  stop = true;
  producer.join();
  st.SetItemsProcessed(int64_t(st.iterations() * kPerIteration));
}
BENCHMARK(BM_MutexDequeHandoff)->Arg(1)->Arg(64)->Arg(256)->ArgName("bulk")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
