// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/session.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "abi/tls_abi.h"
#include "base/clock.h"
#include "filter/filter.h"
#include "output/create.h"
#include "pipeline/keylog_file.h"
#include "tls/keys.h"

namespace ehp::pipeline {
namespace {

int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 1;
}

// "2026-12-06 01:40:00 UTC" for the interface-gone messages.
std::string format_wall_time(uint64_t ns) {
  const time_t t = time_t(ns / 1'000'000'000ull);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[40];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string iface_description(const capture::Interface& i) {
  return std::string("ecapture-hp TC ") + (i.loopback ? "egress" : "ingress+egress") + " on " + i.name;
}

// Interface ids one capture may use (each interface that comes back takes a new one, and every
// rotated file repeats every IDB): beyond it, further interfaces are not captured (said once).
constexpr size_t kMaxInterfaceIds = 1024;
// Interfaces added per 100 ms check, and how often -i any looks for new devices.
constexpr size_t kMaxAddsPerCheck = 8;
constexpr uint64_t kAnyScanIntervalNs = 500'000'000ull;

// A filter whose compilation takes longer than this is refused (filter/cbpf.h says why).
constexpr unsigned kFilterCompileMs = 3000;
constexpr uint64_t kStatsIntervalNs = 2'000'000'000ull;

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30)) snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20)) snprintf(buf, sizeof buf, "%.1f MiB", double(b) / double(1ull << 20));
  else if (b >= 1024) snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  else snprintf(buf, sizeof buf, "%llu B", (unsigned long long)b);
  return buf;
}

// The filter, compiled for the interfaces' one link type and translated to eBPF.
bool compile_filter(const Config& cfg, std::vector<struct bpf_insn>* body, std::string* err) {
  if (cfg.filter.empty()) return true;
  uint16_t linktype = 0;
  for (auto& name : cfg.ifaces) {
    const uint16_t lt = capture::interface_linktype(name);
    if (linktype && lt != linktype) {
      *err = "interfaces with different link types (Ethernet and raw IP) need separate runs";
      return false;
    }
    linktype = lt;
  }
  auto cbpf = filter::compile_cbpf_bounded(cfg.filter, linktype, cfg.snaplen, kFilterCompileMs, err);
  if (!cbpf) return false;
  auto ebpf = filter::translate(*cbpf, err);
  if (!ebpf) return false;
  *body = std::move(*ebpf);
  return true;
}

}  // namespace

std::unique_ptr<tlsprobe::TlsProbe> open_probe(const Config& cfg, bool plaintext, std::string* err) {
  tlsprobe::Options to;
  to.libssl_path = cfg.libssl;
  to.rcu_expedite = cfg.rcu_expedite;
  to.pid = cfg.pid;
  to.uid = cfg.uid;
  to.plaintext = plaintext;
  to.corrupt_tls13_secret_offset = cfg.test_corrupt_tls13_secret_offset;
  // Binaries traced or refused after the start (late looks, on the key reader's thread).
  to.on_late = [quiet = cfg.quiet](const std::string& line) {
    if (quiet && line.rfind("tracing ", 0) == 0) return;
    fprintf(stderr, "ecapture-hp: %s\n", line.c_str());
  };
  if (to.corrupt_tls13_secret_offset)  // never silently on: said even with -q
    fprintf(stderr,
            "ecapture-hp: TEST HOOK: EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=%u: every TLS 1.3 handshake secret is "
            "taken %u bytes off, its keys are wrong on purpose\n",
            to.corrupt_tls13_secret_offset, to.corrupt_tls13_secret_offset);
  std::vector<std::string> skipped;
  auto probe = tlsprobe::TlsProbe::open(to, err, &skipped);
  for (auto& s : skipped) fprintf(stderr, "ecapture-hp: %s\n", s.c_str());
  if (!probe && std::find(skipped.begin(), skipped.end(), *err) != skipped.end()) err->clear();
  return probe;
}

