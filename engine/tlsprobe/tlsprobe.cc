// SPDX-License-Identifier: BSD-2-Clause
// TlsProbe: open -> discover -> confirm offsets -> set rodata -> load -> attach -> poll -> one
// cleanup path (the destructor).
#include "tlsprobe/tlsprobe.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <unordered_map>

#include "abi/tls_abi.h"
#include "base/clock.h"
#include "openssl.skel.h"
#include "tlsprobe/libssl.h"
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

// Libraries whose confirmed offsets are identical share one BPF object. Two ways to trace
// OpenSSL, one per group: the SSL struct read at the end of each handshake (the layout `off`),
// or the library's own secret logger (`logger`: only the client random's place, `cr`).
struct Group {
  ehp_tls_offsets off{};
  bool bio_num_ok = false;
  bool logger = false;
  uint32_t cr_ptr_off = 0, cr_off = 0;
  struct Lib {
    std::string path, desc;
    uint64_t connect_file_offset = 0, accept_file_offset = 0;  // 0 = use the fallback hooks
    uint64_t logger_file_offset = 0;                           // ssl_log_secret (logger groups)
    std::map<std::string, uint64_t> sym_offsets;  // exported hook targets -> file offset
    UntrustedFile file;                           // attached through file.fd_path()
  };
  std::vector<Lib> libs;
  struct openssl* skel = nullptr;
  std::vector<bpf_link*> links;
};

}  // namespace

struct TlsProbe::Impl {
  Options opt;
  std::vector<Group> groups;
  std::vector<std::string> skipped;
  ring_buffer* rb = nullptr;
  uint64_t realtime_minus_mono_ns = 0;
  // Written by the polling thread, read by stats() from any thread.
  std::atomic<uint64_t> secrets_events{0}, data_events{0}, logged_secrets{0}, logged_incomplete{0};
  tls::KeylogAssembler assembler;  // secrets logged one by one -> sessions (polling thread)
  // Who logged each waiting session's secrets (for the key log's pid/comm); bounded.
  std::unordered_map<std::array<uint8_t, 32>, ProcInfo, ArrayHash> logged_by;
  uint64_t next_expire_ns = 0;
  // Set for the duration of poll().
  const std::function<void(const ehp::tls::Secrets&, const ProcInfo&)>* on_secrets = nullptr;
  const std::function<void(const PlainData&)>* on_data = nullptr;
  ~Impl() {
    if (rb) ring_buffer__free(rb);
    for (auto& g : groups) {
      for (auto* l : g.links) bpf_link__destroy(l);
      if (g.skel) openssl__destroy(g.skel);
    }
  }

