// SPDX-License-Identifier: BSD-2-Clause
// See capture.h. Ring reading follows the kernel ringbuf layout (kernel/bpf/ringbuf.c, and
// libbpf's ringbuf.c for the user side): page 0 = consumer_pos (RW), page 1 = producer_pos (RO),
// then the data area mapped twice so a record that wraps is contiguous in our view. Each record
// starts with an 8-byte header {u32 len | BUSY | DISCARD, u32 pg_off}; records are 8-aligned.
//
// Unlike libbpf we do NOT advance consumer_pos when we read a record: the consumer thread keeps
// a private read position and only release() advances consumer_pos, so a packet's bytes stay in
// ring memory until the writer has copied them (the one userspace copy).
#include "capture/capture.h"
#include "base/clock.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <concurrentqueue/concurrentqueue.h>
#include <linux/bpf.h>
#include <net/if_arp.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "abi/capture_abi.h"
#include "base/bpf_links.h"
#include "capture/attribution.h"
#include "capture/record.h"
#include "capture/tc_netlink.h"
#include "tc_capture.skel.h"

namespace ehp::capture {
namespace {

constexpr uint64_t kNever = UINT64_MAX;
// A record's timestamp is taken before the ringbuf reservation that makes it visible. A ring
// that looked empty at time t can therefore still receive a record stamped slightly before t.
// The idle watermark stays this far behind t; it bounds how late a program may publish (the
// copy of a 64 KiB frame takes microseconds; the margin covers a preempted vCPU).
constexpr uint64_t kIdleWatermarkSlackNs = 5'000'000;
constexpr size_t kQueueCapacity = 65536;   // refs per ring queue
constexpr size_t kStageCapacity = 1024;    // refs per ring staged in the merger
constexpr size_t kPushBatch = 256;
using record::kRingHdrBytes;

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}


// Queue item: where a record sits in its ring; the merge reads the header from ring memory.
struct Item {
  uint64_t ts_mono_ns;
  uint64_t pos;  // ring position of the 8-byte ringbuf header
  uint32_t len;      // record payload length (ehp_capture_hdr + frame)
  uint32_t cap_len;  // frame bytes (stats)
};

// try_enqueue never allocates; with explicit producers its capacity is bounded by the
// producer's block index, so size the index for kQueueCapacity.
struct QueueTraits : moodycamel::ConcurrentQueueDefaultTraits {
  static const size_t BLOCK_SIZE = 256;
  static const size_t EXPLICIT_INITIAL_INDEX_SIZE = kQueueCapacity / BLOCK_SIZE;
};
using RefQueue = moodycamel::ConcurrentQueue<Item, QueueTraits>;

struct alignas(64) Ring {
  int cpu = -1;
  int map_fd = -1;
  uint64_t size = 0, mask = 0;
  void* cons_map = nullptr;
  size_t cons_len = 0;
  void* prod_map = nullptr;
  size_t prod_len = 0;
  uint64_t* consumer_pos = nullptr;        // written by release()
  const uint64_t* producer_pos = nullptr;  // written by the kernel
  const uint8_t* data = nullptr;
  uint64_t* reader_pos_shared = nullptr;   // reader_pos map slot, read by BPF for wakeups

  std::unique_ptr<RefQueue> queue;
  std::unique_ptr<moodycamel::ProducerToken> ptok;
  std::unique_ptr<moodycamel::ConsumerToken> ctok;

  // Consumer thread only.
  uint64_t read_pos = 0;
  uint64_t last_ts = 0;
  bool stalled = false;

  // Consumer -> merger: all records with ts <= watermark_ns are in the queue.
  alignas(64) std::atomic<uint64_t> watermark_ns{0};
  std::atomic<uint64_t> records{0}, bytes{0}, queue_full{0};

  // Merger only: staged refs (circular).
  alignas(64) std::vector<Item> stage;
  size_t stage_head = 0, stage_count = 0;
};

struct TcAttachment {
  int ifindex;
  bool ingress;
  uint32_t handle, priority;
};

}  // namespace

struct Capture::Impl {
  Options opts;
  std::vector<Interface> ifaces;
  tc_capture* skel = nullptr;
  std::vector<std::unique_ptr<Ring>> rings;  // one per online CPU
  std::vector<int> ring_of_cpu;              // cpu -> index in rings, -1 if none
  int num_possible_cpus = 0;
  void* reader_pos_map = nullptr;
  size_t reader_pos_len = 0;

  // Attach state.
  std::vector<bpf_link*> links;
  std::vector<TcAttachment> tc;
  // ifindexes whose clsact we remove at detach when no filter is left on it: the ones we
  // created, and the ones another ecapture-hp created (it held only our filters when we came)
  std::vector<int> clsact_created;
  bool attached = false;

  // Threads.
  std::vector<std::thread> threads;
  std::vector<int> event_fds;
  std::atomic<bool> stopping{false};
  bool started = false, stopped = false;

  // Merger wakeup: consumers notify only while the merger waits.
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<bool> merger_waiting{false};
  std::atomic<uint64_t> pub_epoch{0};  // bumped by every notify_merger(): "look again"

  // Merger state.
  int64_t offset_ns = 0;
  uint64_t offset_refreshed_mono = 0;
  uint64_t last_wall_ns = 0;
  uint64_t last_mono_delivered = 0;
  uint64_t delivered = 0, out_of_order = 0, caller_backpressure = 0;
  // Delivery log: ring slot and end position of every delivered, unreleased ref, by seq.
  // release(ref) walks it up to ref.seq, so one release covers refs of all rings before it.
  struct LogEntry {
    uint64_t release_pos;
    uint32_t slot;
  };
  std::vector<LogEntry> log;  // kMaxOutstanding entries
  uint64_t next_seq = 0, released_seq = 0;
  // Attribution housekeeping.
  std::string attr_note;
  std::thread housekeeping;
  std::thread unlink;  // detach(): destroys the tracepoint links while the stop goes on (~Impl joins)
  std::mutex hk_mu;
  std::condition_variable hk_cv;
  bool hk_stop = false;
  std::atomic<uint64_t> attr_seeded{0}, attr_swept{0}, attr_errors{0};
  int attr_map_fd() const {
    bpf_map* m = bpf_object__find_map_by_name(skel->obj, "ehp_attr_flows");
    return m ? bpf_map__fd(m) : -1;
  }
  int attr_gen_fd() const {
    bpf_map* m = bpf_object__find_map_by_name(skel->obj, "ehp_attr_gen");
    return m ? bpf_map__fd(m) : -1;
  }
  void housekeeping_main();
  std::vector<uint64_t> wm_buf;   // per ring scratch for merge()
  std::vector<uint64_t> rel_pos;  // per ring scratch for release()
  std::vector<uint32_t> rel_dirty;