// Sessions a library's secret logger began but never finished (expired or crowded out): their
// keys are not written. Said only when it happened.
void report_logged_losses(const tlsprobe::TlsProbe& probe) {
  const auto st = probe.stats();
  if (st.logged_incomplete)
    fprintf(stderr,
            "ecapture-hp: also lost: %llu TLS sessions whose secrets a library logged only in part (no keys written for them)\n",
            (unsigned long long)st.logged_incomplete);
  if (st.read_faults)
    fprintf(stderr,
            "ecapture-hp: also lost: %llu reads of a traced process's memory that failed (secrets whose sessions "
            "may not decrypt, or -m text data)\n",
            (unsigned long long)st.read_faults);
  if (st.late_looks_skipped || st.exec_drops)
    fprintf(stderr,
            "ecapture-hp: also not looked at: %llu looks at processes started after the start (over the rate cap or "
            "queue), %llu exec records lost in the kernel (binaries they alone would have shown are not traced)\n",
            (unsigned long long)st.late_looks_skipped, (unsigned long long)st.exec_drops);
}

// ---- -m pcap -----------------------------------------------------------------------------------

std::unique_ptr<CaptureSession> CaptureSession::open(const Config& cfg, StopSignals& sig, const DropUser* drop,
                                                     std::string* err) {
  std::unique_ptr<CaptureSession> s(new CaptureSession(cfg, sig));
  std::vector<struct bpf_insn> filter_body;
  if (!compile_filter(cfg, &filter_body, err)) return nullptr;

  capture::Options co;
  co.ifaces = cfg.ifaces;
  co.cpus = cfg.cpus;
  co.snaplen = cfg.snaplen;
  co.ring_bytes_per_cpu = cfg.ring_bytes_per_cpu;
  co.pid = cfg.pid;
  co.uid = cfg.uid;
  if (!filter_body.empty())
    co.before_load = [&](struct bpf_object*, struct bpf_program* in, struct bpf_program* out, std::string* e) {
      return filter::install(in, filter_body, e) && filter::install(out, filter_body, e);
    };
  s->cap_ = capture::Capture::open(co, err);
  if (!s->cap_) return nullptr;

  // Packets are worth capturing even when no TLS library can be traced: say so, go on.
  std::string perr;
  s->probe_ = open_probe(cfg, false, &perr);
  if (!s->probe_) {
    if (!perr.empty()) fprintf(stderr, "ecapture-hp: %s\n", perr.c_str());
    fprintf(stderr, "ecapture-hp: warning: no TLS library is traced; packets are captured, TLS sessions will not decrypt\n");
  }

  std::vector<SinkIface> sifaces;
  for (auto& i : s->cap_->interfaces()) {
    sifaces.push_back({i.name, iface_description(i), i.linktype});
    s->ifs_.push_back({i.name, i.ifindex, i.linktype, false});
    s->ifindex_seen_.insert(i.ifindex);
  }
  if (cfg.iface_any && cfg.reattach) {
    // The devices -i any found at start: the raw-IP ones it left out stay out (said once, by
    // main); the ones that were down join when they come up.
    if (struct if_nameindex* ni = ::if_nameindex()) {
      for (auto* p = ni; p->if_index; p++) {
        s->ifindex_at_start_.insert(int(p->if_index));
        if (capture::interface_linktype(p->if_name) != 1) s->ifindex_seen_.insert(int(p->if_index));
      }
      if_freenameindex(ni);
    }
  }
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
  s->sink_ = PcapngSink::open(so, sifaces, err);
  if (!s->sink_) return nullptr;
  // --keylogfile with -m pcap: the keys also go to a key log file (for tools that take one).
  if (cfg.keylog_with_pcap) {
    s->keylog_ = KeylogFile::open(cfg.keylogfile, err);
    if (!s->keylog_) return nullptr;
  }

  correlate::HoldBackConfig hc;
  hc.hold_ns = cfg.hold_ms * 1'000'000ull;
  // Only sessions whose keys can come are held (pipeline/key_policy.h).
  TracedProcessPolicy::Options po;
  if (s->probe_) po.files = s->probe_->traced_files();
  po.probe = s->probe_.get();
  po.pid = cfg.pid;
  po.uid = cfg.uid;
  po.attr_map_fd = s->cap_->attribution_map_fd();
  s->policy_ = std::make_unique<TracedProcessPolicy>(po);
  s->corr_ = std::make_unique<correlate::Correlator>(hc, *s->sink_, 1 << 16, 0, s->policy_.get());
  if (s->probe_) {
    // Every key is proven on its session's packets (tls/verify.h); a binary whose keys fail is
    // named at once, whatever -q says: its sessions will not decrypt.
    s->sources_ = s->probe_->sources();
    s->corr_->enable_key_check([p = s.get()](uint32_t source, std::string_view why) {
      fprintf(stderr,
              "ecapture-hp: KEY CHECK FAILED for %s: %.*s (the keys it gave do not fit its captured session: "
              "its offsets or hooks are wrong on this host, its sessions will not decrypt)\n",
              p->source_name(source).c_str(), int(why.size()), why.data());
    });
  }

  std::vector<std::string> lines;
  capture::remove_leftovers(s->cap_->interfaces(), &lines);
  for (auto& l : lines) fprintf(stderr, "ecapture-hp: %s\n", l.c_str());
  {
    // A signal arriving now waits for the attach to finish, then takes the clean path.
    auto g = sig.attach_lock();
    if (!s->cap_->attach(err)) return nullptr;
    sig.started();
  }
  s->cap_->start();
  if (drop) {
    // After attach, as tcpdump does. Keep CAP_NET_ADMIN in this thread: detach() at exit
    // removes the TC filters (and our clsact) over netlink. ~Capture detaches on failure.
    for (const auto& f : s->sink_->files()) chown_output(f, *drop);
    if (s->keylog_ && fchown(s->keylog_->fd(), drop->uid, drop->gid) != 0)
      fprintf(stderr, "ecapture-hp: warning: chown %s: %s\n", cfg.keylogfile.c_str(), strerror(errno));
    if (!drop_privileges(*drop, true, err)) return nullptr;
    s->drop_caps_ = true;
  }
  if (!cfg.quiet) {
    if (s->probe_)
      for (auto& l : s->probe_->libraries()) fprintf(stderr, "ecapture-hp: tracing %s\n", l.c_str());
    fprintf(stderr, "ecapture-hp: capturing on %zu interface(s) to %s, press Ctrl-C to stop\n", cfg.ifaces.size(),
            cfg.pcapfile == "-" ? "standard output" : cfg.pcapfile.c_str());
  }

  auto* corr = s->corr_.get();
  auto* keylog = s->keylog_.get();
  s->keys_ = std::make_unique<KeyReader>(
      s->probe_.get(),
      [corr, keylog](const tls::Secrets& k, const tlsprobe::ProcInfo&) {
        corr->push_secrets(k);
        if (keylog) keylog->add(k);
      },
      KeyReader::OnData{}, s->drop_caps_);
  s->pump_ = std::make_unique<Pump>(*s->cap_, *s->corr_, *s->sink_,
                                    Pump::Limits{cfg.stop_packets, cfg.stop_filesize_kb * 1000}, s->drop_caps_);
  s->stats_ = std::make_unique<StatsReporter>([p = s.get()] { return p->stats_line(); }, kStatsIntervalNs,
                                              s->drop_caps_);
  s->keys_->start();
  s->pump_->start();
  if (!cfg.quiet) s->stats_->start();
  return s;
}

