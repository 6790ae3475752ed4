#include "engine.h"

#include <pthread.h>
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "capture/capture.h"
#include "capture/tc_netlink.h"
#include "correlate/correlator.h"
#include "correlate/tls_keys.h"
#include "filter/filter.h"
#include "output/create.h"
#include "pcapng_sink.h"
#include "stop_signals.h"
#include "tlsprobe/tlsprobe.h"

namespace ehp {
namespace {

std::atomic<bool> g_stop{false};

// A filter whose compilation takes longer than this is refused (filter/cbpf.h says why).
constexpr unsigned kFilterCompileMs = 3000;

int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 1;
}

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// Link type of an interface as pcap would report it: no-L2 devices (tun, wireguard,
// ARPHRD_NONE) carry raw IP at TC; everything else here carries an Ethernet header.
uint16_t iface_linktype(const std::string& name) {
  std::ifstream f("/sys/class/net/" + name + "/type");
  int type = 1;
  f >> type;
  if (type == 65534 /* ARPHRD_NONE */ || type == 778 /* ARPHRD_IPGRE */ || type == 776 /* SIT */)
    return 101;
  return 1;
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) snprintf(buf, sizeof buf, "%.2f GiB", b / double(1ull << 30));
  else if (b >= (1ull << 20)) snprintf(buf, sizeof buf, "%.1f MiB", b / double(1ull << 20));
  else if (b >= 1024) snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  else snprintf(buf, sizeof buf, "%llu B", (unsigned long long)b);
  return buf;
}

// ---- -Z USER: privilege drop after attach, as tcpdump does ------------------------------------

struct DropUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// Resolved before anything is attached, so a typo fails with nothing to undo.
bool resolve_drop_user(const std::string& name, DropUser* out, std::string* err) {
  std::vector<char> buf(16384);
  passwd pw{}, *res = nullptr;
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || !res) {
    *err = "-Z: unknown user '" + name + "'";
    return false;
  }
  out->uid = pw.pw_uid;
  out->gid = pw.pw_gid;
  out->name = pw.pw_name;
  return true;
}

uint32_t last_cap() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  uint32_t v = 40;
  f >> v;
  return v;
}

// Becomes `u` (supplementary groups, gid, uid: glibc applies the set*id calls to every thread).
// With keep_net_admin the calling thread alone keeps CAP_NET_ADMIN, because removing the TC
// filters at exit is a netlink request that needs it; every other capability is gone, including
// from the bounding set. No libcap: prctl + raw capset.
bool drop_privileges(const DropUser& u, bool keep_net_admin, std::string* err) {
  auto sys_fail = [&](const char* what) {
    *err = std::string("-Z ") + u.name + ": " + what + ": " + strerror(errno);
    return false;
  };
  if (keep_net_admin) {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return sys_fail("PR_SET_KEEPCAPS");
    for (uint32_t c = 0, last = last_cap(); c <= last; ++c)
      if (c != CAP_NET_ADMIN) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);  // EINVAL for unknown caps: fine
  }
  if (initgroups(u.name.c_str(), u.gid) != 0) return sys_fail("initgroups");
  if (setgid(u.gid) != 0) return sys_fail("setgid");
  if (setuid(u.uid) != 0) return sys_fail("setuid");
  if (keep_net_admin) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
    if (syscall(SYS_capset, &hdr, data) != 0) return sys_fail("capset");
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  // Like tcpdump: regaining root must be impossible now. Raw syscall: this thread only, and
  // glibc's all-threads machinery is not involved in an attempt that is meant to fail.
  if (u.uid != 0 && syscall(SYS_setuid, 0) == 0) {
    *err = "-Z " + u.name + ": root could be regained after dropping privileges";
    return false;
  }
  return true;
}

// Threads started after the drop inherit the caller's CAP_NET_ADMIN; they never need it.
void drop_thread_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  syscall(SYS_capset, &hdr, data);  // per thread (raw syscall, not glibc's all-threads path)
}

// The output should belong to the user we run as, as tcpdump's does (it is still 0600).
void chown_output(const std::string& path, const DropUser& u) {
  if (path.empty() || path == "-") return;
  if (fchownat(AT_FDCWD, path.c_str(), u.uid, u.gid, AT_SYMLINK_NOFOLLOW) != 0)
    fprintf(stderr, "ecapture-hp: warning: chown %s to %s: %s\n", path.c_str(), u.name.c_str(), strerror(errno));
}