  ~Impl();
  bool create_rings(std::string* err);
  bool set_iface_entry(const Interface& i, std::string* err);
  bool attach_tc(const Interface& i, std::string* err);
  void forget_tc(int ifindex, bool remove);
  void consumer_main(std::vector<Ring*> mine, int cpu, int efd);
  bool drain(Ring& r, bool final_pass);
  void notify_merger();
  void refill(Ring& r);
  size_t merge(PacketRef* out, size_t max);
  bool all_done();
  void fill_ref(const Ring& r, uint32_t slot, const Item& it, PacketRef* ref);
};

namespace {

bool read_online_cpus(std::vector<int>* out, std::string* err) {
  std::ifstream f("/sys/devices/system/cpu/online");
  std::string s;
  if (!std::getline(f, s)) {
    *err = "cannot read /sys/devices/system/cpu/online";
    return false;
  }
  out->clear();
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    std::string part = s.substr(i, j - i);
    size_t dash = part.find('-');
    int a = std::stoi(part.substr(0, dash));
    int b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
    for (int c = a; c <= b; c++) out->push_back(c);
    i = j + 1;
  }
  return true;
}

bool resolve_iface(const std::string& name, Interface* out, std::string* err, bool need_up = true) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *err = "invalid interface name '" + name + "'";
    return false;
  }
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) {
    *err = "unknown interface '" + name + "'";
    return false;
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    *err = std::string("socket: ") + strerror(errno);
    return false;
  }
  ifreq ifr{};
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  bool ok = ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
  short flags = ifr.ifr_flags;
  close(s);
  if (!ok) {
    *err = "cannot query interface '" + name + "': " + strerror(errno);
    return false;
  }
  if (need_up && !(flags & IFF_UP)) {
    *err = "interface '" + name + "' is down";
    return false;
  }
  out->name = name;
  out->ifindex = static_cast<int>(idx);
  out->linktype = interface_linktype(name);
  out->loopback = (flags & IFF_LOOPBACK) != 0;
  out->up = (flags & IFF_UP) != 0;
  return true;
}

}  // namespace

bool resolve_interface(const std::string& name, Interface* out, std::string* err) {
  return resolve_iface(name, out, err, false);
}

uint16_t interface_linktype(const std::string& name) {
  ifreq hw{};
  if (name.size() >= sizeof hw.ifr_name) return 1;
  memcpy(hw.ifr_name, name.c_str(), name.size());
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const bool ok = s >= 0 && ioctl(s, SIOCGIFHWADDR, &hw) == 0;
  if (s >= 0) close(s);
  // Only Ethernet and loopback devices hand TC a frame with an Ethernet header; every other
  // kind (tun/wireguard ARPHRD_NONE, ipip ARPHRD_TUNNEL, sit, gre, ip6tnl, ...) starts at the
  // IP header: LINKTYPE_RAW.
  const uint16_t type = ok ? hw.ifr_hwaddr.sa_family : ARPHRD_ETHER;
  return (type == ARPHRD_ETHER || type == ARPHRD_LOOPBACK) ? 1 : 101;
}

namespace {
bool is_our_prog_name(const std::string& bpf_name);

// Our TC filters carry a handle of their own: 0xe4c0NNNN on ingress, 0xe4d0NNNN on egress (NNNN
// from the pid, then the next free one), so that a filter of ours is told apart from another
// tool's by its handle as well as by its program's name.
constexpr uint32_t kHandleIngress = 0xe4c00000, kHandleEgress = 0xe4d00000;
bool is_our_filter(const detail::TcFilter& f) {
  const uint32_t mark = f.handle & 0xffff0000u;
  return f.kind == "bpf" && (mark == kHandleIngress || mark == kHandleEgress || is_our_prog_name(f.bpf_name));
}
}  // namespace

std::vector<std::string> any_interfaces(std::vector<std::string>* skipped) {
  std::vector<std::string> out;
  struct if_nameindex* ni = ::if_nameindex();
  if (!ni) return out;
  for (auto* p = ni; p->if_index; p++) {
    Interface i;
    std::string err;
    if (!resolve_iface(p->if_name, &i, &err)) continue;  // down, or gone meanwhile
    if (i.linktype != 1) {
      if (skipped) skipped->push_back(p->if_name);
      continue;
    }
    out.push_back(p->if_name);
  }
  if_freenameindex(ni);
  return out;
}

void remove_leftovers(const std::vector<Interface>& ifaces, std::vector<std::string>* lines) {
  for (const auto& i : ifaces) {
    std::string report, err;
    int n = remove_stale_filters({i.name}, &report, &err);
    if (n < 0) {
      lines->push_back("warning: checking " + i.name + " for filters left by a killed run: " + err);
      continue;
    }
    for (size_t pos = 0; pos < report.size();) {
      size_t nl = report.find('\n', pos);
      if (nl == std::string::npos) nl = report.size();
      lines->push_back(report.substr(pos, nl - pos));
      pos = nl + 1;
    }
    if (n == 0) continue;
    std::vector<detail::TcFilter> in, eg;
    bool has = false;
    if (!detail::has_clsact(i.ifindex, &has, &err) || !has) continue;
    if (!detail::list_clsact_filters(i.ifindex, true, &in, &err) ||
        !detail::list_clsact_filters(i.ifindex, false, &eg, &err) || !in.empty() || !eg.empty())
      continue;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = i.ifindex,
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    if (bpf_tc_hook_destroy(&hook) == 0)
      lines->push_back("removed the empty clsact qdisc left behind on " + i.name);
  }
}