  bool discover(std::vector<LibSsl>* libs, std::string* err);
  void confirm(std::vector<LibSsl>& libs);
  bool confirm_logger(LibSsl& lib, const ElfFile& elf, const std::optional<OpenSslVersion>& v, std::string* refusal);
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
      secrets_events.fetch_add(1, std::memory_order_relaxed);
      if (on_secrets && *on_secrets) (*on_secrets)(s, p);
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
void TlsProbe::Impl::confirm(std::vector<LibSsl>& libs) {
  for (auto& lib : libs) {
    std::string e, how;
    ElfFile elf;
    std::optional<OpenSslVersion> v;
    const bool parsed = elf.open(lib.file, lib.path, &e);
    if (parsed) v = detect_version(lib, elf, &e);
    std::string refusal;
    const OffsetTable* row = v ? offsets_for(*v) : nullptr;
    if (parsed && (elf.exports("ssl_log_secret") || (!v && elf.exports("SSL_CTX_get_keylog_callback")))) {
      // OpenSSL linked into an executable, or BoringSSL (no OpenSSL version, stripped): the
      // library's own secret logger.
      confirm_logger(lib, elf, v, &refusal);
    } else if (!v) {
      refusal = "libssl " + lib.path + ": version unknown (" + e + "); struct offsets cannot be confirmed, not traced";
    } else if (!row) {
      refusal = "libssl " + lib.path + " (" + v->short_name() + "): no offset table for this version, not traced";
    } else if (!confirm_offsets(elf, row->off, &how, &e)) {
      refusal = "libssl " + lib.path + " (" + v->short_name() + "): struct offsets (" + row->series +
                " table) not confirmed: " + e + "; not traced";
    } else {
      ehp_tls_offsets off = row->off;
      // rbio->num (the fd behind a socket BIO, for -m text tuples) has no accessor: trusted
      // only where the row is proven; secrets are unaffected.
      const bool bio_num_ok = row->verified;
      if (!bio_num_ok) off.bio_st_num_offset = 0;
      Group* g = nullptr;
      for (auto& x : groups)
        if (memcmp(&x.off, &off, sizeof off) == 0) g = &x;
      if (!g) {
        groups.push_back({});
        g = &groups.back();
        g->off = off;
        g->bio_num_ok = bio_num_ok;
      }
      std::string why;
      auto fns = opt.force_io_fallback ? std::nullopt
                                       : locate_handshake_functions(elf, row->ssl_st_handshake_func_offset, &why);
      char hooks[160];
      HandshakeFns at;
      if (fns) {
        // Probe points past instructions the kernel would single-step (emulated_probe_point).
        at.connect_file_offset = emulated_probe_point(elf, fns->connect_file_offset);
        at.accept_file_offset = emulated_probe_point(elf, fns->accept_file_offset);
        snprintf(hooks, sizeof hooks, "hooks: handshake_func connect@0x%llx accept@0x%llx",
                 (unsigned long long)at.connect_file_offset, (unsigned long long)at.accept_file_offset);
      } else {
        snprintf(hooks, sizeof hooks, "hooks: SSL_do_handshake + per-call SSL_read/SSL_write fallback");
      }
      Group::Lib gl;
      gl.path = lib.path;
      gl.desc = lib.path + " (" + v->short_name() + ", " + (row->verified ? "" : "unverified table ") +
                "offsets confirmed: " + how + "; " + hooks + ")";
      gl.connect_file_offset = at.connect_file_offset;
      gl.accept_file_offset = at.accept_file_offset;
      for (const char* sym : {"SSL_do_handshake", "SSL_get_error", "SSL_read", "SSL_write", "SSL_read_ex", "SSL_write_ex"})
        if (auto o = symbol_file_offset(elf, sym)) gl.sym_offsets[sym] = *o;
      gl.file = std::move(lib.file);
      g->libs.push_back(std::move(gl));
    }
    if (!refusal.empty()) skipped.push_back(refusal);
  }
}

// OpenSSL's secret logger in this binary (libssl.h: locate_secret_logger); false + *refusal.
bool TlsProbe::Impl::confirm_logger(LibSsl& lib, const ElfFile& elf, const std::optional<OpenSslVersion>& v,
                                    std::string* refusal) {
  std::string why;
  // BoringSSL's C++ API (namespace bssl) shows in its exported symbols.
  const bool boring = !v && elf.exports_bssl();
  const std::string name = v ? v->short_name() : boring ? std::string("BoringSSL") : std::string("OpenSSL, version unknown");
  auto lg = locate_secret_logger(elf, &why);
  if (!lg) {
    *refusal = "TLS library " + lib.path + " (" + name + "): " + why + "; not traced";
    return false;
  }
  Group* g = nullptr;
  for (auto& x : groups)
    if (x.logger && x.cr_ptr_off == lg->cr_ptr_off && x.cr_off == lg->cr_off) g = &x;
  if (!g) {
    groups.push_back({});
    g = &groups.back();
    g->logger = true;
    g->cr_ptr_off = lg->cr_ptr_off;
    g->cr_off = lg->cr_off;
  }
  char desc[160];
  if (lg->cr_ptr_off)
    snprintf(desc, sizeof desc, "hook: secret logger@0x%llx, client random at *(conn+0x%x)+0x%x",
             (unsigned long long)lg->file_offset, lg->cr_ptr_off, lg->cr_off);
  else
    snprintf(desc, sizeof desc, "hook: secret logger@0x%llx, client random at conn+0x%x",
             (unsigned long long)lg->file_offset, lg->cr_off);
  Group::Lib gl;
  gl.path = lib.path;
  gl.desc = lib.path + " (" + name + (elf.exports("ssl_log_secret") && lib.path.find("libssl.so") == std::string::npos ? ", linked in" : "") +
            "; the library's own secret logger; " + desc + ")";
  gl.logger_file_offset = lg->file_offset;
  gl.file = std::move(lib.file);
  g->libs.push_back(std::move(gl));
  return true;
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
  auto s = assembler.add(std::string_view(e.label, label_len), cr, std::span<const uint8_t>(e.secret, secret_len),
                         e.hdr.ts_ns);
  if (!s) {
    if (logged_by.size() >= 8192) logged_by.clear();  // only pid/comm of the key log line is lost
    logged_by[cr] = p;
    return;
  }
  logged_by.erase(cr);
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
      p = it->second;
      logged_by.erase(it);
    }
    secrets_events.fetch_add(1, std::memory_order_relaxed);
    if (on_secrets && *on_secrets) (*on_secrets)(s, p);
  }
  logged_incomplete.fetch_add(assembler.expire(mono_ns()), std::memory_order_relaxed);
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
  memcpy(const_cast<ehp_tls_offsets*>(&ro->off), &g.off, sizeof g.off);
  ro->targ_pid = opt.pid.value_or(0);
  ro->filter_uid = opt.uid.has_value();
  ro->targ_uid = opt.uid.value_or(0);
  ro->capture_plaintext = opt.plaintext;
  // Secrets alone are ~600 B per handshake; plaintext needs room for bursts of 16 KiB copies.
  const uint32_t ring_bytes = opt.plaintext ? 16u << 20 : 1u << 20;
  bpf_map__set_max_entries(g.skel->maps.ehp_tls_events, ring_bytes);
  // Wake the reader at 1/8 of the ring; below that poll() collects every kPollSliceMs.
  ro->wakeup_bytes = ring_bytes / 8;
  ro->cr_ptr_off = g.cr_ptr_off;
  ro->cr_off = g.cr_off;
  // A group loads only the programs its hooks use.
  bpf_program* prog;
  bpf_object__for_each_program(prog, g.skel->obj) {
    const bool logger_prog = prog == g.skel->progs.ehp_ssl_log_secret;
    const bool plain_ret = prog == g.skel->progs.ehp_ssl_read_ret || prog == g.skel->progs.ehp_ssl_read_ex_ret;
    if (logger_prog != g.logger || (plain_ret && !opt.plaintext)) bpf_program__set_autoload(prog, false);
  }
  if (int rc = openssl__load(g.skel)) {
    *err = std::string("BPF load of openssl.bpf.o failed: ") + strerror(-rc);
    return false;
  }
  for (auto& lib : g.libs)
    if (!attach(g, lib, err)) return false;
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
  struct Hook {
    bpf_program* prog;
    const char* func;  // nullptr: attach at `offset`
    uint64_t offset;
    bool ret;
    bool needed;  // false: skip when the library does not export it
  };
  auto& p = g.skel->progs;
  std::vector<Hook> hooks;
  bool primary = lib.connect_file_offset != 0;
  if (g.logger) {
    hooks.push_back({p.ehp_ssl_log_secret, nullptr, lib.logger_file_offset, false, true});
  } else if (primary) {
    for (uint64_t o : {lib.connect_file_offset, lib.accept_file_offset}) {
      hooks.push_back({p.ehp_handshake, nullptr, o, false, true});
      hooks.push_back({p.ehp_handshake_ret, nullptr, o, true, true});
    }
  } else {
    hooks.push_back({p.ehp_handshake, "SSL_do_handshake", 0, false, true});
    hooks.push_back({p.ehp_handshake_ret, "SSL_do_handshake", 0, true, true});
    hooks.push_back({p.ehp_ssl_get_error, "SSL_get_error", 0, false, true});
  }
  if (!g.logger && (!primary || opt.plaintext)) {
    hooks.push_back({p.ehp_ssl_read, "SSL_read", 0, false, true});
    hooks.push_back({p.ehp_ssl_write, "SSL_write", 0, false, true});
    hooks.push_back({p.ehp_ssl_read_ex, "SSL_read_ex", 0, false, false});
    hooks.push_back({p.ehp_ssl_write_ex, "SSL_write_ex", 0, false, false});
  }
  if (!g.logger && opt.plaintext) {
    hooks.push_back({p.ehp_ssl_read_ret, "SSL_read", 0, true, true});
    hooks.push_back({p.ehp_ssl_read_ex_ret, "SSL_read_ex", 0, true, false});
  }
  for (auto& h : hooks) {
    // Symbols were resolved from the file we read; libbpf never parses the library itself.
    uint64_t at = h.offset;
    if (h.func) {
      auto it = lib.sym_offsets.find(h.func);
      if (it == lib.sym_offsets.end()) {
        if (!h.needed) continue;
        *err = "libssl " + lib.path + ": does not export " + h.func;
        return false;
      }
      at = it->second;
    }
    LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = h.ret);
    // pid -1: every process mapping this inode, now or later. With -p, the kernel's uprobe
    // filter (by mm) puts the breakpoint into that process only, so other processes using
    // the library take no trap at all (the BPF-side pid check stays as a second line).
    const int attach_pid = opt.pid ? int(*opt.pid) : -1;
    // Through our own fd: the inode we read is the inode traced, whatever the path does.
    bpf_link* l = bpf_program__attach_uprobe_opts(h.prog, attach_pid, lib.file.fd_path().c_str(), at, &uo);
    if (!l) {
      char where[64];
      snprintf(where, sizeof where, "offset 0x%llx", (unsigned long long)at);
      *err = "libssl " + lib.path + ": attaching " + (h.ret ? "uretprobe " : "uprobe ") +
             (h.func ? h.func : where) + " failed: " + strerror(errno);
      return false;
    }
    g.links.push_back(l);
  }
  return true;
}