// ---- filters left behind by a killed run ------------------------------------------------------

// SIGKILL leaves a capture no chance to remove its TC filters (nor the clsact it created).
// Before attaching, remove ours that no live process holds, say so, and remove the clsact too
// when that left it without filters: the killed run had created it (a clean run removes its own).
void remove_leftovers(const std::vector<capture::Interface>& ifaces) {
  for (const auto& i : ifaces) {
    std::string report, err;
    int n = capture::remove_stale_filters({i.name}, &report, &err);
    if (n < 0) {
      fprintf(stderr, "ecapture-hp: warning: checking %s for filters left by a killed run: %s\n",
              i.name.c_str(), err.c_str());
      continue;
    }
    size_t pos = 0;
    while (pos < report.size()) {
      size_t nl = report.find('\n', pos);
      if (nl == std::string::npos) nl = report.size();
      fprintf(stderr, "ecapture-hp: %s\n", report.substr(pos, nl - pos).c_str());
      pos = nl + 1;
    }
    if (n == 0) continue;
    std::vector<capture::detail::TcFilter> in, eg;
    bool has = false;
    if (!capture::detail::has_clsact(i.ifindex, &has, &err) || !has) continue;
    if (!capture::detail::list_clsact_filters(i.ifindex, true, &in, &err) ||
        !capture::detail::list_clsact_filters(i.ifindex, false, &eg, &err) || !in.empty() || !eg.empty())
      continue;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = i.ifindex,
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    if (bpf_tc_hook_destroy(&hook) == 0)
      fprintf(stderr, "ecapture-hp: removed the empty clsact qdisc left behind on %s\n", i.name.c_str());
  }
}


// Opens the TLS probe and names, once each, the libraries it refused. nullptr when none could
// be traced; *err is then the reason not already printed ("" when the refusals say it all).
std::unique_ptr<tlsprobe::TlsProbe> open_probe(const Config& cfg, bool plaintext, std::string* err) {
  tlsprobe::Options to;
  to.libssl_path = cfg.libssl;
  to.pid = cfg.pid;
  to.uid = cfg.uid;
  to.plaintext = plaintext;
  std::vector<std::string> skipped;
  auto probe = tlsprobe::TlsProbe::open(to, err, &skipped);
  for (auto& s : skipped) fprintf(stderr, "ecapture-hp: %s\n", s.c_str());
  if (!probe && std::find(skipped.begin(), skipped.end(), *err) != skipped.end()) err->clear();
  return probe;
}