Capture::Impl::~Impl() {
  if (unlink.joinable()) unlink.join();  // before the object whose programs they ran
  for (auto& r : rings) {
    if (r->cons_map) munmap(r->cons_map, r->cons_len);
    if (r->prod_map) munmap(r->prod_map, r->prod_len);
    if (r->map_fd >= 0) close(r->map_fd);
  }
  if (reader_pos_map) munmap(reader_pos_map, reader_pos_len);
  for (int fd : event_fds) close(fd);
  if (skel) tc_capture::destroy(skel);
}

bool Capture::Impl::create_rings(std::string* err) {
  std::vector<int> online;
  if (!read_online_cpus(&online, err)) return false;
  long page = sysconf(_SC_PAGESIZE);
  ring_of_cpu.assign(num_possible_cpus, -1);

  reader_pos_len = (size_t(num_possible_cpus) * sizeof(uint64_t) + page - 1) / page * page;
  reader_pos_map = mmap(nullptr, reader_pos_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                        bpf_map__fd(skel->maps.reader_pos), 0);
  if (reader_pos_map == MAP_FAILED) {
    reader_pos_map = nullptr;
    *err = std::string("mmap reader_pos: ") + strerror(errno);
    return false;
  }
  int outer_fd = bpf_map__fd(skel->maps.rings);
  for (int cpu : online) {
    if (cpu >= num_possible_cpus) continue;
    auto r = std::make_unique<Ring>();
    r->cpu = cpu;
    r->size = opts.ring_bytes_per_cpu;
    r->mask = r->size - 1;
    r->map_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, ("ehp_ring" + std::to_string(cpu)).c_str(), 0, 0,
                               opts.ring_bytes_per_cpu, nullptr);
    if (r->map_fd < 0) {
      *err = "create ringbuf for cpu " + std::to_string(cpu) + ": " + strerror(errno);
      return false;
    }
    r->cons_len = page;
    r->cons_map = mmap(nullptr, r->cons_len, PROT_READ | PROT_WRITE, MAP_SHARED, r->map_fd, 0);
    if (r->cons_map == MAP_FAILED) {
      r->cons_map = nullptr;
      *err = std::string("mmap ring consumer page: ") + strerror(errno);
      rings.push_back(std::move(r));
      return false;
    }
    r->prod_len = page + 2 * r->size;
    r->prod_map = mmap(nullptr, r->prod_len, PROT_READ, MAP_SHARED, r->map_fd, page);
    if (r->prod_map == MAP_FAILED) {
      r->prod_map = nullptr;
      *err = std::string("mmap ring data: ") + strerror(errno);
      rings.push_back(std::move(r));
      return false;
    }
    r->consumer_pos = static_cast<uint64_t*>(r->cons_map);
    r->producer_pos = static_cast<const uint64_t*>(r->prod_map);
    r->data = static_cast<const uint8_t*>(r->prod_map) + page;
    r->read_pos = __atomic_load_n(r->consumer_pos, __ATOMIC_ACQUIRE);
    r->reader_pos_shared = static_cast<uint64_t*>(reader_pos_map) + cpu;
    __atomic_store_n(r->reader_pos_shared, r->read_pos, __ATOMIC_RELEASE);
    r->queue = std::make_unique<RefQueue>(kQueueCapacity, 1, 0);
    r->ptok = std::make_unique<moodycamel::ProducerToken>(*r->queue);
    r->ctok = std::make_unique<moodycamel::ConsumerToken>(*r->queue);
    r->stage.resize(kStageCapacity);
    uint32_t key = static_cast<uint32_t>(cpu);
    if (bpf_map_update_elem(outer_fd, &key, &r->map_fd, BPF_ANY) != 0) {
      *err = "insert ring for cpu " + std::to_string(cpu) + ": " + strerror(errno);
      rings.push_back(std::move(r));
      return false;
    }
    ring_of_cpu[cpu] = static_cast<int>(rings.size());
    rings.push_back(std::move(r));
  }
  if (rings.empty()) {
    *err = "no online CPU";
    return false;
  }
  log.resize(Capture::kMaxOutstanding);
  rel_pos.assign(rings.size(), 0);
  wm_buf.assign(rings.size(), 0);
  rel_dirty.reserve(rings.size());
  return true;
}

Capture::Capture(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Capture::~Capture() {
  detach();
  stop();
}

std::unique_ptr<Capture> Capture::open(const Options& opts, std::string* err) {
  auto im = std::make_unique<Impl>();
  im->opts = opts;
  std::string dummy;
  if (!err) err = &dummy;
  if (opts.ifaces.empty()) {
    *err = "no interface given";
    return nullptr;
  }
  std::set<int> seen;
  for (const auto& name : opts.ifaces) {
    Interface i;
    if (!resolve_iface(name, &i, err)) return nullptr;
    if (!seen.insert(i.ifindex).second) continue;
    im->ifaces.push_back(i);
  }
  uint32_t rb = opts.ring_bytes_per_cpu;
  long page = sysconf(_SC_PAGESIZE);
  if (rb < uint32_t(page) || (rb & (rb - 1)) != 0) {
    *err = "ring_bytes_per_cpu must be a power of two >= " + std::to_string(page);
    return nullptr;
  }
  if (opts.snaplen == 0) {
    *err = "snaplen must be > 0";
    return nullptr;
  }
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) {
    *err = "cannot determine the number of possible CPUs";
    return nullptr;
  }
  im->num_possible_cpus = ncpu;
  std::vector<int> online;
  if (!read_online_cpus(&online, err)) return nullptr;
  for (int c : opts.cpus) {
    if (std::find(online.begin(), online.end(), c) == online.end()) {
      *err = "cpu " + std::to_string(c) + " is not online";
      return nullptr;
    }
  }

  im->skel = tc_capture::open();
  if (!im->skel) {
    *err = std::string("open BPF object: ") + strerror(errno);
    return nullptr;
  }
  auto* ro = im->skel->rodata;
  ro->snaplen = opts.snaplen;
  ro->filter_pid_on = opts.pid.has_value();
  ro->filter_pid = opts.pid.value_or(0);
  ro->filter_uid_on = opts.uid.has_value();
  ro->filter_uid = opts.uid.value_or(0);
  // A threshold the ring can never reach would leave only the poll timeout.
  ro->wakeup_bytes = std::min<uint64_t>(opts.wakeup_bytes, opts.ring_bytes_per_cpu / 8);
  if (opts.attribution) prepare_attribution(im->skel->obj, &im->attr_note);

  bpf_map__set_max_entries(im->skel->maps.rings, ncpu);
  bpf_map__set_max_entries(im->skel->maps.reader_pos, ncpu);
  // The outer map needs an inner-map template at load time; a small ringbuf serves.
  int tmpl = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "ehp_ring_tmpl", 0, 0, uint32_t(page), nullptr);
  if (tmpl < 0) {
    *err = std::string("create ringbuf template: ") + strerror(errno);
    return nullptr;
  }
  bpf_map__set_inner_map_fd(im->skel->maps.rings, tmpl);

  if (opts.before_load &&
      !opts.before_load(im->skel->obj, im->skel->progs.ehp_cap_ingress, im->skel->progs.ehp_cap_egress, err)) {
    close(tmpl);
    if (err->empty()) *err = "before_load hook failed";
    return nullptr;
  }
  int rc = tc_capture::load(im->skel);
  close(tmpl);
  if (rc != 0) {
    *err = std::string("load BPF object: ") + strerror(-rc);
    return nullptr;
  }
  if (!im->create_rings(err)) return nullptr;
  for (const auto& i : im->ifaces)
    if (!im->set_iface_entry(i, err)) return nullptr;
  im->offset_ns = realtime_offset_ns();
  im->offset_refreshed_mono = mono_ns();
  return std::unique_ptr<Capture>(new Capture(std::move(im)));
}

