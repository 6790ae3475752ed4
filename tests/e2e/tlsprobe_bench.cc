// SPDX-License-Identifier: BSD-2-Clause
// Hook overhead of engine/tlsprobe, measured in one run: the same TLS workloads through the
// system libssl (dynamically linked, so the uprobes fire here) with no probe, with the probe in
// secrets mode and with the probe in -m text mode, rounds interleaved to spread machine noise.
//   tlsprobe_bench CERT.pem KEY.pem [seconds_per_round=0.5] [rounds=5]
// Modes: off, secrets (handshake_func hooks), fallback (per-call I/O hooks), text (-m text).
// Workloads (client and server SSL in this thread over a BIO pair, so no scheduler noise):
//   handshake   full TLS 1.3 handshakes per second (SSL_do_handshake uprobe + uretprobe)
//   small64     64-byte SSL_write + SSL_read pairs per second (I/O entry fallback per call)
//   bulk16k     16 KiB SSL_write + SSL_read, MB/s
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tlsprobe/tlsprobe.h"

namespace {
using Clock = std::chrono::steady_clock;

struct Pair {
  SSL* c;
  SSL* s;
};

Pair make_pair(SSL_CTX* cctx, SSL_CTX* sctx) {
  Pair p{SSL_new(cctx), SSL_new(sctx)};
  BIO *bc, *bs;
  BIO_new_bio_pair(&bc, 0, &bs, 0);
  SSL_set_bio(p.c, bc, bc);
  SSL_set_bio(p.s, bs, bs);
  SSL_set_connect_state(p.c);
  SSL_set_accept_state(p.s);
  int rc = 0, rs = 0;
  for (int i = 0; i < 32 && !(rc == 1 && rs == 1); ++i) {
    if (rc != 1) rc = SSL_do_handshake(p.c);
    if (rs != 1) rs = SSL_do_handshake(p.s);
  }
  if (rc != 1 || rs != 1) {
    fprintf(stderr, "handshake failed\n");
    exit(1);
  }
  return p;
}

void free_pair(Pair p) {
  SSL_free(p.c);
  SSL_free(p.s);
}

// Runs `op` repeatedly for `secs`; returns ops per second.
template <typename F>
double rate(double secs, F op) {
  auto end = Clock::now() + std::chrono::duration<double>(secs);
  uint64_t n = 0;
  auto t0 = Clock::now();
  while (Clock::now() < end)
    for (int i = 0; i < 16; ++i, ++n) op();
  return n / std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CERT.pem KEY.pem [seconds_per_round] [rounds]\n", argv[0]);
    return 1;
  }
  double secs = argc > 3 ? atof(argv[3]) : 0.5;
  int rounds = argc > 4 ? atoi(argv[4]) : 5;
  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  if (SSL_CTX_use_certificate_file(sctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(sctx, argv[2], SSL_FILETYPE_PEM) != 1) {
    fprintf(stderr, "cannot load %s / %s\n", argv[1], argv[2]);
    return 1;
  }
  SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_cache_mode(sctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(sctx, 0);

  std::vector<uint8_t> buf(16384, 'x'), in(16384);
  Pair io = make_pair(cctx, sctx);
  auto xfer = [&](size_t n) {
    if (SSL_write(io.c, buf.data(), int(n)) != int(n) || SSL_read(io.s, in.data(), int(in.size())) != int(n)) {
      fprintf(stderr, "transfer failed\n");
      exit(1);
    }
  };
  const char* names[] = {"handshake/s", "small64 ops/s", "bulk16k MB/s"};
  auto run_all = [&](double out[3]) {
    out[0] = rate(secs / 4, [&] { free_pair(make_pair(cctx, sctx)); });
    out[1] = rate(secs, [&] { xfer(64); });
    out[2] = rate(secs, [&] { xfer(16384); }) * 16384 / 1e6;
  };

  // secrets: handshake_func hooks (what TlsProbe uses); fallback: SSL_do_handshake + per-call
  // SSL_read/SSL_write hooks (what a naive design, and a library without located handshake
  // functions, gets); text: -m text.
  const char* modes[] = {"off", "secrets", "fallback", "text"};
  constexpr int kModes = 4;
  std::map<int, std::vector<double>> res[kModes];  // mode -> workload -> samples
  for (int r = 0; r < rounds; ++r) {
    for (int m = 0; m < kModes; ++m) {
      std::unique_ptr<ehp::tlsprobe::TlsProbe> probe;
      std::atomic<bool> stop{false};
      std::atomic<uint64_t> events{0};
      std::thread drain;
      if (m > 0) {
        ehp::tlsprobe::Options o;
        o.pid = getpid();  // only this process: other processes' TLS must not add noise
        o.plaintext = m == 3;
        o.force_io_fallback = m == 2;
        std::string err;
        probe = ehp::tlsprobe::TlsProbe::open(o, &err);
        if (!probe) {
          fprintf(stderr, "%s\n", err.c_str());
          return 1;
        }
        drain = std::thread([&] {
          auto on_s = [&](const ehp::tls::Secrets&, const ehp::tlsprobe::ProcInfo&) { events++; };
          auto on_d = [&](const ehp::tlsprobe::PlainData&) { events++; };
          while (!stop) probe->poll(50, on_s, on_d);
        });
      }
      double out[3];
      run_all(out);
      for (int w = 0; w < 3; ++w) res[m][w].push_back(out[w]);
      if (probe) {
        stop = true;
        drain.join();
        auto st = probe->stats();
        fprintf(stderr, "round %d %-7s secrets=%llu data=%llu drops=%llu\n", r, modes[m],
                (unsigned long long)st.secrets_events, (unsigned long long)st.data_events,
                (unsigned long long)st.ring_drops);
      }
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  printf("%-14s %11s %11s %11s %11s %8s %8s %8s\n", "workload", "off", "secrets", "fallback", "text",
         "sec/off", "fb/off", "text/off");
  for (int w = 0; w < 3; ++w) {
    double o = median(res[0][w]), s = median(res[1][w]), f = median(res[2][w]), t = median(res[3][w]);
    printf("%-14s %11.1f %11.1f %11.1f %11.1f %8.3f %8.3f %8.3f\n", names[w], o, s, f, t, s / o, f / o, t / o);
  }
  free_pair(io);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  return 0;
}