CaptureSession::~CaptureSession() = default;

std::string CaptureSession::source_name(uint32_t source) const {
  if (source >= 1 && source <= sources_.size()) return sources_[source - 1];
  if (probe_ && source >= 1) {
    // A binary traced after the start (late looks): not in the copy taken at the start.
    auto all = probe_->sources();
    if (source <= all.size()) return all[source - 1];
  }
  return "an unknown TLS library";
}

namespace {
std::string key_check_text(const std::string& name, const correlate::KeyCheckCounts& c) {
  char buf[160];
  int n = snprintf(buf, sizeof buf, ": %llu verified, %llu failed, %llu unverifiable", (unsigned long long)c.verified,
                   (unsigned long long)c.failed, (unsigned long long)c.unverifiable);
  if (c.not_captured && n > 0 && size_t(n) < sizeof buf)
    snprintf(buf + n, sizeof buf - size_t(n), "; %llu keyed sessions not on the captured interfaces",
             (unsigned long long)c.not_captured);
  return "key check " + name + buf;
}
}  // namespace

std::string CaptureSession::stats_line() {
  auto cs = cap_->stats();
  auto hs = corr_->stats();
  auto ss = sink_->stats();
  char buf[512];
  snprintf(buf, sizeof buf,
           "%llu pkts %s, keys %llu, held flows %llu, written %llu pkts; drops: ring=%llu queue=%llu graph=%llu writer=%llu",
           (unsigned long long)pump_->packets(), human_bytes(pump_->bytes()).c_str(),
           (unsigned long long)keys_->secrets(), (unsigned long long)hs.holdback.flows_held_now,
           (unsigned long long)ss.packets, (unsigned long long)cs.reserve_fail, (unsigned long long)cs.queue_full,
           (unsigned long long)hs.holdback.released_overflow, (unsigned long long)ss.write_failures);
  std::string line = buf;
  for (const auto& c : hs.key_checks) line += "; " + key_check_text(source_name(c.source), c);
  {
    std::lock_guard g(waiting_mu_);
    if (!waiting_.empty()) line += "; " + waiting_;
  }
  return line;
}