const std::vector<Interface>& Capture::interfaces() const { return impl_->ifaces; }
std::string Capture::attribution_note() const { return impl_->attr_note; }
int Capture::attribution_map_fd() const { return impl_->attr_map_fd(); }
int Capture::ingress_prog_fd() const { return bpf_program__fd(impl_->skel->progs.ehp_cap_ingress); }
int Capture::egress_prog_fd() const { return bpf_program__fd(impl_->skel->progs.ehp_cap_egress); }
bpf_object* Capture::object() const { return impl_->skel->obj; }

bool Capture::attach(std::string* err) {
  std::string dummy;
  if (!err) err = &dummy;
  auto& im = *impl_;
  if (im.attached) return true;
  // Attribution tracepoints first, so sockets opened while TC attaches are already known.
  bpf_program* prog;
  bpf_object__for_each_program(prog, im.skel->obj) {
    if (prog == im.skel->progs.ehp_cap_ingress || prog == im.skel->progs.ehp_cap_egress) continue;
    if (!bpf_program__autoload(prog)) continue;
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      *err = std::string("attach ") + bpf_program__name(prog) + ": " + strerror(errno);
      detach();
      return false;
    }
    im.links.push_back(link);
  }
  im.attached = true;
  // The hooks only learn sockets that act from now on; add the ones already open.
  if (im.opts.attribution && im.attr_map_fd() >= 0) {
    std::string serr;
    long n = seed_attribution(im.attr_map_fd(), &serr);
    if (n < 0) {
      im.attr_errors++;
      im.attr_note += (im.attr_note.empty() ? "" : "; ") + std::string("seeding failed: ") + serr;
    } else {
      im.attr_seeded += uint64_t(n);
      if (n > 0 && !attribution_changed(im.attr_gen_fd(), &serr)) im.attr_errors++;
    }
  }
  for (const auto& i : im.ifaces) {
    if (!im.attach_tc(i, err)) {
      detach();
      return false;
    }
  }
  return true;
}

bool Capture::Impl::set_iface_entry(const Interface& i, std::string* err) {
  uint32_t key = uint32_t(i.ifindex);
  ehp_capture_iface v{i.linktype == 1 ? 14u : 0u, 1};
  int ifmap = key < EHP_CAPTURE_IFINDEX_ARRAY ? bpf_map__fd(skel->maps.ifaces_idx) : bpf_map__fd(skel->maps.ifaces);
  if (bpf_map_update_elem(ifmap, &key, &v, BPF_ANY) != 0) {
    *err = std::string("ifaces map: ") + strerror(errno);
    return false;
  }
  return true;
}

// The TC filters (and the clsact hook if needed) on one interface. On failure the caller removes
// what was attached (detach(), or forget_tc + the hook for add_interface).
bool Capture::Impl::attach_tc(const Interface& i, std::string* err) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = i.ifindex, .attach_point = BPF_TC_INGRESS);
  bool exists = false;
  std::string qerr;
  detail::has_clsact(i.ifindex, &exists, &qerr);  // on error, create and tolerate EEXIST
  int rc = exists ? -EEXIST : bpf_tc_hook_create(&hook);  // creates clsact (both directions)
  if (rc == 0) {
    clsact_created.push_back(i.ifindex);
  } else if (rc == -EEXIST) {
    // Another capture of ours made it (only our filters on it): whichever of us stops last
    // removes it, as the one that created it would have.
    std::vector<detail::TcFilter> in, eg;
    std::string lerr;
    // (A dump lists each priority's classifier once more with handle 0: not a filter.)
    auto ours = [](const detail::TcFilter& f) { return f.handle == 0 ? f.kind == "bpf" : is_our_filter(f); };
    auto real = [](const detail::TcFilter& f) { return f.handle != 0; };
    if (detail::list_clsact_filters(i.ifindex, true, &in, &lerr) &&
        detail::list_clsact_filters(i.ifindex, false, &eg, &lerr) &&
        (std::any_of(in.begin(), in.end(), real) || std::any_of(eg.begin(), eg.end(), real)) &&
        std::all_of(in.begin(), in.end(), ours) && std::all_of(eg.begin(), eg.end(), ours))
      clsact_created.push_back(i.ifindex);
  } else {
    *err = "create clsact on " + i.name + ": " + strerror(-rc);
    return false;
  }
  for (bool ingress : {true, false}) {
    if (ingress && i.loopback) continue;  // its ingress copy would duplicate every packet
    hook.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
    // Run ahead of existing filters: a foreign filter that classifies (u32 classid) or
    // drops ends the chain, and we would never see the packet (tcpdump does). The kernel's
    // automatic priority appends after them, so pick one below the lowest in use; if that
    // is impossible (a different filter kind already holds priority 1), fall back to auto.
    uint32_t prio = 1;
    std::vector<detail::TcFilter> existing;
    std::string lerr;
    if (detail::list_clsact_filters(i.ifindex, ingress, &existing, &lerr)) {
      uint32_t lowest = 0;
      for (const auto& f : existing)
        if (f.priority && (!lowest || f.priority < lowest)) lowest = f.priority;
      if (lowest > 1) prio = lowest - 1;
    }
    bpf_program* p = ingress ? skel->progs.ehp_cap_ingress : skel->progs.ehp_cap_egress;
    LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = bpf_program__fd(p), .priority = prio);
    // Our handle mark; the next number when another capture of ours holds it at this priority.
    const uint32_t base = ingress ? kHandleIngress : kHandleEgress;
    rc = -EEXIST;
    for (uint32_t k = 0; k < 64 && rc == -EEXIST; ++k) {
      o.handle = base | ((uint32_t(getpid()) + k) & 0xffff);
      o.prog_id = 0;
      rc = bpf_tc_attach(&hook, &o);
    }
    if (rc != 0) {
      o.priority = 0;
      o.handle = 0;
      rc = bpf_tc_attach(&hook, &o);
    }
    if (rc != 0) {
      *err = "attach TC " + std::string(ingress ? "ingress" : "egress") + " on " + i.name + ": " + strerror(-rc);
      return false;
    }
    tc.push_back({i.ifindex, ingress, o.handle, o.priority});
  }
  return true;
}

