// SPDX-License-Identifier: BSD-2-Clause
// Test driver for ehp::capture: captures on the given interfaces until SIGINT/SIGTERM and writes
// what next_batch delivered, in delivery order, to a nanosecond pcap plus a TSV of metadata.
//   capture_probe -i IF [-i IF2] [--pcap F] [--meta F] [--ready F] [--snaplen N] [--cpus 0,1]
//                 [--count-only] [--ring-bytes N] [--uid N] [--pid N]
//   capture_probe --remove-stale [-i IF]
// On exit prints "stats key=value ..." to stdout.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capture/capture.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

struct PcapHdr {
  uint32_t magic = 0xa1b23c4d;  // nanosecond pcap
  uint16_t major = 2, minor = 4;
  int32_t zone = 0;
  uint32_t sigfigs = 0, snaplen = 262144, linktype = 1;
};
struct RecHdr {
  uint32_t sec, nsec, cap, wire;
};
}  // namespace

int main(int argc, char** argv) {
  ehp::capture::Options o;
  std::string pcap_path, meta_path, ready_path;
  bool remove_stale = false, count_only = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fprintf(stderr, "missing value for %s\n", a.c_str());
        exit(2);
      }
      return argv[++i];
    };
    if (a == "-i") o.ifaces.push_back(next());
    else if (a == "--pcap") pcap_path = next();
    else if (a == "--meta") meta_path = next();
    else if (a == "--ready") ready_path = next();
    else if (a == "--snaplen") o.snaplen = uint32_t(std::stoul(next()));
    else if (a == "--uid") o.uid = uint32_t(std::stoul(next()));
    else if (a == "--pid") o.pid = uint32_t(std::stoul(next()));
    else if (a == "--ring-bytes") o.ring_bytes_per_cpu = uint32_t(std::stoul(next()));
    else if (a == "--cpus") {
      std::string v = next();
      for (size_t p = 0; p < v.size();) {
        size_t q = v.find(',', p);
        if (q == std::string::npos) q = v.size();
        o.cpus.push_back(std::stoi(v.substr(p, q - p)));
        p = q + 1;
      }
    } else if (a == "--remove-stale") remove_stale = true;
    else if (a == "--count-only") count_only = true;
    else {
      fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (remove_stale) {
    std::string report, err;
    int n = ehp::capture::remove_stale_filters(o.ifaces, &report, &err);
    if (n < 0) {
      fprintf(stderr, "remove_stale_filters: %s\n", err.c_str());
      return 1;
    }
    fputs(report.c_str(), stdout);
    printf("removed=%d\n", n);
    return 0;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  std::string err;
  auto cap = ehp::capture::Capture::open(o, &err);
  if (!cap) {
    fprintf(stderr, "open: %s\n", err.c_str());
    return 1;
  }
  if (!cap->attach(&err)) {
    fprintf(stderr, "attach: %s\n", err.c_str());
    return 1;
  }
  cap->start();
  FILE* pcap = nullptr;
  FILE* meta = nullptr;
  if (!count_only && !pcap_path.empty()) {
    pcap = fopen(pcap_path.c_str(), "wb");
    PcapHdr h;
    h.linktype = cap->interfaces()[0].linktype;
    fwrite(&h, sizeof(h), 1, pcap);
  }
  if (!count_only && !meta_path.empty()) meta = fopen(meta_path.c_str(), "w");
  if (!ready_path.empty()) {
    FILE* r = fopen(ready_path.c_str(), "w");
    fprintf(r, "%d\n", getpid());
    fclose(r);
  }
  std::vector<ehp::capture::PacketRef> refs(512);
  uint64_t delivered = 0, delivered_bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto write_batch = [&](size_t n) {
    for (size_t i = 0; i < n; i++) {
      const auto& r = refs[i];
      if (pcap) {
        RecHdr rh{uint32_t(r.ts_ns / 1'000'000'000ull), uint32_t(r.ts_ns % 1'000'000'000ull), r.cap_len, r.wire_len};
        fwrite(&rh, sizeof(rh), 1, pcap);
        fwrite(r.data, 1, r.cap_len, pcap);
      }
      if (meta)
        fprintf(meta, "%llu\t%u\t%u\t%u\t%u\t%d\t%u\t%s\t%u\n", (unsigned long long)r.ts_ns, r.direction, r.ifindex,
                r.wire_len, r.cap_len, r.proc.known ? 1 : 0, r.proc.info.pid, r.proc.info.comm, r.proc.info.uid);
      delivered_bytes += r.cap_len;
    }
    delivered += n;
    // Release in delivery order (a batch may mix rings; each release frees its ring up to it).
    for (size_t i = 0; i < n; i++) cap->release(refs[i]);
  };
  while (!g_stop.load()) write_batch(cap->next_batch(refs.data(), refs.size(), 100));
  auto t1 = std::chrono::steady_clock::now();
  cap->detach();
  cap->stop();
  for (;;) {
    size_t n = cap->next_batch(refs.data(), refs.size(), 1000);
    if (!n) break;
    write_batch(n);
  }
  if (pcap) fclose(pcap);
  if (meta) fclose(meta);
  auto s = cap->stats();
  double secs = std::chrono::duration<double>(t1 - t0).count();
  printf("stats delivered=%llu delivered_bytes=%llu records=%llu kernel_seen=%llu kernel_records=%llu reserve_fail=%llu "
         "queue_full=%llu no_ring=%llu load_fail=%llu out_of_order=%llu wakeups=%llu filtered_proc=%llu seconds=%.3f\n",
         (unsigned long long)delivered, (unsigned long long)delivered_bytes, (unsigned long long)s.records,
         (unsigned long long)s.kernel_seen, (unsigned long long)s.kernel_records, (unsigned long long)s.reserve_fail,
         (unsigned long long)s.queue_full, (unsigned long long)s.no_ring, (unsigned long long)s.load_fail,
         (unsigned long long)s.out_of_order, (unsigned long long)s.wakeups, (unsigned long long)s.filtered_proc, secs);
  return 0;
}