void CaptureSession::run() {
  const uint64_t start = mono_ns();
  const uint64_t duration_ns = cfg_.stop_duration_s * 1'000'000'000ull;
  while (!sig_.wait(100)) {
    if (pump_->autostop()) break;
    if (keylog_ && keylog_->failed()) break;
    if (check_interfaces()) break;
    if (duration_ns && mono_ns() - start >= duration_ns) break;
  }
  // Stopped by a signal: that was the first one (the count only grows); by -a/-c: none.
  signals_at_stop_ = sig_.requested() ? 1 : 0;
}

bool CaptureSession::check_interfaces() {
  // 1. Interfaces deleted since the last check.
  size_t live = 0;
  for (const auto& e : ifs_) live += !e.gone;
  for (uint32_t id = 0; id < ifs_.size(); ++id) {
    auto& e = ifs_[id];
    if (e.gone) continue;
    char name[IF_NAMESIZE];
    if (if_indextoname(unsigned(e.ifindex), name) || errno != ENXIO) continue;
    // Its TC filters went with it. Say it now, on stderr and in the file (an ISB with a comment).
    e.gone = true;
    --live;
    cap_->forget_interface(e.ifindex);
    const std::string when = format_wall_time(wall_clock_ns());
    fprintf(stderr, "ecapture-hp: interface '%s' is gone (deleted at %s); %llu packets were written for it%s%s\n",
            e.name.c_str(), when.c_str(), (unsigned long long)sink_->interface_packets(id),
            live ? "; the other interfaces are still captured" : "",
            cfg_.reattach ? "; it is captured again if it comes back" : "");
    sink_->interface_gone(id, "interface " + e.name + " was deleted at " + when + "; its capture ends here");
  }
  // 2. Attach again: an interface of a deleted one's name exists again (a new ifindex).
  if (cfg_.reattach) {
    std::set<std::string> names;
    for (const auto& e : ifs_)
      if (e.gone) names.insert(e.name);
    for (const auto& e : ifs_)
      if (!e.gone) names.erase(e.name);
    size_t added = 0;
    for (const auto& n : names) {
      const unsigned ix = if_nametoindex(n.c_str());
      if (ix == 0 || ifindex_seen_.count(int(ix)) || added >= kMaxAddsPerCheck) continue;
      add_interface(n, Added::Back);
      ++added;
    }
    // 3. -i any: devices that appeared since the start (or were down then and are up now).
    const uint64_t now = mono_ns();
    if (cfg_.iface_any && now >= next_scan_ns_) {
      next_scan_ns_ = now + kAnyScanIntervalNs;
      if (struct if_nameindex* ni = ::if_nameindex()) {
        for (auto* p = ni; p->if_index && added < kMaxAddsPerCheck; p++) {
          const int ix = int(p->if_index);
          if (ifindex_seen_.count(ix)) continue;
          capture::Interface i;
          std::string err;
          if (!capture::resolve_interface(p->if_name, &i, &err)) continue;  // gone meanwhile
          if (i.linktype != 1) {
            ifindex_seen_.insert(ix);
            fprintf(stderr, "ecapture-hp: -i any: leaving out new interface %s (raw IP link type; give it its own run: -i %s)\n",
                    p->if_name, p->if_name);
            continue;
          }
          if (!i.up && ifindex_at_start_.count(ix)) continue;  // left out at start as down: joins when up
          add_interface(p->if_name, Added::New);
          ++added;
        }
        if_freenameindex(ni);
      }
    }
  }
  // 4. Every interface gone: stop (--no-reattach), or wait for one to come (back).
  live = 0;
  for (const auto& e : ifs_) live += !e.gone;
  if (live) {
    if (waiting_said_) {
      std::lock_guard g(waiting_mu_);
      waiting_.clear();
    }
    waiting_said_ = false;
    return false;
  }
  if (!cfg_.reattach) {
    all_gone_ = true;
    return true;
  }
  if (!waiting_said_) {
    std::string note;
    if (cfg_.iface_any) {
      note = "every interface is gone: waiting for new ones (-i any)";
    } else {
      std::set<std::string> names;
      for (const auto& e : ifs_) names.insert(e.name);
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "'" : ", '") + n + "'";
      note = "every captured interface is gone: waiting for " + list + " to come back";
    }
    fprintf(stderr, "ecapture-hp: %s (--no-reattach stops instead)\n", note.c_str());
    std::lock_guard g(waiting_mu_);
    waiting_ = note;
    waiting_said_ = true;
  }
  return false;
}