bool Capture::add_interface(const Interface& i, std::string* err) {
  auto& im = *impl_;
  if (!im.attached) {
    *err = "the capture is not attached";
    return false;
  }
  if (!im.set_iface_entry(i, err)) return false;
  if (im.attach_tc(i, err)) {
    im.ifaces.push_back(i);
    return true;
  }
  im.forget_tc(i.ifindex, true);
  return false;
}

void Capture::forget_interface(int ifindex) { impl_->forget_tc(ifindex, false); }

// Drops the bookkeeping of one interface's filters; `remove`: detach them first (and the clsact
// if we made it and it is empty now). Without `remove` (the device is gone, its filters with it)
// nothing is sent: its ifindex may already name another device.
void Capture::Impl::forget_tc(int ifindex, bool remove) {
  for (auto it = tc.begin(); it != tc.end();) {
    if (it->ifindex != ifindex) {
      ++it;
      continue;
    }
    if (remove) {
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = it->ifindex, .attach_point = it->ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
      LIBBPF_OPTS(bpf_tc_opts, o, .handle = it->handle, .priority = it->priority);
      bpf_tc_detach(&hook, &o);
    }
    it = tc.erase(it);
  }
  auto c = std::find(clsact_created.begin(), clsact_created.end(), ifindex);
  if (c != clsact_created.end()) {
    std::vector<detail::TcFilter> in, eg;
    std::string e;
    if (remove && detail::list_clsact_filters(ifindex, true, &in, &e) &&
        detail::list_clsact_filters(ifindex, false, &eg, &e) && in.empty() && eg.empty()) {
      LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                  .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
      bpf_tc_hook_destroy(&hook);
    }
    clsact_created.erase(c);
  }
  // Its map entry: the hash has few slots (ifindexes past the array), and a reused ifindex must
  // not inherit it.
  uint32_t key = uint32_t(ifindex);
  if (key < EHP_CAPTURE_IFINDEX_ARRAY) {
    ehp_capture_iface v{};
    bpf_map_update_elem(bpf_map__fd(skel->maps.ifaces_idx), &key, &v, BPF_ANY);
  } else {
    bpf_map_delete_elem(bpf_map__fd(skel->maps.ifaces), &key);
  }
}

void Capture::detach() {
  auto& im = *impl_;
  for (const auto& t : im.tc) {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = t.ifindex,
                .attach_point = t.ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
    LIBBPF_OPTS(bpf_tc_opts, o, .handle = t.handle, .priority = t.priority);
    bpf_tc_detach(&hook, &o);  // ENOENT (someone removed it) is fine
  }
  im.tc.clear();
  // Remove the clsact hook only if we created it and nobody else has put a filter on it since.
  for (int ifindex : im.clsact_created) {
    std::vector<detail::TcFilter> in, eg;
    std::string e;
    if (!detail::list_clsact_filters(ifindex, true, &in, &e) || !detail::list_clsact_filters(ifindex, false, &eg, &e))
      continue;
    if (!in.empty() || !eg.empty()) continue;
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
    bpf_tc_hook_destroy(&hook);
  }
  im.clsact_created.clear();
  // The tracepoint links: each waits ~0.1 s for the kernel (base/bpf_links.h), and nothing
  // needs them gone before the drain, so they go on another thread while the stop continues.
  if (im.unlink.joinable()) im.unlink.join();
  try {
    im.unlink = std::thread([links = std::move(im.links)]() mutable { destroy_links(links); });
  } catch (...) {
    destroy_links(im.links);
  }
  im.links.clear();
  im.attached = false;
}