int run_keylog_or_text(const Config& cfg, StopSignals& sig, const DropUser* drop) {
  std::string err;
  auto probe = open_probe(cfg, cfg.mode == Mode::Text, &err);
  if (!probe) return err.empty() ? 1 : fail(err);
  int fd = -1;
  if (cfg.mode == Mode::Keylog) {
    fd = output::create_output(cfg.keylogfile, false, false, &err).fd;
    if (fd < 0) return fail(err);
  }
  {
    auto g = sig.attach_lock();
    sig.started();
  }
  if (drop) {
    // Uprobe links and the ring are plain fds: nothing at teardown needs a capability.
    if (fd >= 0 && fchown(fd, drop->uid, drop->gid) != 0)
      fprintf(stderr, "ecapture-hp: warning: chown %s: %s\n", cfg.keylogfile.c_str(), strerror(errno));
    if (!drop_privileges(*drop, false, &err)) return fail(err);
  }
  for (auto& l : probe->libraries()) fprintf(stderr, "ecapture-hp: tracing %s\n", l.c_str());
  fprintf(stderr, "ecapture-hp: capturing, press Ctrl-C to stop\n");
  tls::ClientRandomDedup dedup(1 << 16);
  uint64_t keys = 0, null_keys = 0, dups = 0;
  bool write_failed = false;
  auto on_secrets = [&](const tls::Secrets& s, const tlsprobe::ProcInfo& p) {
    std::string lines = tls::keylog_lines(s);
    if (lines.empty()) {
      null_keys++;
      return;
    }
    if (!dedup.insert(s.client_random)) {
      dups++;
      return;
    }
    keys++;
    if (fd >= 0) {
      if (::write(fd, lines.data(), lines.size()) != ssize_t(lines.size())) write_failed = true;
    } else {
      printf("[keys] pid=%u comm=%.16s\n%s", p.pid, p.comm, lines.c_str());
      fflush(stdout);
    }
  };
  auto on_data = [&](const tlsprobe::PlainData& d) {
    char tuple[192] = "";
    if (d.tuple) {
      char a[64], b[64];
      int af = d.tuple->ip_version == 6 ? AF_INET6 : AF_INET;
      inet_ntop(af, d.tuple->saddr.data(), a, sizeof a);
      inet_ntop(af, d.tuple->daddr.data(), b, sizeof b);
      snprintf(tuple, sizeof tuple, " %s:%u -> %s:%u", a, d.tuple->sport, b, d.tuple->dport);
    }
    printf("[%s] pid=%u tid=%u uid=%u comm=%.16s len=%zu%s\n", d.is_write ? "SSL_write" : "SSL_read",
           d.proc.pid, d.proc.tid, d.proc.uid, d.proc.comm, d.data.size(), tuple);
    fwrite(d.data.data(), 1, d.data.size(), stdout);
    printf("\n");
    fflush(stdout);
  };
  uint64_t next_stats = mono_ns() + 2'000'000'000ull;
  uint64_t deadline = cfg.stop_duration_s ? mono_ns() + cfg.stop_duration_s * 1'000'000'000ull : 0;
  while (!g_stop) {
    probe->poll(100, on_secrets, on_data);
    if (sig.requested()) break;
    if (deadline && mono_ns() >= deadline) break;
    if (!cfg.quiet && mono_ns() >= next_stats && cfg.mode == Mode::Keylog) {
      auto st = probe->stats();
      fprintf(stderr, "ecapture-hp: keys %llu null %llu dup %llu ring-drops %llu\n",
              (unsigned long long)keys, (unsigned long long)null_keys, (unsigned long long)dups,
              (unsigned long long)st.ring_drops);
      next_stats += 2'000'000'000ull;
    }
  }
  while (probe->poll(0, on_secrets, on_data) > 0) {
  }
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  auto st = probe->stats();
  fprintf(stderr, "ecapture-hp: %llu sessions' keys written, %llu null keys rejected, %llu duplicates, %llu ring drops\n",
          (unsigned long long)keys, (unsigned long long)null_keys, (unsigned long long)dups,
          (unsigned long long)st.ring_drops);
  if (write_failed) return fail("writing " + cfg.keylogfile + " failed");
  return 0;
}

// BPF, TC and uprobes need CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN (or CAP_SYS_ADMIN): say so up
// front instead of failing on the first bpf() call.
bool have_capture_privileges(std::string* err) {
  std::ifstream f("/proc/self/status");
  std::string line;
  uint64_t eff = 0;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) eff = strtoull(line.c_str() + 7, nullptr, 16);
  auto has = [&](int cap) { return (eff >> cap) & 1; };
  bool ok = (has(39) || has(21)) && (has(38) || has(21)) && has(12);  // BPF, PERFMON, NET_ADMIN
  if (!ok) *err = "needs root (CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN) to load eBPF programs";
  return ok;
}

}  // namespace