// Ordering (packets of a new interface id never reach the writer before its IDB): (1) the IDB
// goes into the sink's stream now, under the sink's lock; (2) the pump learns ifindex -> id;
// (3) then the ifaces map entry and the TC filters. No packet of this device exists before (3),
// so the pump maps each one after (2) (it checks after taking a batch), and the correlator can
// hand it to the sink, however long it is held back and from whichever thread, only after (1).
// A rotation in between repeats every IDB known by then, this one included.
void CaptureSession::add_interface(const std::string& name, Added why) {
  capture::Interface i;
  std::string err;
  if (!capture::resolve_interface(name, &i, &err)) return;  // gone again meanwhile: next check
  if (ifindex_seen_.count(i.ifindex)) return;
  ifindex_seen_.insert(i.ifindex);
  const IfEntry* old = nullptr;
  for (const auto& e : ifs_)
    if (e.name == name) old = &e;
  if (old && old->linktype != i.linktype) {
    fprintf(stderr, "ecapture-hp: interface '%s' is back (ifindex %d) with another link type (%s): not captured "
            "(a capture has one link type; give it its own run)\n",
            name.c_str(), i.ifindex, i.linktype == 1 ? "Ethernet" : "raw IP");
    return;
  }
  if (ifs_.size() >= kMaxInterfaceIds) {
    if (!limit_said_)
      fprintf(stderr, "ecapture-hp: not capturing interface '%s' (and any later one): this capture already has "
              "%zu interface ids; restart it to capture new interfaces\n", name.c_str(), kMaxInterfaceIds);
    limit_said_ = true;
    return;
  }
  const uint32_t id = sink_->add_interface({i.name, iface_description(i), i.linktype});  // (1)
  pump_->add_interface(i.ifindex, id, i.linktype);                                        // (2)
  ifs_.push_back({i.name, i.ifindex, i.linktype, false});
  if (!cap_->add_interface(i, &err)) {                                                    // (3)
    ifs_.back().gone = true;
    fprintf(stderr, "ecapture-hp: interface '%s' %s (ifindex %d) but cannot be captured: %s\n", name.c_str(),
            why == Added::Back ? "is back" : "appeared", i.ifindex, err.c_str());
    sink_->interface_gone(id, "capturing interface " + i.name + " failed: " + err);
    return;
  }
  if (why == Added::Back || old)
    fprintf(stderr, "ecapture-hp: interface '%s' is back (ifindex %d): capturing it again as interface #%u\n",
            name.c_str(), i.ifindex, id);
  else
    fprintf(stderr, "ecapture-hp: -i any: new interface '%s' (ifindex %d): capturing it as interface #%u\n",
            name.c_str(), i.ifindex, id);
}