void Capture::start() {
  auto& im = *impl_;
  if (im.started) return;
  im.started = true;
  std::vector<int> cpus = im.opts.cpus;
  if (cpus.empty()) {
    std::string e;
    read_online_cpus(&cpus, &e);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  // Ring c goes to the consumer pinned on c; rings of CPUs without a consumer are dealt out
  // round-robin.
  std::vector<std::vector<Ring*>> assign(cpus.size());
  size_t rr = 0;
  for (auto& r : im.rings) {
    auto it = std::find(cpus.begin(), cpus.end(), r->cpu);
    if (it != cpus.end()) {
      assign[it - cpus.begin()].push_back(r.get());
    } else {
      assign[rr++ % cpus.size()].push_back(r.get());
    }
  }
  if (im.opts.attribution && im.attr_map_fd() >= 0) im.housekeeping = std::thread([&im] { im.housekeeping_main(); });
  for (size_t i = 0; i < cpus.size(); i++) {
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    im.event_fds.push_back(efd);
    im.threads.emplace_back([&im, mine = assign[i], cpu = cpus[i], efd] { im.consumer_main(mine, cpu, efd); });
  }
}

void Capture::Impl::housekeeping_main() {
  pthread_setname_np(pthread_self(), "ehp-attrsweep");
  int fd = attr_map_fd();
  std::unique_lock<std::mutex> lk(hk_mu);
  while (!hk_cv.wait_for(lk, std::chrono::seconds(1), [this] { return hk_stop; })) {
    lk.unlock();
    SweepStats ss;
    std::string e;
    if (sweep_attribution(fd, mono_ns(), &ss, &e)) {
      attr_swept += ss.deleted;
      if ((ss.deleted || ss.marked_closed) && !attribution_changed(attr_gen_fd(), &e)) attr_errors++;
    } else {
      attr_errors++;
    }
    lk.lock();
  }
}

// Dekker pairing with next_batch(): the consumer bumps the epoch, then reads the flag; the
// merger sets the flag, then reads the epoch, under mu until it sleeps. One of them sees the
// other, so a publish is never left without a wakeup or a second look.
void Capture::Impl::notify_merger() {
  pub_epoch.fetch_add(1, std::memory_order_seq_cst);
  if (merger_waiting.load(std::memory_order_seq_cst)) {
    std::lock_guard<std::mutex> lk(mu);
    cv.notify_one();
  }
}

// Reads every committed record past read_pos and queues a ref for it. Returns true when the
// ring was drained up to the producer position observed at the start. final_pass: the kernel no
// longer produces; the queue may then grow past its bound so stop() never waits for the merger.
bool Capture::Impl::drain(Ring& r, bool final_pass) {
  uint64_t t_check = mono_ns();
  uint64_t prod = __atomic_load_n(r.producer_pos, __ATOMIC_ACQUIRE);
  Item batch[kPushBatch];
  size_t n = 0;
  uint64_t pos = r.read_pos;
  uint64_t committed_pos = pos;  // everything before it is queued (or was a skipped record)
  bool busy = false, queue_full = false;
  auto flush = [&]() -> bool {
    if (n == 0) return true;
    bool ok = final_pass ? r.queue->enqueue_bulk(*r.ptok, batch, n)
                         : r.queue->try_enqueue_bulk(*r.ptok, batch, n);
    if (!ok) return false;
    uint64_t byts = 0;
    for (size_t i = 0; i < n; i++) byts += batch[i].cap_len;
    r.records.fetch_add(n, std::memory_order_relaxed);
    r.bytes.fetch_add(byts, std::memory_order_relaxed);
    r.last_ts = std::max(r.last_ts, batch[n - 1].ts_mono_ns);
    n = 0;
    return true;
  };
  while (pos < prod) {
    const uint8_t* hdrp = r.data + (pos & r.mask);
    uint32_t len = __atomic_load_n(reinterpret_cast<const uint32_t*>(hdrp), __ATOMIC_ACQUIRE);
    const record::Step st = record::ring_step(len);
    if (st.kind == record::Step::Busy) {
      busy = true;  // reserved, not yet committed: stop here to keep ring order
      break;
    }
    const uint32_t payload = st.payload_bytes;
    if (st.kind == record::Step::Record) {
      if (n == kPushBatch) {
        if (!flush()) {
          queue_full = true;
          break;
        }
        committed_pos = pos;
      }
      uint64_t ts;
      memcpy(&ts, hdrp + kRingHdrBytes + offsetof(ehp_capture_hdr, ts_ns), sizeof(ts));
      uint32_t cap;
      memcpy(&cap, hdrp + kRingHdrBytes + offsetof(ehp_capture_hdr, cap_len), sizeof(cap));
      batch[n++] = Item{ts, pos, payload, cap};
    }
    pos += st.advance_bytes;
  }
  if (!queue_full) {
    if (flush()) {
      committed_pos = pos;
    } else {
      queue_full = true;
    }
  }
  if (queue_full && !r.stalled) {
    // Backpressure: the queue is full. Data stays in the ring (the kernel counts reserve
    // failures if it fills up); count the stall episode.
    r.queue_full.fetch_add(1, std::memory_order_relaxed);
  }
  r.stalled = queue_full;
  r.read_pos = committed_pos;
  __atomic_store_n(r.reader_pos_shared, r.read_pos, __ATOMIC_RELEASE);
  bool drained = !busy && !queue_full && committed_pos == prod;
  uint64_t w = r.last_ts;
  if (drained && t_check > kIdleWatermarkSlackNs) w = std::max(w, t_check - kIdleWatermarkSlackNs);
  if (w > r.watermark_ns.load(std::memory_order_relaxed)) r.watermark_ns.store(w, std::memory_order_release);
  return drained;
}

void Capture::Impl::consumer_main(std::vector<Ring*> mine, int cpu, int efd) {
  char name[16];
  snprintf(name, sizeof name, "ehp-ring%d", cpu);
  pthread_setname_np(pthread_self(), name);
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);  // best effort
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = efd;
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  // Rings edge-triggered: a ringbuf fd polls readable whenever consumer_pos != producer_pos,
  // and consumer_pos only moves when the pump releases records after writing them. Level-
  // triggered, epoll_wait returned at once while any record was in flight and the consumers
  // spun (4.5 us of CPU per packet at 1400 B, perf: epoll_wait/ep_send_events on top;
  // docs/performance.md). Edge-triggered, a consumer wakes on the kernel's threshold wakeup
  // (BPF_RB_FORCE_WAKEUP, see wakeup_bytes) or its poll timeout, as the BPF side intends.
  ev.events = EPOLLIN | EPOLLET;
  for (Ring* r : mine) {
    ev.data.fd = r->map_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, r->map_fd, &ev);
  }
  epoll_event evs[16];
  for (;;) {
    bool final_pass = stopping.load(std::memory_order_acquire);
    bool all_drained = true;
    for (Ring* r : mine) all_drained &= drain(*r, final_pass);
    if (final_pass && all_drained) break;
    notify_merger();
    int timeout = all_drained ? opts.poll_timeout_ms : 1;
    int n = epoll_wait(ep, evs, 16, timeout);
    for (int i = 0; i < n; i++) {
      if (evs[i].data.fd == efd) {
        uint64_t v;
        (void)!read(efd, &v, sizeof(v));
      }
    }
  }
  for (Ring* r : mine) r->watermark_ns.store(kNever, std::memory_order_release);
  notify_merger();
  close(ep);
}