int run_tls(const Config& cfg) {
  // First of all, so that a stop is never ignored, whatever start-up is doing.
  StopSignals sig;
  {
    std::string perr;
    if (!have_capture_privileges(&perr)) return fail(perr);
    // CO-RE relocations (attribution, uprobes) need the kernel's BTF; say so before libbpf does.
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
      return fail("this kernel has no BTF (/sys/kernel/btf/vmlinux: " + std::string(strerror(errno)) +
                  "); ecapture-hp needs a kernel built with CONFIG_DEBUG_INFO_BTF=y");
  }
  std::optional<DropUser> drop;
  if (!cfg.drop_user.empty()) {
    std::string uerr;
    drop.emplace();
    if (!resolve_drop_user(cfg.drop_user, &*drop, &uerr)) return fail(uerr);
  }
  if (cfg.mode != Mode::Pcap) return run_keylog_or_text(cfg, sig, drop ? &*drop : nullptr);

  std::string err;
  // Link types decide how the filter is compiled; one compiled program serves all interfaces.
  std::vector<SinkIface> sifaces;
  uint16_t linktype = 0;
  for (auto& name : cfg.ifaces) {
    uint16_t lt = iface_linktype(name);
    if (linktype && lt != linktype)
      return fail("interfaces with different link types (Ethernet and raw IP) need separate runs");
    linktype = lt;
  }
  std::vector<struct bpf_insn> filter_body;
  bool have_filter = !cfg.filter.empty();
  if (have_filter) {
    auto cbpf = filter::compile_cbpf_bounded(cfg.filter, linktype, cfg.snaplen, kFilterCompileMs, &err);
    if (!cbpf) return fail(err);
    auto ebpf = filter::translate(*cbpf, &err);
    if (!ebpf) return fail(err);
    filter_body = std::move(*ebpf);
  }

  capture::Options co;
  co.ifaces = cfg.ifaces;
  co.cpus = cfg.cpus;
  co.snaplen = cfg.snaplen;
  co.ring_bytes_per_cpu = cfg.ring_bytes_per_cpu;
  co.pid = cfg.pid;
  co.uid = cfg.uid;
  if (have_filter) {
    co.before_load = [&](struct bpf_object*, struct bpf_program* in, struct bpf_program* out,
                         std::string* e) {
      return filter::install(in, filter_body, e) && filter::install(out, filter_body, e);
    };
  }
  auto cap = capture::Capture::open(co, &err);
  if (!cap) return fail(err);

  // Packets are worth capturing even when no TLS library can be traced: say so, go on.
  auto probe = open_probe(cfg, false, &err);
  if (!probe) {
    if (!err.empty()) fprintf(stderr, "ecapture-hp: %s\n", err.c_str());
    fprintf(stderr, "ecapture-hp: warning: no TLS library is traced; packets are captured, TLS sessions will not decrypt\n");
  }

  for (auto& i : cap->interfaces())
    sifaces.push_back({i.name, std::string("ecapture-hp TC ") + (i.loopback ? "egress" : "ingress+egress") + " on " + i.name,
                       i.linktype});
  SinkOptions so;
  so.path = cfg.pcapfile;
  so.filter = cfg.filter;
  so.snaplen = cfg.snaplen;
  so.direct_io = cfg.direct_io;
  so.allow_foreign_stream = cfg.output_is_callers_fifo;
  so.rotate_bytes = cfg.ring_filesize_kb * 1000;
  so.rotate_duration_ns = cfg.ring_duration_s * 1'000'000'000ull;
  so.ring_files = cfg.ring_files;
  so.stop_after_bytes = cfg.stop_filesize_kb * 1000;
  auto sink = PcapngSink::open(so, sifaces, &err);
  if (!sink) return fail(err);

  correlate::HoldBackConfig hc;
  hc.hold_ns = cfg.hold_ms * 1'000'000ull;
  correlate::Correlator corr(hc, *sink, 1 << 16);
  std::mutex sink_mu;  // the sink's tick (rotation by time) runs from the pump only

  remove_leftovers(cap->interfaces());
  {
    // A signal arriving now waits for the attach to finish, then takes the clean path.
    auto g = sig.attach_lock();
    if (!cap->attach(&err)) return fail(err);
    sig.started();
  }
  cap->start();
  if (drop) {
    // After attach, as tcpdump does. Keep CAP_NET_ADMIN in this thread: detach() at exit
    // removes the TC filters (and our clsact) over netlink. ~Capture detaches on failure.
    for (const auto& f : sink->files()) chown_output(f, *drop);
    if (!drop_privileges(*drop, true, &err)) return fail(err);
  }
  if (!cfg.quiet) {
    if (probe)
      for (auto& l : probe->libraries()) fprintf(stderr, "ecapture-hp: tracing %s\n", l.c_str());
    fprintf(stderr, "ecapture-hp: capturing on %zu interface(s) to %s, press Ctrl-C to stop\n",
            cfg.ifaces.size(), cfg.pcapfile == "-" ? "standard output" : cfg.pcapfile.c_str());
  }

  std::atomic<bool> pump_stop_input{false};  // -c reached: take no more packets
  std::atomic<bool> autostop{false};
  std::atomic<uint64_t> pkts_in{0}, bytes_in{0}, keys_in{0};
  std::vector<int> ifindex_to_id;
  for (uint32_t id = 0; id < cap->interfaces().size(); ++id) {
    int ix = cap->interfaces()[id].ifindex;
    if (ix >= int(ifindex_to_id.size())) ifindex_to_id.resize(ix + 1, -1);
    ifindex_to_id[ix] = int(id);
  }

  std::thread keys_thread([&] {
    pthread_setname_np(pthread_self(), "ehp-keys");
    if (drop) drop_thread_caps();
    auto on_secrets = [&](const tls::Secrets& s, const tlsprobe::ProcInfo&) {
      keys_in++;
      corr.push_secrets(s);
    };
    if (!probe) return;
    while (!g_stop.load(std::memory_order_relaxed)) probe->poll(100, on_secrets);
    while (probe->poll(0, on_secrets) > 0) {
    }
  });

  std::thread pump([&] {
    pthread_setname_np(pthread_self(), "ehp-pump");
    if (drop) drop_thread_caps();
    constexpr size_t kBatch = 256;
    std::vector<capture::PacketRef> refs(kBatch);
    std::vector<correlate::PacketMeta> metas(kBatch);
    std::vector<std::span<const uint8_t>> frames(kBatch);
    uint64_t next_tick = 0;
    for (;;) {
      size_t n = cap->next_batch(refs.data(), kBatch, 100);
      uint64_t now = mono_ns();
      if (n == 0 && g_stop.load() && cap->drained()) break;
      size_t take = n;
      if (cfg.stop_packets) {
        uint64_t have = pkts_in.load(std::memory_order_relaxed);
        take = have >= cfg.stop_packets ? 0 : std::min<uint64_t>(n, cfg.stop_packets - have);
      }
      uint64_t bytes = 0;
      for (size_t i = 0; i < take; ++i) {
        auto& r = refs[i];
        auto& m = metas[i];
        m.ts_ns = r.ts_ns;
        int id = r.ifindex < ifindex_to_id.size() ? ifindex_to_id[r.ifindex] : -1;
        m.interface_id = id < 0 ? 0 : uint32_t(id);
        m.linktype = cap->interfaces()[m.interface_id].linktype;
        m.direction = r.direction;
        m.wire_len = r.wire_len;
        m.cap_len = r.cap_len;
        m.attributed = r.attributed;
        m.pid = r.pid;
        m.tid = r.tid;
        m.uid = r.uid;
        m.gid = r.gid;
        memcpy(m.comm, r.comm, sizeof m.comm);
        frames[i] = std::span<const uint8_t>(r.data, r.cap_len);
        bytes += r.cap_len;
      }
      if (take) corr.push_packets(metas.data(), frames.data(), take);
      if (n) cap->release(refs[n - 1]);
      pkts_in += take;
      bytes_in += bytes;
      if (cfg.stop_packets && pkts_in.load() >= cfg.stop_packets) autostop = true;
      if (now >= next_tick) {
        corr.tick(wall_clock_ns());
        std::lock_guard<std::mutex> g(sink_mu);
        sink->tick(wall_clock_ns());
        if (cfg.stop_filesize_kb && sink->stats().file_bytes >= cfg.stop_filesize_kb * 1000) autostop = true;
        if (sink->failed()) autostop = true;
        next_tick = now + 100'000'000ull;
      }
    }
  });

  // The periodic line runs on its own thread: corr.stats() takes the hold-back lock, which the
  // pump holds while the sink waits for a slow or stuck output, and the main thread must stay
  // free to act on a signal (measured: with a stuck pipe the main loop hung there and Ctrl-C did
  // nothing; the filters stayed attached).
  std::atomic<bool> stats_stop{false};
  std::thread stats_thread([&] {
    pthread_setname_np(pthread_self(), "ehp-stats");
    if (drop) drop_thread_caps();
    uint64_t next_stats = mono_ns() + 2'000'000'000ull;
    while (!stats_stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (cfg.quiet || mono_ns() < next_stats) continue;
      auto cs = cap->stats();
      auto hs = corr.stats();
      auto ss = sink->stats();
      if (stats_stop.load()) break;
      fprintf(stderr,
              "ecapture-hp: %llu pkts %s, keys %llu, held flows %llu, written %llu pkts; drops: ring=%llu queue=%llu graph=%llu writer=%llu\n",
              (unsigned long long)pkts_in.load(), human_bytes(bytes_in.load()).c_str(),
              (unsigned long long)keys_in.load(), (unsigned long long)hs.holdback.flows_held_now,
              (unsigned long long)ss.packets, (unsigned long long)cs.reserve_fail,
              (unsigned long long)cs.queue_full, (unsigned long long)hs.holdback.released_overflow,
              (unsigned long long)ss.write_failures);
      next_stats = mono_ns() + 2'000'000'000ull;
    }
  });
  uint64_t start = mono_ns();
  while (true) {
    if (sig.wait(100)) break;
    if (autostop.load()) break;
    if (cfg.stop_duration_s && mono_ns() - start >= cfg.stop_duration_s * 1'000'000'000ull) break;
  }
  stats_stop = true;

  // Shutdown order: stop producing, drain the rings, drain keys, release held flows, write ISBs.
  cap->detach();
  // Draining can take long on a slow or stuck output. The host is already restored (filters and
  // our clsact are gone; uprobe links go with the process), so a second signal may end it now:
  // the file keeps what the writer flushed (complete blocks), as after SIGKILL.
  std::atomic<bool> drained_all{false};
  std::thread second_signal([&] {
    pthread_setname_np(pthread_self(), "ehp-drainwait");
    if (drop) drop_thread_caps();
    const uint64_t hint_at = mono_ns() + 2'000'000'000ull;
    bool hinted = false;
    const unsigned first = sig.count();
    while (!drained_all.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (sig.count() == first) {
        if (!hinted && mono_ns() >= hint_at && !drained_all.load()) {
          fprintf(stderr, "ecapture-hp: still writing buffered packets; signal again to exit without them\n");
          hinted = true;
        }
        continue;
      }
      fprintf(stderr, "ecapture-hp: second signal: exiting without writing the rest (%s keeps what was flushed)\n",
              cfg.pcapfile == "-" ? "the output" : cfg.pcapfile.c_str());
      _exit(130);
    }
  });
  g_stop = true;
  keys_thread.join();
  cap->stop();
  pump.join();
  stats_thread.join();  // after the pump: a stalled output holds it in corr.stats() till then
  corr.drain();
  auto cs = cap->stats();
  for (uint32_t id = 0; id < cap->interfaces().size(); ++id)
    sink->set_interface_drops(id, id == 0 ? cs.reserve_fail : 0, 0);
  auto hs = corr.stats();
  std::string close_err;
  bool ok = sink->close(&close_err);
  drained_all = true;
  second_signal.join();
  auto ss = sink->stats();
  // One line per interface, as dumpcap prints it: that interface's packets; the BPF ring is
  // shared by all interfaces, so its drops are reported once, on the first (like the ISBs).
  for (uint32_t id = 0; id < cap->interfaces().size(); ++id)
    fprintf(stderr, "Packets received/dropped on interface '%s': %llu/%llu\n",
            cap->interfaces()[id].name.c_str(), (unsigned long long)sink->interface_packets(id),
            (unsigned long long)(id == 0 ? cs.reserve_fail : 0));
  // The other places a packet or a session's decryptability can be lost, when any happened.
  if (cs.load_fail || cs.no_ring || cs.truncated || ss.sessions_not_carried)
    fprintf(stderr,
            "ecapture-hp: also lost: %llu frames the kernel could not copy, %llu with no ring, "
            "%llu saved shorter than on the wire (-s or 64 KiB cap); %llu open TLS sessions not carried into rotated files\n",
            (unsigned long long)cs.load_fail, (unsigned long long)cs.no_ring,
            (unsigned long long)cs.truncated, (unsigned long long)ss.sessions_not_carried);
  // After a write error the writer cut the file back to its last complete block: the count is
  // what was handed to it, not what the file holds, and the summary must not claim otherwise.
  const bool write_error = !ok || sink->failed();
  fprintf(stderr,
          "ecapture-hp: %llu packets %s, %llu DSBs, %llu keys; held flows released with keys %llu, "
          "on timeout %llu, on overflow %llu; null keys %llu, duplicate keys %llu\n",
          (unsigned long long)ss.packets,
          write_error ? "encoded before the write error (the file keeps them up to its last complete block)"
                      : "written",
          (unsigned long long)ss.dsbs, (unsigned long long)keys_in.load(),
          (unsigned long long)hs.holdback.released_keyed, (unsigned long long)hs.holdback.released_timeout,
          (unsigned long long)hs.holdback.released_overflow, (unsigned long long)hs.null_keys,
          (unsigned long long)hs.duplicates);
  if (!ok) return fail(close_err);
  if (sink->failed()) return fail(sink->error());
  return 0;
}

}  // namespace ehp