int CaptureSession::shutdown() {
  // The order: stop producing (TC filters off), drain the rings, drain the keys, release held
  // flows, ISBs, close.
  stats_->request_stop();
  cap_->detach();
  bool ok = false;
  std::string close_err;
  {
    DrainGuard guard(sig_, signals_at_stop_, cfg_.pcapfile == "-" ? "the output" : cfg_.pcapfile, drop_caps_);
    pump_->stop_when_drained();
    keys_->stop();
    if (probe_) probe_->begin_detach();  // the uprobes go while the rest drains (~0.1 s each)
    cap_->stop();
    pump_->join();
    stats_->join();  // after the pump: a stalled output holds it in corr.stats() till then
    corr_->drain();
    auto cs = cap_->stats();
    for (uint32_t id = 0; id < ifs_.size(); ++id)
      sink_->set_interface_drops(id, id == 0 ? cs.reserve_fail : 0, 0);
    ok = sink_->close(&close_err);
  }
  const bool write_error = !ok || sink_->failed();
  std::string kl_err;
  const bool kl_closed = !keylog_ || keylog_->close(&kl_err);
  print_summary(write_error);
  if (keylog_)
    fprintf(stderr, "ecapture-hp: %llu sessions' keys %s %s\n", (unsigned long long)keylog_->sessions(),
            keylog_->failed() ? "written before the write error to" : "written to", cfg_.keylogfile.c_str());
  if (!ok) return fail(close_err);
  if (sink_->failed()) return fail(sink_->error());
  if (keylog_ && keylog_->failed()) return 1;  // said at once, when it happened
  if (all_gone_) return fail("every captured interface is gone; capture stopped");
  if (!kl_closed) return fail(kl_err);
  return 0;
}