std::unique_ptr<TlsProbe> TlsProbe::open(const Options& opt, std::string* err, std::vector<std::string>* skipped_out) {
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
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
  return std::unique_ptr<TlsProbe>(new TlsProbe(std::move(impl)));
}

std::vector<std::string> TlsProbe::libraries() const {
  std::vector<std::string> out;
  for (auto& g : impl_->groups)
    for (auto& l : g.libs) out.push_back(l.desc);
  return out;
}

std::vector<std::string> TlsProbe::skipped() const { return impl_->skipped; }

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
    n = ring_buffer__consume(impl_->rb);
    if (n != 0 || remaining == 0) break;
    const int slice = remaining < 0 ? kPollSliceMs : std::min(remaining, kPollSliceMs);
    n = ring_buffer__poll(impl_->rb, slice);
    if (n != 0) break;
    if (remaining > 0) remaining -= slice;
  }
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
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return s;
  std::vector<uint64_t> vals(ncpu);
  for (auto& g : impl_->groups) {
    int fd = bpf_map__fd(g.skel->maps.ehp_tls_counters);
    auto sum = [&](uint32_t idx) {
      uint64_t t = 0;
      if (bpf_map_lookup_elem(fd, &idx, vals.data()) == 0)
        for (auto v : vals) t += v;
      return t;
    };
    s.ring_drops += sum(EHP_TLS_CNT_RING_DROP_SECRETS) + sum(EHP_TLS_CNT_RING_DROP_DATA);
    s.data_truncated += sum(EHP_TLS_CNT_DATA_TRUNCATED);
    s.read_faults += sum(EHP_TLS_CNT_READ_FAULT);
    s.null_secrets += sum(EHP_TLS_CNT_NULL_SECRETS);
  }
  return s;
}

}  // namespace ehp::tlsprobe
