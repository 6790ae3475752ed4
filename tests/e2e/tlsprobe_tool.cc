// SPDX-License-Identifier: BSD-2-Clause
// Test driver for ehp::tlsprobe::TlsProbe (used by tests/e2e/tlsprobe_e2e.sh and tlsprobe_overhead.sh).
//   tlsprobe_tool [--libssl P] [-p PID] [-u UID] [--text] --out FILE --ready FILE
// Opens the probe, writes the attached libraries to --ready (the sentinel the scripts wait on),
// then appends one line per event to --out until SIGINT/SIGTERM:
//   K <pid> <tid> <uid> <comm> <keylog line>          (each line of keylog_lines(secrets))
//   D <pid> <tid> <uid> <comm> <R|W> <len> <tuple|-> <data, non-printables as '.'>
// On open failure prints the error on stderr and exits 2.
#include <arpa/inet.h>
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "tls/keys.h"
#include "tlsprobe/tlsprobe.h"

static volatile sig_atomic_t g_stop = 0;

int main(int argc, char** argv) {
  ehp::tlsprobe::Options opt;
  std::string out_path, ready_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--libssl") opt.libssl_path = next();
    else if (a == "-p") opt.pid = std::stoul(next());
    else if (a == "-u") opt.uid = std::stoul(next());
    else if (a == "--text") opt.plaintext = true;
    else if (a == "--fallback") opt.force_io_fallback = true;
    else if (a == "--out") out_path = next();
    else if (a == "--ready") ready_path = next();
    else {
      fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 1;
    }
  }
  std::string err;
  auto probe = ehp::tlsprobe::TlsProbe::open(opt, &err);
  if (!probe) {
    fprintf(stderr, "%s\n", err.c_str());
    return 2;
  }
  FILE* out = out_path.empty() ? stdout : fopen(out_path.c_str(), "w");
  if (!out) return 1;
  struct sigaction sa {};
  sa.sa_handler = [](int) { g_stop = 1; };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  if (!ready_path.empty()) {
    FILE* r = fopen((ready_path + ".tmp").c_str(), "w");
    for (auto& l : probe->libraries()) fprintf(r, "attached %s\n", l.c_str());
    for (auto& l : probe->skipped()) fprintf(r, "skipped %s\n", l.c_str());
    fclose(r);
    rename((ready_path + ".tmp").c_str(), ready_path.c_str());
  }
  auto on_secrets = [&](const ehp::tls::Secrets& s, const ehp::tlsprobe::ProcInfo& p) {
    std::string lines = ehp::tls::keylog_lines(s);
    if (lines.empty()) {
      fprintf(out, "N %u %u %u %s version=%04x cipher=%04x\n", p.info.pid, p.info.tid, p.info.uid, p.info.comm, s.version, s.cipher_id);
    }
    size_t pos = 0;
    while (pos < lines.size()) {
      size_t nl = lines.find('\n', pos);
      if (nl == std::string::npos) nl = lines.size();
      fprintf(out, "K %u %u %u %s %.*s\n", p.info.pid, p.info.tid, p.info.uid, p.info.comm, int(nl - pos), lines.data() + pos);
      pos = nl + 1;
    }
    fflush(out);
  };
  auto on_data = [&](const ehp::tlsprobe::PlainData& d) {
    std::string tuple = "-";
    if (d.tuple) {
      char a[64], b[64];
      int af = d.tuple->ip_version == 6 ? AF_INET6 : AF_INET;
      inet_ntop(af, d.tuple->saddr.data(), a, sizeof a);
      inet_ntop(af, d.tuple->daddr.data(), b, sizeof b);
      tuple = std::string(a) + ":" + std::to_string(d.tuple->sport) + "->" + b + ":" + std::to_string(d.tuple->dport);
    }
    std::string text(d.data.begin(), d.data.end());
    for (auto& c : text)
      if (c < 0x20 || c > 0x7e) c = '.';
    fprintf(out, "D %u %u %u %s %c %llu %s %s\n", d.proc.info.pid, d.proc.info.tid, d.proc.info.uid, d.proc.info.comm,
            d.is_write ? 'W' : 'R', (unsigned long long)d.len_bytes, tuple.c_str(), text.c_str());
    fflush(out);
  };
  while (!g_stop) probe->poll(100, on_secrets, on_data);
  while (probe->poll(0, on_secrets, on_data) > 0) {
  }
  auto st = probe->stats();
  fprintf(out, "S secrets=%llu data=%llu ring_drops=%llu truncated=%llu read_faults=%llu null=%llu\n",
          (unsigned long long)st.secrets_events, (unsigned long long)st.data_events,
          (unsigned long long)st.ring_drops, (unsigned long long)st.data_truncated,
          (unsigned long long)st.read_faults, (unsigned long long)st.null_secrets);
  fclose(out);
  return 0;
}