void CaptureSession::print_summary(bool write_error) {
  auto cs = cap_->stats();
  auto hs = corr_->stats();
  auto ss = sink_->stats();
  // One line per interface, as dumpcap prints it: that interface's packets; the BPF ring is
  // shared by all interfaces, so its drops are reported once, on the first (like the ISBs).
  // An interface captured again (a new id) is told apart by its id.
  for (uint32_t id = 0; id < ifs_.size(); ++id)
    fprintf(stderr, "Packets received/dropped on interface '%s'%s: %llu/%llu\n", ifs_[id].name.c_str(),
            std::count_if(ifs_.begin(), ifs_.end(), [&](const IfEntry& e) { return e.name == ifs_[id].name; }) > 1
                ? (" (#" + std::to_string(id) + ")").c_str()
                : "",
            (unsigned long long)sink_->interface_packets(id), (unsigned long long)(id == 0 ? cs.reserve_fail : 0));
  // The other places a packet or a session's decryptability can be lost, when any happened.
  if (cs.load_fail || cs.no_ring || cs.truncated || ss.sessions_not_carried)
    fprintf(stderr,
            "ecapture-hp: also lost: %llu frames the kernel could not copy, %llu with no ring, "
            "%llu saved shorter than on the wire (-s or 64 KiB cap); %llu open TLS sessions not carried into rotated files\n",
            (unsigned long long)cs.load_fail, (unsigned long long)cs.no_ring, (unsigned long long)cs.truncated,
            (unsigned long long)ss.sessions_not_carried);
  // After a write error the writer cut the file back to its last complete block: the count is
  // what was handed to it, not what the file holds, and the summary must not claim otherwise.
  fprintf(stderr,
          "ecapture-hp: %llu packets %s, %llu DSBs, %llu keys; held flows released with keys %llu, "
          "on timeout %llu, on overflow %llu; null keys %llu, duplicate keys %llu\n",
          (unsigned long long)ss.packets,
          write_error ? "encoded before the write error (the file keeps them up to its last complete block)" : "written",
          (unsigned long long)ss.dsbs, (unsigned long long)keys_->secrets(),
          (unsigned long long)hs.holdback.released_keyed, (unsigned long long)hs.holdback.released_timeout,
          (unsigned long long)hs.holdback.released_overflow, (unsigned long long)hs.null_keys,
          (unsigned long long)hs.duplicates);
  // What was held and what was not (issue 15): sessions no key could come for went straight
  // to the file; keys that came anyway for one of those mean a session that will not decrypt.
  fprintf(stderr,
          "ecapture-hp: %llu TLS sessions held for keys, %llu not held (no traced process at either end); "
          "time order: %llu packets written behind a later one, largest step back %.3f s\n",
          (unsigned long long)hs.holdback.flows_held, (unsigned long long)hs.holdback.not_keyable,
          (unsigned long long)hs.holdback.packets_out_of_order, hs.holdback.max_step_back_ns / 1e9);
  if (hs.holdback.keyed_not_held)
    fprintf(stderr,
            "ecapture-hp: also lost: %llu TLS sessions got keys but were not held (their DSB follows their "
            "ClientHello: they will not decrypt)\n",
            (unsigned long long)hs.holdback.keyed_not_held);
  if (probe_) report_logged_losses(*probe_);
  // The key check, per traced binary that gave keys (docs/architecture.md: what is proven).
  for (const auto& c : hs.key_checks)
    fprintf(stderr, "ecapture-hp: %s\n", key_check_text(source_name(c.source), c).c_str());
}

// ---- -m keylog / -m text -----------------------------------------------------------------------

namespace {

void print_plaintext(const tlsprobe::PlainData& d) {
  char tuple[192] = "";
  if (d.tuple) {
    char a[64], b[64];
    const int af = d.tuple->ip_version == 6 ? AF_INET6 : AF_INET;
    inet_ntop(af, d.tuple->saddr.data(), a, sizeof a);
    inet_ntop(af, d.tuple->daddr.data(), b, sizeof b);
    snprintf(tuple, sizeof tuple, " %s:%u -> %s:%u", a, d.tuple->sport, b, d.tuple->dport);
  }
  printf("[%s] %s len=%zu%s\n", d.is_write ? "SSL_write" : "SSL_read", format_process(d.proc.info).c_str(),
         d.data.size(), tuple);
  fwrite(d.data.data(), 1, d.data.size(), stdout);
  printf("\n");
  fflush(stdout);
}

}  // namespace

