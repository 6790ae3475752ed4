// SPDX-License-Identifier: BSD-2-Clause
// TlsProbe: open -> discover -> each binary to the stacks (stack.h) -> group by layout -> set
// rodata -> load -> attach -> poll -> one cleanup path (the destructor).
#include "tlsprobe/tlsprobe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "abi/tls_abi.h"
#include "base/bpf_links.h"
#include "base/clock.h"
#include "openssl.skel.h"
#include "tlsprobe/expedite.h"
#include "tlsprobe/libssl.h"
#include "tlsprobe/stack.h"
#include "tls/assembler.h"

namespace ehp::tlsprobe {
namespace {

struct ArrayHash {
  size_t operator()(const std::array<uint8_t, 32>& r) const noexcept {
    uint64_t h;
    memcpy(&h, r.data(), sizeof h);
    return size_t(h);
  }
};

// Binaries whose Layout is equal share one BPF object (bpf/openssl.bpf.c).
struct Group {
  Layout layout;
  struct Lib {
    std::string path, desc;
    std::vector<Hook> hooks;
    UntrustedFile file;     // attached through file.fd_path()
    bool attached = false;  // every hook attached
    uint32_t source = 0;    // id in sources(), the hooks' BPF cookie
  };
  std::deque<Lib> libs;  // a deque: late looks append while references are held
  struct openssl* skel = nullptr;
  std::vector<bpf_link*> links;
};

bpf_program* program(struct openssl* skel, Prog p) {
  auto& g = skel->progs;
  switch (p) {
    case Prog::Handshake: return g.ehp_handshake;
    case Prog::HandshakeRet: return g.ehp_handshake_ret;
    case Prog::GetError: return g.ehp_ssl_get_error;
    case Prog::Read: return g.ehp_ssl_read;
    case Prog::ReadRet: return g.ehp_ssl_read_ret;
    case Prog::ReadEx: return g.ehp_ssl_read_ex;
    case Prog::ReadExRet: return g.ehp_ssl_read_ex_ret;
    case Prog::Write: return g.ehp_ssl_write;
    case Prog::WriteRet: return g.ehp_ssl_write_ret;
    case Prog::WriteEx: return g.ehp_ssl_write_ex;
    case Prog::WriteExRet: return g.ehp_ssl_write_ex_ret;
    case Prog::LogSecret: return g.ehp_ssl_log_secret;
    case Prog::GoKeyLog: return g.ehp_go_write_key_log;
    case Prog::GoWrite: return g.ehp_go_write;
    case Prog::GoRead: return g.ehp_go_read;
    case Prog::GoReadRet: return g.ehp_go_read_ret;
  }
  return nullptr;
}

}  // namespace

struct TlsProbe::Impl {
  Options opt;
  // groups (and their libs), skipped and sources_ grow on the polling thread after the start
  // (late looks) while libraries(), sources(), skipped(), traced_files() and stats() read them
  // from other threads: every change and every read of them from another thread holds `mu`.
  // The polling thread reads them without it (it is the only writer). Deques: references to a
  // group or a lib stay valid as others are added.
  mutable std::mutex mu;
  std::deque<Group> groups;
  std::vector<std::string> skipped;
  std::vector<std::string> sources_;  // by source id - 1
  std::atomic<uint64_t> files_gen{0};
  // Late looks (polling thread only, but the counters).
  std::atomic<bool> late{false};
  bpf_link* exec_link = nullptr;
  struct Look {
    uint32_t pid;
    uint64_t exec_ns;  // bpf_ktime_get_ns of the exec
    std::string comm;
  };
  std::multimap<uint64_t, Look> looks;  // by when due (mono ns)
  static constexpr size_t kMaxLooksQueued = 16384;
  static constexpr uint64_t kLookDelaysNs[] = {0, 5'000'000, 150'000'000, 1'500'000'000};
  static constexpr uint64_t kPendingNs = 2'000'000'000;  // a found process's sessions are held this long
  static constexpr uint64_t kMaxLooksPerSec = 1000;
  uint64_t look_window_ns = 0, looks_in_window = 0;
  ProcessScan late_scan;
  // Binaries already decided (traced or refused) by the inode read: not inspected again. Bounded.
  std::set<std::pair<uint64_t, uint64_t>> decided_files;
  std::atomic<uint64_t> execs{0}, late_looks{0}, late_looks_skipped{0}, late_traced{0};
  RcuExpedite rcu;  // set around a late attach (polling thread)
  // Processes under late looks (pid -> until, mono ns), asked by the hold-back's thread.
  mutable std::mutex pending_mu;
  std::unordered_map<uint32_t, uint64_t> pending;
  static constexpr size_t kMaxPending = 16384;
  ring_buffer* rb = nullptr;
  int tgids_fd = -1;  // ehp_tls_tgids, shared by every group (a dup of the first one's fd)
  uint64_t realtime_minus_mono_ns = 0;
  // Written by the polling thread, read by stats() from any thread.
  std::atomic<uint64_t> secrets_events{0}, data_events{0}, logged_secrets{0}, logged_incomplete{0};
  tls::KeylogAssembler assembler;  // secrets logged one by one -> sessions (polling thread)
  // Who logged each waiting session's secrets (for the key log's pid/comm); bounded.
  struct LoggedBy {
    ProcInfo proc;
    uint32_t source = 0;
  };
  std::unordered_map<std::array<uint8_t, 32>, LoggedBy, ArrayHash> logged_by;
  uint64_t next_expire_ns = 0;
  // Set for the duration of poll().
  const std::function<void(const ehp::tls::Secrets&, const ProcInfo&)>* on_secrets = nullptr;
  const std::function<void(const PlainData&)>* on_data = nullptr;
  // begin_detach(): the links being destroyed while the stop goes on.
  std::thread detach_thread;
  bool detaching = false;  // under mu: no late look attaches anything any more
  std::vector<bpf_link*> take_links() {
    std::vector<bpf_link*> links;
    std::lock_guard lk(mu);
    detaching = true;
    if (exec_link) links.push_back(exec_link);
    exec_link = nullptr;
    for (auto& g : groups) {
      links.insert(links.end(), g.links.begin(), g.links.end());
      g.links.clear();
    }
    return links;
  }
  ~Impl() {
    // Every link first, all at once (base/bpf_links.h), then the objects they ran.
    if (detach_thread.joinable()) detach_thread.join();
    std::vector<bpf_link*> links = take_links();
    destroy_links(links);
    if (rb) ring_buffer__free(rb);
    if (tgids_fd >= 0) close(tgids_fd);
    for (auto& g : groups)
      if (g.skel) openssl__destroy(g.skel);
  }

  bool discover(std::vector<LibSsl>* libs, std::string* err);
  // The new binaries' (group, lib), in the order given; refusals appended to skipped and *refused.
  std::vector<std::pair<Group*, Group::Lib*>> confirm(std::vector<LibSsl>& libs,
                                                     std::vector<std::string>* refused = nullptr);
  void queue_looks(const ehp_tls_hdr& h);
  void run_due_looks();
  void look(const Look& l);
  uint64_t next_look_ns() const { return looks.empty() ? UINT64_MAX : looks.begin()->first; }
  void on_logged(const void* data, size_t size, const ProcInfo& p);
  void flush_logged();
  bool load(Group& g, std::string* err);
  bool attach(Group& g, Group::Lib& lib, std::string* err);

  static int on_record(void* ctx, void* data, size_t size) { return static_cast<Impl*>(ctx)->handle(data, size); }

  int handle(const void* data, size_t size) {
    ehp_tls_hdr h;
    if (size < sizeof h) return 0;
    memcpy(&h, data, sizeof h);
    ProcInfo p;
    p.known = true;
    p.info.pid = h.pid;
    p.info.tid = h.tid;
    p.info.uid = h.uid;
    static_assert(sizeof p.info.comm == sizeof h.comm);
    memcpy(p.info.comm, h.comm, sizeof p.info.comm);
    p.info.comm[sizeof p.info.comm - 1] = 0;
    if (h.kind == EHP_TLS_EV_SECRETS && size >= sizeof(ehp_tls_secrets_event)) {
      ehp_tls_secrets_event e;
      memcpy(&e, data, sizeof e);
      tls::Secrets s;
      s.version = e.version;
      s.cipher_id = e.cipher_id;
      memcpy(s.client_random.data(), e.client_random, 32);
      memcpy(s.master_key.data(), e.master_key, 48);
      memcpy(s.handshake_secret.data(), e.handshake_secret, 64);
      memcpy(s.handshake_traffic_hash.data(), e.handshake_traffic_hash, 64);
      memcpy(s.client_app_traffic_secret.data(), e.client_app_traffic_secret, 64);
      memcpy(s.server_app_traffic_secret.data(), e.server_app_traffic_secret, 64);
      memcpy(s.exporter_master_secret.data(), e.exporter_master_secret, 64);
      s.source = e.lib;
      if (opt.corrupt_tls13_secret_offset && s.version == tls::kTls13) {
        // Test hook: what a read at offset + N would have given; the bytes past the 64 read
        // are taken from the hash, a stand-in for whatever follows in the struct.
        const size_t n = std::min<size_t>(opt.corrupt_tls13_secret_offset, 32);
        std::array<uint8_t, 128> both;
        memcpy(both.data(), s.handshake_secret.data(), 64);
        memcpy(both.data() + 64, s.handshake_traffic_hash.data(), 64);
        memcpy(s.handshake_secret.data(), both.data() + n, 64);
      }
      secrets_events.fetch_add(1, std::memory_order_relaxed);
      if (on_secrets && *on_secrets) (*on_secrets)(s, p);
    } else if (h.kind == EHP_TLS_EV_EXEC) {
      queue_looks(h);
    } else if (h.kind == EHP_TLS_EV_KEYLOG && size >= sizeof(ehp_tls_keylog_event)) {
      on_logged(data, size, p);
    } else if (h.kind == EHP_TLS_EV_DATA && size >= sizeof(ehp_tls_data_event)) {
      ehp_tls_data_event e;
      memcpy(&e, data, sizeof e);
      if (e.data_len_bytes > size - sizeof e) return 0;
      data_events.fetch_add(1, std::memory_order_relaxed);
      if (!on_data || !*on_data) return 0;
      std::optional<Tuple> tuple;
      if (e.ip_version == 4 || e.ip_version == 6) {
        tuple.emplace();
        tuple->ip_version = e.ip_version;
        memcpy(tuple->saddr.data(), e.saddr, 16);
        memcpy(tuple->daddr.data(), e.daddr, 16);
        tuple->sport = e.sport;
        tuple->dport = e.dport;
      }
      PlainData d{p, e.is_write != 0, h.ts_ns + realtime_minus_mono_ns, tuple,
                  std::span<const uint8_t>(static_cast<const uint8_t*>(data) + sizeof e, e.data_len_bytes),
                  e.len_bytes};
      (*on_data)(d);
    }
    return 0;
  }
};

TlsProbe::TlsProbe(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsProbe::~TlsProbe() = default;

// The candidate libraries: the one --libssl names, else every libssl in use plus the system one.
bool TlsProbe::Impl::discover(std::vector<LibSsl>* libs, std::string* err) {
  if (!opt.libssl_path.empty()) {
    auto lib = named_libssl(opt.libssl_path, err);
    if (!lib) {
      *err = "libssl " + *err;
      return false;
    }
    libs->push_back(std::move(*lib));
  } else {
    *libs = discover_libssl(&skipped);
    if (libs->empty()) {
      *err = skipped.empty()
                 ? "no libssl found: none is mapped by a running process and /usr/lib/x86_64-linux-gnu/libssl.so.3 is absent"
                 : skipped.front();
      return false;
    }
  }
  return true;
}

// Reads each library (never runs it) and confirms its offsets; identical layouts share a group.
std::vector<std::pair<Group*, Group::Lib*>> TlsProbe::Impl::confirm(std::vector<LibSsl>& libs,
                                                                    std::vector<std::string>* refused) {
  std::vector<std::pair<Group*, Group::Lib*>> added;
  static const std::vector<std::unique_ptr<Stack>> kStacks = [] {
    std::vector<std::unique_ptr<Stack>> v;
    v.push_back(make_go_stack());  // first: a Go binary is nothing else's (and has no OpenSSL)
    v.push_back(make_logger_stack());
    v.push_back(make_openssl_stack());  // last: refuses, with the reason, what nobody took
    return v;
  }();
  for (auto& lib : libs) {
    ElfFile own;
    Candidate c{lib, nullptr, std::nullopt, {}, opt.plaintext, opt.force_io_fallback};
    if (lib.elf) c.elf = lib.elf.get();  // read already, by the look that found it
    else if (own.open(lib.file, lib.path, &c.version_error)) c.elf = &own;
    // A static executable named by the user (or found by its .symtab): OpenSSL's functions are
    // in .symtab only.
    if (c.elf == &own && !own.exports("SSL_new") && !own.exports("ssl_log_secret") && own.has_symtab())
      own.load_symtab();
    if (c.elf) c.version = detect_version(lib, *c.elf, &c.version_error);
    std::optional<Plan> plan;
    for (auto& st : kStacks)
      if ((plan = st->inspect(c))) break;
    if (decided_files.size() < 65536) decided_files.insert({lib.file.dev(), lib.file.ino()});
    if (!plan) continue;
    if (!plan->refusal.empty()) {
      std::lock_guard lk(mu);
      skipped.push_back(plan->refusal);
      if (refused) refused->push_back(plan->refusal);
      continue;
    }
    // A loaded group takes a new binary only when the programs its hooks need are loaded.
    auto fits = [&](const Group& x) {
      if (!(x.layout == plan->layout)) return false;
      if (!x.skel) return true;
      for (auto& h : plan->hooks)
        if (bpf_program__fd(program(x.skel, h.prog)) < 0) return false;
      return true;
    };
    std::lock_guard lk(mu);
    Group* g = nullptr;
    for (auto& x : groups)
      if (fits(x)) g = &x;
    if (!g) {
      groups.push_back({});
      g = &groups.back();
      g->layout = plan->layout;
    }
    // 16 bits of cookie reach userspace (ehp_tls_secrets_event.lib); past that: unknown (0).
    const uint32_t source = sources_.size() < 0xFFFF ? uint32_t(sources_.size() + 1) : 0;
    if (source) sources_.push_back(lib.path);
    g->libs.push_back({lib.path, plan->desc, std::move(plan->hooks), std::move(lib.file), false, source});
    added.push_back({g, &g->libs.back()});
  }
  return added;
}

// A secret the library logged: into the assembler; a completed session goes on like any other.
void TlsProbe::Impl::on_logged(const void* data, size_t size, const ProcInfo& p) {
  (void)size;
  ehp_tls_keylog_event e;
  memcpy(&e, data, sizeof e);
  logged_secrets.fetch_add(1, std::memory_order_relaxed);
  std::array<uint8_t, 32> cr;
  memcpy(cr.data(), e.client_random, 32);
  const size_t label_len = std::min<size_t>(e.label_len, sizeof e.label);
  const size_t secret_len = std::min<size_t>(e.secret_len, sizeof e.secret);
  const std::string_view label(e.label, label_len);
  if (opt.corrupt_tls13_secret_offset && label.find("HANDSHAKE_TRAFFIC_SECRET") != std::string_view::npos) {
    // Test hook: the secret as a read N bytes further on would give it (zeros past the 64 read).
    const size_t n = std::min<size_t>(opt.corrupt_tls13_secret_offset, sizeof e.secret);
    memmove(e.secret, e.secret + n, sizeof e.secret - n);
    memset(e.secret + sizeof e.secret - n, 0, n);
  }
  auto s = assembler.add(std::string_view(e.label, label_len), cr, std::span<const uint8_t>(e.secret, secret_len),
                         e.hdr.ts_ns);
  if (!s) {
    // Only pid/comm of the key log line and the key check's attribution are lost.
    if (logged_by.size() >= 8192) logged_by.clear();
    logged_by[cr] = {p, e.lib};
    return;
  }
  logged_by.erase(cr);
  s->source = e.lib;
  secrets_events.fetch_add(1, std::memory_order_relaxed);
  if (on_secrets && *on_secrets) (*on_secrets)(*s, p);
}

// Sessions that waited long enough for an exporter secret go on without it.
void TlsProbe::Impl::flush_logged() {
  std::vector<tls::Secrets> done;
  assembler.flush(mono_ns(), &done);
  for (auto& s : done) {
    ProcInfo p;
    if (auto it = logged_by.find(s.client_random); it != logged_by.end()) {
      p = it->second.proc;
      s.source = it->second.source;
      logged_by.erase(it);
    }
    secrets_events.fetch_add(1, std::memory_order_relaxed);
    if (on_secrets && *on_secrets) (*on_secrets)(s, p);
  }
  assembler.expire(mono_ns());
  // Expired and crowded-out sessions alike (read by stats() from other threads).
  logged_incomplete.store(assembler.incomplete_dropped(), std::memory_order_relaxed);
}

// ---- Late looks -------------------------------------------------------------------------------
// A process exec'ed after the start may run a binary no process had mapped then. The uprobes of
// a file take effect in every process that maps it, also one already running, so it is enough to
// attach before the program's first handshake. The executable is mapped by the exec itself (a Go
// program, OpenSSL linked into node): the first look, at once, sees it. A shared libssl is mapped
// by the loader after the exec (or by dlopen, any time later): looked for again at 5 ms, 150 ms
// and 1.5 s. Each look costs a read of /proc/PID/maps; files already decided, by the inode maps
// names, are not opened again; new ones are read and inspected as at the start (scan_process).

void TlsProbe::Impl::queue_looks(const ehp_tls_hdr& h) {
  if (!late) return;
  execs.fetch_add(1, std::memory_order_relaxed);
  if (looks.size() + std::size(kLookDelaysNs) > kMaxLooksQueued) {
    late_looks_skipped.fetch_add(std::size(kLookDelaysNs), std::memory_order_relaxed);
    return;
  }
  char comm[sizeof h.comm + 1] = {};
  memcpy(comm, h.comm, sizeof h.comm);
  for (uint64_t d : kLookDelaysNs) looks.emplace(h.ts_ns + d, Look{h.pid, h.ts_ns, comm});
}

void TlsProbe::Impl::run_due_looks() {
  if (looks.empty()) return;
  const uint64_t now = mono_ns();
  while (!looks.empty() && looks.begin()->first <= now) {
    Look l = std::move(looks.begin()->second);
    looks.erase(looks.begin());
    if (now - look_window_ns >= 1'000'000'000ull) {
      look_window_ns = now;
      looks_in_window = 0;
    }
    if (looks_in_window >= kMaxLooksPerSec) {
      late_looks_skipped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ++looks_in_window;
    late_looks.fetch_add(1, std::memory_order_relaxed);
    look(l);
  }
}

void TlsProbe::Impl::look(const Look& l) {
  std::vector<LibSsl> found;
  std::vector<std::string> refused;
  scan_process(l.pid, late_scan, &refused,
               [&](UntrustedFile f, const std::string& shown, const std::string& root, const std::string& dir,
                   std::shared_ptr<const ElfFile> elf) {
                 if (decided_files.count({f.dev(), f.ino()})) return;  // traced or refused already
                 LibSsl lib;
                 lib.path = shown;
                 lib.root = root;
                 lib.dir = dir;
                 lib.file = std::move(f);
                 lib.elf = std::move(elf);
                 lib.pids.push_back(l.pid);
                 found.push_back(std::move(lib));
               });
  if (!refused.empty()) {
    std::lock_guard lk(mu);
    skipped.insert(skipped.end(), refused.begin(), refused.end());
  }
  if (!found.empty()) {
    // Pending from now until its probes are in place (and a while after, for the policy's
    // cache): the hold-back holds its sessions, whose keys can come once attached. Only a process
    // that maps a new TLS candidate: every other exec'ed program (a gnutls client in a container
    // on a router) is not held.
    {
      const uint64_t now = mono_ns();
      std::lock_guard lk(pending_mu);
      if (pending.size() >= kMaxPending) std::erase_if(pending, [&](auto& e) { return e.second <= now; });
      if (pending.size() < kMaxPending) pending[l.pid] = now + kPendingNs;
    }
    auto added = confirm(found, &refused);
    std::vector<std::string> traced;
    {
      std::lock_guard lk(mu);
      if (detaching) return;  // the stop has begun: nothing is attached any more
      RcuExpedite::Scope expedited(rcu);  // the uprobe registration's grace period: ~1 ms, not 7-18
      const size_t skipped_before = skipped.size();
      std::set<Group*> fresh;  // new layouts: their own BPF object, which attaches all their libs
      for (auto& [g, lib] : added)
        if (!g->skel) fresh.insert(g);
      for (Group* g : fresh) {
        // One ring more (added to the one poll() drains), the shared map of traced processes.
        std::string err;
        if (!load(*g, &err)) skipped.push_back("TLS library " + g->libs.front().path + ": " + err + "; not traced");
      }
      for (auto& [g, lib] : added) {
        if (fresh.count(g) || !g->skel) continue;
        std::string err;
        const size_t before = g->links.size();
        if (attach(*g, *lib, &err)) {
          lib->attached = true;
          continue;
        }
        while (g->links.size() > before) {
          bpf_link__destroy(g->links.back());
          g->links.pop_back();
        }
        skipped.push_back(err + "; not traced");
      }
      refused.insert(refused.end(), skipped.begin() + ptrdiff_t(skipped_before), skipped.end());
      const uint64_t ms = (mono_ns() - l.exec_ns) / 1'000'000;
      for (auto& [g, lib] : added)
        if (lib->attached)
          traced.push_back("tracing " + lib->desc + " (found after the start, in pid " + std::to_string(l.pid) + " " +
                           l.comm + ": probes in place " + std::to_string(ms) + " ms after its exec" +
                           (expedited.set() ? ", RCU expedited for the attach)" : ")"));
    }
    if (!traced.empty()) {
      late_traced.fetch_add(traced.size(), std::memory_order_relaxed);
      files_gen.fetch_add(1, std::memory_order_acq_rel);
    }
    if (opt.on_late)
      for (auto& t : traced) opt.on_late(t);
  }
  if (opt.on_late)
    for (auto& r : refused) opt.on_late(r);
}

// One BPF object per group: the offsets in rodata, then the hooks of each of its libraries,
// then its ring joins the one ring_buffer poll() drains.
bool TlsProbe::Impl::load(Group& g, std::string* err) {
  g.skel = openssl__open();
  if (!g.skel) {
    *err = std::string("BPF open of openssl.bpf.o failed: ") + strerror(errno);
    return false;
  }
  auto* ro = g.skel->rodata;
  memcpy(const_cast<ehp_tls_offsets*>(&ro->off), &g.layout.off, sizeof g.layout.off);
  ro->targ_pid = opt.pid.value_or(0);
  ro->filter_uid = opt.uid.has_value();
  ro->targ_uid = opt.uid.value_or(0);
  ro->capture_plaintext = opt.plaintext;
  // Secrets alone are ~600 B per handshake; plaintext needs room for bursts of 16 KiB copies.
  const uint32_t ring_bytes = opt.plaintext ? 16u << 20 : 1u << 20;
  bpf_map__set_max_entries(g.skel->maps.ehp_tls_events, ring_bytes);
  // Wake the reader at 1/8 of the ring; below that poll() collects every kPollSliceMs.
  ro->wakeup_bytes = ring_bytes / 8;
  ro->secrets_from_struct = !g.layout.logged;
  // A group loads only the programs its hooks use.
  bpf_program* prog;
  bpf_object__for_each_program(prog, g.skel->obj) {
    bool used = false;
    for (auto& lib : g.libs)
      for (auto& h : lib.hooks) used |= program(g.skel, h.prog) == prog;
    // A logged group always has both loggers' programs and, for -m text, the plaintext ones:
    // binaries found later only attach (the standby group below has no binary yet).
    if (g.layout.logged) {
      used |= prog == program(g.skel, Prog::GoKeyLog) || prog == program(g.skel, Prog::LogSecret);
      if (opt.plaintext) {
        for (const auto& h : kPlaintextHooks) used |= prog == program(g.skel, h.prog);
        for (Prog p : {Prog::GoWrite, Prog::GoRead, Prog::GoReadRet}) used |= prog == program(g.skel, p);
      }
    }
    if (!used) bpf_program__set_autoload(prog, false);
  }
  // The exec records (late looks) come from the first object only, into its ring.
  const bool exec_here = late && !exec_link && tgids_fd < 0;
  bpf_program__set_autoload(g.skel->progs.ehp_exec, exec_here);
  // One map of traced processes for all groups: the first loaded object's.
  if (tgids_fd >= 0 && bpf_map__reuse_fd(g.skel->maps.ehp_tls_tgids, tgids_fd) != 0) {
    for (auto& lib : g.libs)
      skipped.push_back("TLS library " + lib.path + ": sharing the traced-process map failed: " + strerror(errno) +
                        "; not traced");
    openssl__destroy(g.skel);
    g.skel = nullptr;
    return true;
  }
  if (int rc = openssl__load(g.skel)) {
    // This group's binaries only: the others are still traced.
    for (auto& lib : g.libs)
      skipped.push_back("TLS library " + lib.path + ": BPF load of openssl.bpf.o failed: " + strerror(-rc) + "; not traced");
    openssl__destroy(g.skel);
    g.skel = nullptr;
    return true;
  }
  for (auto& lib : g.libs) {
    // A library whose hooks the kernel refuses is skipped; it takes no other library with it.
    const size_t before = g.links.size();
    std::string e;
    if (attach(g, lib, &e)) {
      lib.attached = true;
      continue;
    }
    while (g.links.size() > before) {
      bpf_link__destroy(g.links.back());
      g.links.pop_back();
    }
    skipped.push_back(e + "; not traced");
  }
  if (tgids_fd < 0) tgids_fd = fcntl(bpf_map__fd(g.skel->maps.ehp_tls_tgids), F_DUPFD_CLOEXEC, 0);
  if (exec_here) {
    exec_link = bpf_program__attach(g.skel->progs.ehp_exec);
    if (!exec_link) {
      late = false;
      skipped.push_back(std::string("processes started after the start are not looked at: attaching the exec "
                                    "tracepoint failed: ") + strerror(errno));
    }
  }
  int map_fd = bpf_map__fd(g.skel->maps.ehp_tls_events);
  if (!rb) {
    rb = ring_buffer__new(map_fd, &Impl::on_record, this, nullptr);
    if (!rb) {
      *err = std::string("ring_buffer__new failed: ") + strerror(errno);
      return false;
    }
  } else if (ring_buffer__add(rb, map_fd, &Impl::on_record, this) != 0) {
    *err = std::string("ring_buffer__add failed: ") + strerror(errno);
    return false;
  }
  return true;
}

// The uprobes of one library, by file offset, through the fd that was read.
bool TlsProbe::Impl::attach(Group& g, Group::Lib& lib, std::string* err) {
  for (auto& h : lib.hooks) {
    // The cookie names the binary in every record its hooks send (the key check's attribution).
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = lib.source | h.cookie, .retprobe = h.ret);
    // pid -1: every process mapping this inode, now or later. With -p, the kernel's uprobe
    // filter (by mm) puts the breakpoint into that process only, so other processes using
    // the library take no trap at all (the BPF-side pid check stays as a second line).
    const int attach_pid = opt.pid ? int(*opt.pid) : -1;
    // Through our own fd: the inode we read is the inode traced, whatever the path does.
    bpf_link* l = bpf_program__attach_uprobe_opts(program(g.skel, h.prog), attach_pid, lib.file.fd_path().c_str(),
                                                  h.file_offset, &uo);
    if (!l) {
      *err = "TLS library " + lib.path + ": attaching " + (h.ret ? "uretprobe " : "uprobe ") + h.what +
             " failed: " + strerror(errno);
      return false;
    }
    g.links.push_back(l);
  }
  return true;
}

std::unique_ptr<TlsProbe> TlsProbe::open(const Options& opt, std::string* err, std::vector<std::string>* skipped_out) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->late = opt.libssl_path.empty();
  impl->late_scan.skip_decided = true;
  impl->realtime_minus_mono_ns = uint64_t(realtime_offset_ns());
  std::vector<LibSsl> libs;
  const bool found = impl->discover(&libs, err);
  if (found) impl->confirm(libs);
  if (skipped_out) *skipped_out = impl->skipped;
  if (!found) return nullptr;
  if (impl->groups.empty()) {
    *err = impl->skipped.empty() ? "no libssl could be traced" : impl->skipped.back();
    return nullptr;
  }
  for (auto& g : impl->groups)
    if (!impl->load(g, err)) return nullptr;
  // A Go program or a secret-logger binary (OpenSSL linked into node, a shared libssl other
  // than 3.0, BoringSSL) started after the start needs no object of its own: with the logged
  // object loaded already, a late look only attaches (~2 ms after its exec instead of ~30-100 ms
  // for loading one), before the first handshake of even a short-lived client. Loaded once,
  // when none is.
  if (impl->late && std::none_of(impl->groups.begin(), impl->groups.end(), [](const Group& g) { return g.layout.logged; })) {
    Group standby;
    standby.layout.logged = true;
    impl->groups.push_back(std::move(standby));
    std::string e;
    if (!impl->load(impl->groups.back(), &e) || !impl->groups.back().skel) {
      // Not fatal: a late logged binary then loads its own object.
      if (impl->groups.back().skel) openssl__destroy(impl->groups.back().skel);
      impl->groups.pop_back();
    }
  }
  size_t attached = 0;
  for (auto& g : impl->groups)
    for (auto& l : g.libs) attached += l.attached;
  if (skipped_out) *skipped_out = impl->skipped;
  if (!attached) {
    *err = impl->skipped.empty() ? "no TLS library could be traced" : impl->skipped.back();
    return nullptr;
  }
  if (impl->late && opt.rcu_expedite) {
    std::string why;
    if (!impl->rcu.open(opt.rcu_dir, &why)) {
      impl->skipped.push_back("programs started after the start get their probes ~10-20 ms after their exec, not ~2 ms "
                              "(the kernel's RCU grace periods cannot be expedited for the attach: " + why +
                              "); one that handshakes sooner misses its first sessions");
      if (skipped_out) *skipped_out = impl->skipped;
    }
  }
  return std::unique_ptr<TlsProbe>(new TlsProbe(std::move(impl)));
}

std::vector<std::string> TlsProbe::libraries() const {
  std::lock_guard lk(impl_->mu);
  std::vector<std::string> out;
  for (auto& g : impl_->groups)
    for (auto& l : g.libs)
      if (l.attached) out.push_back(l.desc);
  return out;
}

std::vector<std::string> TlsProbe::skipped() const {
  std::lock_guard lk(impl_->mu);
  return impl_->skipped;
}

std::vector<std::string> TlsProbe::sources() const {
  std::lock_guard lk(impl_->mu);
  return impl_->sources_;
}

bool TlsProbe::process_pending(uint32_t pid) const {
  if (!impl_->late) return false;
  std::lock_guard lk(impl_->pending_mu);
  auto it = impl_->pending.find(pid);
  return it != impl_->pending.end() && it->second > mono_ns();
}

uint64_t TlsProbe::files_generation() const { return impl_->files_gen.load(std::memory_order_acquire); }

void TlsProbe::begin_detach() {
  if (impl_->detach_thread.joinable()) return;
  std::vector<bpf_link*> links = impl_->take_links();
  try {
    impl_->detach_thread = std::thread([links = std::move(links)]() mutable { destroy_links(links); });
  } catch (...) {
    destroy_links(links);
  }
}

bool TlsProbe::stop_late_looks() {
  if (!impl_->late) return false;
  impl_->late = false;
  if (impl_->exec_link) bpf_link__destroy(impl_->exec_link);
  impl_->exec_link = nullptr;
  impl_->looks.clear();
  return true;
}

bool TlsProbe::process_seen(uint32_t pid, uint64_t within_ns) const {
  uint64_t at = 0;
  if (impl_->tgids_fd < 0 || bpf_map_lookup_elem(impl_->tgids_fd, &pid, &at) != 0) return false;
  const uint64_t now = mono_ns();  // bpf_ktime_get_ns() is CLOCK_MONOTONIC
  return at <= now && now - at <= within_ns;
}

std::vector<TlsProbe::FileId> TlsProbe::traced_files() const {
  std::lock_guard lk(impl_->mu);
  std::vector<FileId> out;
  for (auto& g : impl_->groups)
    for (auto& l : g.libs)
      if (l.attached) out.push_back({l.file.dev(), l.file.ino()});
  return out;
}

int TlsProbe::poll(int timeout_ms,
                   const std::function<void(const ehp::tls::Secrets&, const ProcInfo&)>& on_secrets,
                   const std::function<void(const PlainData&)>& on_data) {
  impl_->on_secrets = &on_secrets;
  impl_->on_data = &on_data;
  // The BPF side wakes the reader only when its unread bytes cross wakeup_bytes, so a record
  // can sit unannounced: look at the ring every kPollSliceMs within the caller's timeout.
  constexpr int kPollSliceMs = 10;
  int remaining = timeout_ms, n = 0;
  for (;;) {
    impl_->run_due_looks();
    n = ring_buffer__consume(impl_->rb);
    if (n != 0 || remaining == 0) break;
    int slice = remaining < 0 ? kPollSliceMs : std::min(remaining, kPollSliceMs);
    // Wake for the next late look too (at least 1 ms on).
    if (const uint64_t next = impl_->next_look_ns(); next != UINT64_MAX) {
      const uint64_t now = mono_ns();
      const int until = next <= now ? 0 : int(std::min<uint64_t>((next - now + 999'999) / 1'000'000, kPollSliceMs));
      slice = std::max(1, std::min(slice, until));
    }
    n = ring_buffer__poll(impl_->rb, slice);
    if (n != 0) break;
    if (remaining > 0) remaining = std::max(0, remaining - slice);
  }
  // Looks queued by this call's exec records: the first is due now.
  impl_->run_due_looks();
  impl_->flush_logged();
  impl_->on_secrets = nullptr;
  impl_->on_data = nullptr;
  return n == -EINTR ? 0 : n;
}

TlsProbe::Stats TlsProbe::stats() const {
  Stats s{};
  s.secrets_events = impl_->secrets_events.load(std::memory_order_relaxed);
  s.data_events = impl_->data_events.load(std::memory_order_relaxed);
  s.logged_secrets = impl_->logged_secrets.load(std::memory_order_relaxed);
  s.logged_incomplete = impl_->logged_incomplete.load(std::memory_order_relaxed);
  s.execs = impl_->execs.load(std::memory_order_relaxed);
  s.late_looks = impl_->late_looks.load(std::memory_order_relaxed);
  s.late_looks_skipped = impl_->late_looks_skipped.load(std::memory_order_relaxed);
  s.late_traced = impl_->late_traced.load(std::memory_order_relaxed);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return s;
  std::vector<uint64_t> vals(ncpu);
  std::lock_guard lk(impl_->mu);
  for (auto& g : impl_->groups) {
    if (!g.skel) continue;
    int fd = bpf_map__fd(g.skel->maps.ehp_tls_counters);
    auto sum = [&](uint32_t idx) {
      uint64_t t = 0;
      if (bpf_map_lookup_elem(fd, &idx, vals.data()) == 0)
        for (auto v : vals) t += v;
      return t;
    };
    s.ring_drops += sum(EHP_TLS_CNT_RING_DROP_SECRETS) + sum(EHP_TLS_CNT_RING_DROP_DATA);
    s.data_truncated += sum(EHP_TLS_CNT_DATA_TRUNCATED);
    s.io_unseen += sum(EHP_TLS_CNT_IO_UNSEEN);
    s.read_faults += sum(EHP_TLS_CNT_READ_FAULT);
    s.null_secrets += sum(EHP_TLS_CNT_NULL_SECRETS);
    s.exec_drops += sum(EHP_TLS_CNT_RING_DROP_EXEC);
  }
  return s;
}

}  // namespace ehp::tlsprobe