void Capture::stop() {
  auto& im = *impl_;
  if (im.stopped) return;
  im.stopped = true;
  // Take the rings out of the outer map: for map-in-map updates the kernel waits for an RCU
  // grace period (maybe_wait_bpf_programs), so any program still running from before detach
  // has committed its record when this returns. The final drain then sees everything.
  if (im.skel) {
    int outer = bpf_map__fd(im.skel->maps.rings);
    for (auto& r : im.rings) {
      uint32_t key = uint32_t(r->cpu);
      bpf_map_delete_elem(outer, &key);
    }
  }
  im.stopping.store(true, std::memory_order_release);
  for (int efd : im.event_fds) {
    uint64_t one = 1;
    (void)!write(efd, &one, sizeof(one));
  }
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  if (im.housekeeping.joinable()) {
    {
      std::lock_guard<std::mutex> lk(im.hk_mu);
      im.hk_stop = true;
    }
    im.hk_cv.notify_all();
    im.housekeeping.join();
  }
  if (!im.started) {
    // No consumer ever ran: nothing will be delivered.
    for (auto& r : im.rings) r->watermark_ns.store(kNever, std::memory_order_release);
  }
}

void Capture::Impl::refill(Ring& r) {
  while (r.stage_count < kStageCapacity) {
    size_t tail = (r.stage_head + r.stage_count) % kStageCapacity;
    size_t room = std::min(kStageCapacity - r.stage_count, kStageCapacity - tail);
    size_t got = r.queue->try_dequeue_bulk(*r.ctok, r.stage.data() + tail, room);
    if (got == 0) break;
    r.stage_count += got;
  }
}

void Capture::Impl::fill_ref(const Ring& r, uint32_t slot, const Item& it, PacketRef* ref) {
  const uint8_t* rec = r.data + (it.pos & r.mask) + kRingHdrBytes;
  // it.len >= sizeof(ehp_capture_hdr): drain() queues only Record steps.
  const record::View v = *record::decode_record(std::span<const uint8_t>(rec, it.len));
  const ehp_capture_hdr& h = v.hdr;
  if (h.ts_ns < last_mono_delivered) out_of_order++;
  last_mono_delivered = std::max(last_mono_delivered, h.ts_ns);
  // Wall clock = monotonic + offset. Refreshing the offset moves it by measurement jitter and
  // NTP slew (microseconds): hide such tiny steps back so the file stays ordered. A real clock
  // step (settimeofday) is passed through rather than freezing timestamps until it catches up.
  uint64_t wall = uint64_t(int64_t(h.ts_ns) + offset_ns);
  if (wall < last_wall_ns && last_wall_ns - wall < 1'000'000) wall = last_wall_ns;
  last_wall_ns = wall;
  ref->ts_ns = wall;
  ref->ifindex = h.ifindex;
  ref->direction = h.direction;
  ref->wire_len = h.wire_len;
  ref->cap_len = uint32_t(v.frame.size());
  ref->proc.info = h.proc;  // comm NUL-terminated by decode_record
  ref->proc.known = (h.flags & EHP_CAP_F_ATTRIBUTED) != 0;
  ref->data = v.frame.data();
  ref->slot = slot;
  ref->release_pos = it.pos + record::record_bytes(it.len);
  ref->seq = next_seq;
  log[next_seq & (kMaxOutstanding - 1)] = LogEntry{ref->release_pos, slot};
  next_seq++;
}

size_t Capture::Impl::merge(PacketRef* out, size_t max) {
  const size_t nr = rings.size();
  size_t room = kMaxOutstanding - size_t(next_seq - released_seq);
  if (max > room) {
    max = room;
    caller_backpressure++;
    if (max == 0) return 0;
  }
  uint64_t* wm = wm_buf.data();  // per ring: watermark read before that ring's refill
  // Watermark first, then dequeue: everything at or before the watermark is then staged.
  for (size_t i = 0; i < nr; i++) {
    wm[i] = rings[i]->watermark_ns.load(std::memory_order_acquire);
    refill(*rings[i]);
  }
  size_t n = 0;
  while (n < max) {
    int best = -1;
    uint64_t best_ts = kNever, limit = kNever;
    for (size_t i = 0; i < nr; i++) {
      Ring& r = *rings[i];
      if (r.stage_count) {
        uint64_t ts = r.stage[r.stage_head].ts_mono_ns;
        if (best < 0 || ts < best_ts) {
          best = int(i);
          best_ts = ts;
        }
        limit = std::min(limit, ts);
      } else {
        limit = std::min(limit, wm[i]);
      }
    }
    if (best < 0 || best_ts > limit) break;
    Ring& r = *rings[best];
    fill_ref(r, uint32_t(best), r.stage[r.stage_head], &out[n++]);
    r.stage_head = (r.stage_head + 1) % kStageCapacity;
    r.stage_count--;
    if (r.stage_count == 0) {
      wm[best] = r.watermark_ns.load(std::memory_order_acquire);
      refill(r);
    }
  }
  delivered += n;
  return n;
}

bool Capture::Impl::all_done() {
  for (auto& r : rings) {
    if (r->watermark_ns.load(std::memory_order_acquire) != kNever) return false;
    refill(*r);
    if (r->stage_count) return false;
  }
  return true;
}

size_t Capture::next_batch(PacketRef* out, size_t max, int timeout_ms) {
  auto& im = *impl_;
  if (max == 0) return 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
  for (;;) {
    uint64_t now = mono_ns();
    if (now - im.offset_refreshed_mono > 1'000'000'000ull) {
      im.offset_ns = realtime_offset_ns();
      im.offset_refreshed_mono = now;
    }
    const uint64_t seen = im.pub_epoch.load(std::memory_order_seq_cst);
    size_t n = im.merge(out, max);
    if (n) return n;
    if (im.all_done()) return 0;
    auto t = std::chrono::steady_clock::now();
    if (t >= deadline) return 0;
    std::unique_lock<std::mutex> lk(im.mu);
    im.merger_waiting.store(true, std::memory_order_seq_cst);
    // Anything published since `seen` was before our merge or is visible now: look again.
    // Otherwise a consumer that publishes from here on sees the flag and notifies under mu,
    // which we hold until wait_for releases it. (This used to poll every 2 ms instead: ~500
    // wakeups/s of the pump with no traffic at all.)
    if (im.pub_epoch.load(std::memory_order_seq_cst) == seen) im.cv.wait_for(lk, deadline - t);
    im.merger_waiting.store(false, std::memory_order_relaxed);
  }
}