int run_keylog_or_text(const Config& cfg, StopSignals& sig, const DropUser* drop) {
  std::string err;
  auto probe = open_probe(cfg, cfg.mode == Mode::Text, &err);
  if (!probe) return err.empty() ? 1 : fail(err);
  std::unique_ptr<KeylogFile> keylog;
  if (cfg.mode == Mode::Keylog) {
    keylog = KeylogFile::open(cfg.keylogfile, &err);
    if (!keylog) return fail(err);
  }
  {
    auto g = sig.attach_lock();
    sig.started();
  }
  if (drop) {
    // Uprobe links and the ring are plain fds: nothing at teardown needs a capability.
    if (keylog && fchown(keylog->fd(), drop->uid, drop->gid) != 0)
      fprintf(stderr, "ecapture-hp: warning: chown %s: %s\n", cfg.keylogfile.c_str(), strerror(errno));
    if (!drop_privileges(*drop, false, &err)) return fail(err);
  }
  for (auto& l : probe->libraries()) fprintf(stderr, "ecapture-hp: tracing %s\n", l.c_str());
  fprintf(stderr, "ecapture-hp: capturing, press Ctrl-C to stop\n");

  // Runs on the key reader's thread only.
  tls::ClientRandomDedup dedup(1 << 16);
  std::atomic<uint64_t> keys{0}, null_keys{0}, dups{0};
  auto on_secrets = [&](const tls::Secrets& s, const tlsprobe::ProcInfo& p) {
    if (keylog) {
      switch (keylog->add(s)) {
        case KeylogFile::Result::Written: keys++; break;
        case KeylogFile::Result::Null: null_keys++; break;
        case KeylogFile::Result::Duplicate: dups++; break;
        case KeylogFile::Result::Failed: break;
      }
      return;
    }
    const std::string lines = tls::keylog_lines(s);
    if (lines.empty()) return void(null_keys++);
    if (!dedup.insert(s.client_random)) return void(dups++);
    keys++;
    printf("[keys] pid=%u comm=%.16s\n%s", p.info.pid, p.info.comm, lines.c_str());
    fflush(stdout);
  };
  KeyReader reader(probe.get(), on_secrets, cfg.mode == Mode::Text ? KeyReader::OnData(print_plaintext) : nullptr,
                   false);
  StatsReporter stats(
      [&] {
        char b[160];
        snprintf(b, sizeof b, "keys %llu null %llu dup %llu ring-drops %llu", (unsigned long long)keys.load(),
                 (unsigned long long)null_keys.load(), (unsigned long long)dups.load(),
                 (unsigned long long)probe->stats().ring_drops);
        return std::string(b);
      },
      kStatsIntervalNs, false);
  reader.start();
  if (!cfg.quiet && cfg.mode == Mode::Keylog) stats.start();
  const uint64_t deadline = cfg.stop_duration_s ? mono_ns() + cfg.stop_duration_s * 1'000'000'000ull : 0;
  while (!sig.wait(100) && !(deadline && mono_ns() >= deadline) && !(keylog && keylog->failed())) {
  }
  stats.request_stop();
  reader.stop();
  stats.join();
  std::string close_err;
  const bool closed = !keylog || keylog->close(&close_err);
  const bool failed = keylog && keylog->failed();
  fprintf(stderr, "ecapture-hp: %llu sessions' keys %s, %llu null keys rejected, %llu duplicates, %llu ring drops\n",
          (unsigned long long)keys.load(), failed ? "written before the write error" : "written",
          (unsigned long long)null_keys.load(), (unsigned long long)dups.load(),
          (unsigned long long)probe->stats().ring_drops);
  report_logged_losses(*probe);
  if (cfg.mode == Mode::Text) {
    const auto st = probe->stats();
    if (st.data_truncated)
      fprintf(stderr, "ecapture-hp: -m text: %llu reads or writes shown cut to their first %u bytes (the call moved more)\n",
              (unsigned long long)st.data_truncated, unsigned(EHP_TLS_MAX_DATA_BYTES));
    if (st.io_unseen)
      fprintf(stderr,
              "ecapture-hp: -m text: also not shown: %llu reads or writes whose call began unseen (before its probes "
              "were attached, or its entry crowded out of the 16384-call map)\n",
              (unsigned long long)st.io_unseen);
  }
  if (failed) return 1;  // said at once, when it happened
  if (!closed) return fail(close_err);
  return 0;
}

}  // namespace ehp::pipeline