bool Capture::drained() { return impl_->all_done(); }

void Capture::release(const PacketRef& ref) {
  auto& im = *impl_;
  if (ref.seq < im.released_seq || ref.seq >= im.next_seq) return;  // already released / not ours
  for (uint64_t s = im.released_seq; s <= ref.seq; s++) {
    const auto& e = im.log[s & (kMaxOutstanding - 1)];
    if (im.rel_pos[e.slot] == 0) im.rel_dirty.push_back(e.slot);
    im.rel_pos[e.slot] = e.release_pos;  // per ring, positions only grow in delivery order
  }
  im.released_seq = ref.seq + 1;
  for (uint32_t slot : im.rel_dirty) {
    __atomic_store_n(im.rings[slot]->consumer_pos, im.rel_pos[slot], __ATOMIC_RELEASE);
    im.rel_pos[slot] = 0;
  }
  im.rel_dirty.clear();
}

Capture::Stats Capture::stats() const {
  const auto& im = *impl_;
  Stats s;
  for (const auto& r : im.rings) {
    s.records += r->records.load(std::memory_order_relaxed);
    s.bytes += r->bytes.load(std::memory_order_relaxed);
    s.queue_full += r->queue_full.load(std::memory_order_relaxed);
  }
  s.delivered = im.delivered;
  s.out_of_order = im.out_of_order;
  s.caller_backpressure = im.caller_backpressure;
  s.attr_seeded = im.attr_seeded.load();
  s.attr_swept = im.attr_swept.load();
  s.attr_errors = im.attr_errors.load();
  s.per_cpu_reserve_fail.assign(im.num_possible_cpus, 0);
  if (im.skel) {
    std::vector<ehp_capture_counters> v(im.num_possible_cpus);
    uint32_t zero = 0;
    if (bpf_map_lookup_elem(bpf_map__fd(im.skel->maps.counters), &zero, v.data()) == 0) {
      for (int c = 0; c < im.num_possible_cpus; c++) {
        const auto& x = v[c];
        s.per_cpu_reserve_fail[c] = x.reserve_fail;
        s.reserve_fail += x.reserve_fail;
        s.kernel_seen += x.seen;
        s.kernel_records += x.records;
        s.kernel_bytes += x.bytes;
        s.no_ring += x.no_ring;
        s.filtered_out += x.filtered_out;
        s.filtered_proc += x.filtered_proc;
        s.load_fail += x.load_fail;
        s.truncated += x.truncated;
        s.wakeups += x.wakeups;
      }
    }
  }
  return s;
}

namespace {

// prog ids held open by any process (from /proc/*/fdinfo "prog_id:" lines).
std::set<uint32_t> prog_ids_held_open() {
  std::set<uint32_t> ids;
  DIR* proc = opendir("/proc");
  if (!proc) return ids;
  while (dirent* de = readdir(proc)) {
    if (de->d_name[0] < '0' || de->d_name[0] > '9') continue;
    std::string fddir = std::string("/proc/") + de->d_name + "/fdinfo";
    DIR* d = opendir(fddir.c_str());
    if (!d) continue;
    while (dirent* fe = readdir(d)) {
      if (fe->d_name[0] == '.') continue;
      std::ifstream f(fddir + "/" + fe->d_name);
      std::string line;
      while (std::getline(f, line)) {
        if (line.rfind("prog_id:", 0) == 0) {
          ids.insert(uint32_t(std::stoul(line.substr(8))));
          break;
        }
      }
    }
    closedir(d);
  }
  closedir(proc);
  return ids;
}

bool is_our_prog_name(const std::string& bpf_name) {
  for (const char* p : {EHP_CAPTURE_PROG_INGRESS, EHP_CAPTURE_PROG_EGRESS}) {
    std::string n(p);
    if (bpf_name == n || bpf_name.rfind(n + ":", 0) == 0) return true;
  }
  return false;
}

}  // namespace

int remove_stale_filters(const std::vector<std::string>& ifaces, std::string* report, std::string* err) {
  std::string dummy, dummy2;
  if (!report) report = &dummy;
  if (!err) err = &dummy2;
  std::vector<std::pair<std::string, int>> devs;
  if (ifaces.empty()) {
    struct if_nameindex* ni = ::if_nameindex();
    if (!ni) {
      *err = std::string("if_nameindex: ") + strerror(errno);
      return -1;
    }
    for (auto* p = ni; p->if_index; p++) devs.emplace_back(p->if_name, int(p->if_index));
    if_freenameindex(ni);
  } else {
    for (const auto& n : ifaces) {
      unsigned idx = if_nametoindex(n.c_str());
      if (!idx) {
        *err = "unknown interface '" + n + "'";
        return -1;
      }
      devs.emplace_back(n, int(idx));
    }
  }
  std::set<uint32_t> held;
  bool held_loaded = false;
  int removed = 0;
  for (const auto& [name, ifindex] : devs) {
    for (bool ingress : {true, false}) {
      std::vector<detail::TcFilter> fs;
      if (!detail::list_clsact_filters(ifindex, ingress, &fs, err)) return -1;
      for (const auto& f : fs) {
        if (f.kind != "bpf" || f.handle == 0 || !is_our_prog_name(f.bpf_name)) continue;
        if (!held_loaded) {
          held = prog_ids_held_open();
          held_loaded = true;
        }
        if (held.count(f.bpf_prog_id)) continue;  // a live capture owns it
        LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
        LIBBPF_OPTS(bpf_tc_opts, o, .handle = f.handle, .priority = f.priority);
        int rc = bpf_tc_detach(&hook, &o);
        if (rc != 0) {
          *err = "remove stale filter on " + name + ": " + strerror(-rc);
          return -1;
        }
        removed++;
        *report += "removed stale " + std::string(ingress ? "ingress" : "egress") + " filter " + f.bpf_name +
                   " (prio " + std::to_string(f.priority) + ", handle " + std::to_string(f.handle) + ") on " +
                   name + "\n";
      }
    }
  }
  return removed;
}

}  // namespace ehp::capture
