// SPDX-License-Identifier: BSD-2-Clause
// Seeding and sweeping of the attribution map; see attribution.h.
#include "attribution.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace ehp::capture {
namespace {

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr int kTcpListen = 0x0A;

struct NetFile {
  const char* name;
  uint8_t proto;
  bool v6;
};
constexpr NetFile kNetFiles[] = {
    {"tcp", kTcp, false}, {"tcp6", kTcp, true}, {"udp", kUdp, false}, {"udp6", kUdp, true}};

bool parse_hex(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 16);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parse_dec(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, 10);
  return ec == std::errc() && p == s.data() + s.size();
}

// The kernel prints each 32-bit word of the address with %08X of its in-memory (network order)
// value, i.e. byte-swapped on little-endian. Copying the parsed native word back to memory
// restores network order on the same host.
bool parse_addr_port(std::string_view field, bool v6, uint8_t addr[16], uint16_t* port) {
  size_t colon = field.find(':');
  size_t hex_len = v6 ? 32 : 8;
  if (colon != hex_len) return false;
  uint8_t raw[16] = {};
  for (size_t w = 0; w < hex_len / 8; ++w) {
    uint64_t word;
    if (!parse_hex(field.substr(w * 8, 8), &word)) return false;
    uint32_t w32 = static_cast<uint32_t>(word);
    std::memcpy(raw + w * 4, &w32, 4);
  }
  if (v6) {
    std::memcpy(addr, raw, 16);
  } else {
    std::memset(addr, 0, 10);
    addr[10] = addr[11] = 0xff;
    std::memcpy(addr + 12, raw, 4);
  }
  uint64_t p;
  if (!parse_hex(field.substr(colon + 1), &p) || p > 0xffff) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

std::string read_small_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool is_all_digits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

enum class FdScan { kOk, kGone, kUnreadable };

// Socket inodes held open by `pid` (from /proc/<pid>/fd -> "socket:[N]").
FdScan scan_socket_inodes(int pid, std::unordered_set<uint64_t>* out) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (!d) return (errno == ENOENT || errno == ESRCH) ? FdScan::kGone : FdScan::kUnreadable;
  char target[64];
  while (dirent* e = readdir(d)) {
    if (!is_all_digits(e->d_name)) continue;
    std::string link = dir + "/" + e->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 8) continue;
    target[n] = 0;
    std::string_view t(target, static_cast<size_t>(n));
    if (t.substr(0, 8) != "socket:[" || t.back() != ']') continue;
    uint64_t ino;
    if (parse_dec(t.substr(8, t.size() - 9), &ino)) out->insert(ino);
  }
  closedir(d);
  return FdScan::kOk;
}

bool socket_inodes_of(int pid, std::unordered_set<uint64_t>* out) {
  return scan_socket_inodes(pid, out) == FdScan::kOk;
}

// BPF records kernel (init namespace) pids. Only there do they name our /proc entries; in a
// nested pid namespace (NSpid lists several ids) the sweeper must not judge liveness by pid.
bool in_init_pid_namespace() {
  std::string status = read_small_file("/proc/self/status");
  size_t p = status.find("\nNSpid:");
  if (p == std::string::npos) return true;  // kernel without NSpid: no nesting info, assume init
  size_t e = status.find('\n', p + 1);
  std::string_view line(status.data() + p + 7, (e == std::string::npos ? status.size() : e) - (p + 7));
  size_t ids = 0;
  bool in_id = false;
  for (char c : line) {
    bool digit = c >= '0' && c <= '9';
    if (digit && !in_id) ++ids;
    in_id = digit;
  }
  return ids <= 1;
}

uint64_t netns_of(int pid) {
  struct stat st;
  std::string p = "/proc/" + std::to_string(pid) + "/ns/net";
  if (stat(p.c_str(), &st) != 0) return 0;
  return st.st_ino;
}

// Rows of /proc/<pid>/net/* (the sockets of that pid's network namespace), per proto.
struct NetnsSockets {
  std::vector<std::pair<uint8_t, ProcNetSocket>> rows;
};

NetnsSockets read_netns_sockets(int pid) {
  NetnsSockets out;
  for (const NetFile& nf : kNetFiles) {
    std::string text = read_small_file("/proc/" + std::to_string(pid) + "/net/" + nf.name);
    std::string_view rest(text);
    bool header = true;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (header) {
        header = false;
        continue;
      }
      ProcNetSocket s;
      if (parse_proc_net_line(line, nf.v6, &s) && s.inode != 0) out.rows.emplace_back(nf.proto, s);
    }
  }
  return out;
}

// The tracefs directory libbpf 1.1 will use to resolve tracepoint ids: the debugfs path when it
// exists, else /sys/kernel/tracing.
std::string libbpf_tracefs_dir() {
  if (access("/sys/kernel/debug/tracing", F_OK) == 0) return "/sys/kernel/debug/tracing";
  return "/sys/kernel/tracing";
}

bool syscall_tracepoints_visible() {
  return access((libbpf_tracefs_dir() + "/events/syscalls/sys_exit_bind/id").c_str(), R_OK) == 0;
}

constexpr const char* kPerSyscallProgs[] = {"ehp_attr_tp_bind", "ehp_attr_tp_connect", "ehp_attr_tp_sendto",
                                            "ehp_attr_tp_sendmsg", "ehp_attr_tp_sendmmsg"};
constexpr const char* kRawProgs[] = {"ehp_attr_sys_enter", "ehp_attr_sys_exit"};

}  // namespace

SyscallHooks prepare_attribution(bpf_object* obj, std::string* note) {
  auto say = [&](const std::string& s) {
    if (note) *note = s;
  };
  if (!obj) {
    say("no object");
    return SyscallHooks::kRaw;
  }
  for (const char* name : kPerSyscallProgs) {
    if (!bpf_object__find_program_by_name(obj, name)) {
      say(std::string("object lacks ") + name + "; keeping raw syscall hooks");
      return SyscallHooks::kRaw;
    }
  }
  if (!syscall_tracepoints_visible() && access("/sys/kernel/debug/tracing", F_OK) != 0)
    mount("nodev", "/sys/kernel/tracing", "tracefs", 0, nullptr);  // failure -> raw below
  if (!syscall_tracepoints_visible()) {
    say("tracefs unavailable (" + libbpf_tracefs_dir() + "); using raw sys_enter/sys_exit hooks");
    return SyscallHooks::kRaw;
  }
  for (const char* name : kPerSyscallProgs)
    bpf_program__set_autoload(bpf_object__find_program_by_name(obj, name), true);
  for (const char* name : kRawProgs)
    if (bpf_program* p = bpf_object__find_program_by_name(obj, name)) bpf_program__set_autoload(p, false);
  say("per-syscall tracepoints via " + libbpf_tracefs_dir());
  return SyscallHooks::kPerSyscall;
}

bool parse_proc_net_line(std::string_view line, bool v6, ProcNetSocket* out) {
  // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt   uid  timeout inode ..."
  std::string_view f[10];
  size_t n = 0;
  size_t i = 0;
  while (n < 10) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    f[n++] = line.substr(i, j - i);
    i = j;
  }
  if (n < 10 || f[0].empty() || f[0].back() != ':') return false;
  ProcNetSocket s;
  if (!parse_addr_port(f[1], v6, s.local_addr, &s.local_port)) return false;
  if (!parse_addr_port(f[2], v6, s.remote_addr, &s.remote_port)) return false;
  uint64_t st, ino;
  if (!parse_hex(f[3], &st) || !parse_dec(f[9], &ino)) return false;
  s.state = static_cast<int>(st);
  s.inode = ino;
  *out = s;
  return true;
}

ehp_attr_key key_for_socket(const ProcNetSocket& s, uint8_t proto) {
  ehp_attr_key k{};
  k.proto = proto;
  k.local_port = htons(s.local_port);
  bool wildcard = s.remote_port == 0 || (proto == kTcp && s.state == kTcpListen);
  if (!wildcard) {
    k.remote_port = htons(s.remote_port);
    std::memcpy(k.local_addr, s.local_addr, 16);
    std::memcpy(k.remote_addr, s.remote_addr, 16);
  }
  return k;
}

bool read_proc_info(int pid, ehp_proc_info* out) {
  std::string base = "/proc/" + std::to_string(pid);
  std::string status = read_small_file(base + "/status");
  if (status.empty()) return false;
  ehp_proc_info info{};
  info.pid = info.tid = static_cast<uint32_t>(pid);
  auto first_field = [&](std::string_view tag, uint32_t* v) {
    size_t p = status.find(tag);
    if (p == std::string::npos) return;
    p += tag.size();
    while (p < status.size() && (status[p] == ' ' || status[p] == '\t')) ++p;
    size_t e = p;
    while (e < status.size() && status[e] >= '0' && status[e] <= '9') ++e;
    uint64_t x;
    if (parse_dec(std::string_view(status).substr(p, e - p), &x)) *v = static_cast<uint32_t>(x);
  };
  first_field("\nUid:", &info.uid);  // real uid, like bpf_get_current_uid_gid
  first_field("\nGid:", &info.gid);
  std::string comm = read_small_file(base + "/comm");
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  std::memcpy(info.comm, comm.data(), std::min(comm.size(), sizeof(info.comm) - 1));
  *out = info;
  return true;
}

long seed_attribution(int map_fd, std::string* err) {
  // Check the map before walking /proc: on a host where no process owns a TCP/UDP socket,
  // nothing would be written and a bad map would otherwise go unnoticed.
  bpf_map_info info{};
  uint32_t info_len = sizeof(info);
  if (map_fd < 0 || bpf_obj_get_info_by_fd(map_fd, &info, &info_len) != 0) {
    if (err) *err = "attribution map: not a BPF map (fd " + std::to_string(map_fd) + ")";
    return -1;
  }
  if (info.key_size != sizeof(ehp_attr_key) || info.value_size != sizeof(ehp_attr_value)) {
    if (err) *err = "attribution map: key/value sizes " + std::to_string(info.key_size) + "/" +
                    std::to_string(info.value_size) + " do not match the ABI";
    return -1;
  }
  DIR* proc = opendir("/proc");
  if (!proc) {
    if (err) *err = std::string("opendir /proc: ") + strerror(errno);
    return -1;
  }
  // inode -> owning pid (first seen), and one pid per network namespace to read its tables.
  std::unordered_map<uint64_t, int> owner;
  std::unordered_map<uint64_t, int> netns_pid;
  while (dirent* e = readdir(proc)) {
    if (!is_all_digits(e->d_name)) continue;
    int pid = atoi(e->d_name);
    std::unordered_set<uint64_t> inodes;
    if (!socket_inodes_of(pid, &inodes) || inodes.empty()) continue;
    for (uint64_t ino : inodes) owner.emplace(ino, pid);
    uint64_t ns = netns_of(pid);
    if (ns) netns_pid.emplace(ns, pid);
  }
  closedir(proc);

  long written = 0;
  std::unordered_map<int, ehp_proc_info> infos;
  for (const auto& [ns, ns_pid] : netns_pid) {
    NetnsSockets socks = read_netns_sockets(ns_pid);
    for (const auto& [proto, s] : socks.rows) {
      auto it = owner.find(s.inode);
      if (it == owner.end()) continue;
      auto inf = infos.find(it->second);
      if (inf == infos.end()) {
        ehp_proc_info pi;
        if (!read_proc_info(it->second, &pi)) continue;
        inf = infos.emplace(it->second, pi).first;
      }
      if (s.local_port == 0) continue;
      ehp_attr_key key = key_for_socket(s, proto);
      ehp_attr_value v{};
      v.proc = inf->second;
      v.sock_ino = s.inode;
      v.source = EHP_ATTR_SRC_SEED;
      if (bpf_map_update_elem(map_fd, &key, &v, BPF_NOEXIST) == 0) {
        ++written;
      } else if (errno != EEXIST) {
        if (err) *err = std::string("bpf_map_update_elem(attribution): ") + strerror(errno);
        return -1;
      }
    }
  }
  return written;
}

bool attribution_changed(int gen_fd, std::string* err) {
  uint32_t key = 1;  // [0] is the BPF side's (atomic adds), [1] ours
  uint64_t v = 0;
  if (bpf_map_lookup_elem(gen_fd, &key, &v) != 0) {
    if (err) *err = std::string("attribution generation map: ") + strerror(errno);
    return false;
  }
  v++;
  if (bpf_map_update_elem(gen_fd, &key, &v, BPF_ANY) != 0) {
    if (err) *err = std::string("attribution generation map: ") + strerror(errno);
    return false;
  }
  return true;
}

bool sweep_attribution(int map_fd, uint64_t now_mono_ns, SweepStats* stats, std::string* err) {
  SweepStats local;
  SweepStats& st = stats ? *stats : local;
  st = SweepStats{};

  // Per-sweep caches: a pid's socket inodes, and its (proto, local port) set for entries that
  // carry no inode (the ones TC wrote for a first SYN/datagram).
  const bool judge_liveness = in_init_pid_namespace();
  struct PidState {
    FdScan scan = FdScan::kGone;
    std::unordered_set<uint64_t> inodes;
    bool ports_loaded = false;
    std::set<std::pair<uint8_t, uint16_t>> ports;  // local port in network order
  };
  std::unordered_map<uint32_t, PidState> pids;
  auto pid_state = [&](uint32_t pid) -> PidState& {
    auto it = pids.find(pid);
    if (it != pids.end()) return it->second;
    PidState ps;
    ps.scan = pid == 0 ? FdScan::kGone : scan_socket_inodes(static_cast<int>(pid), &ps.inodes);
    return pids.emplace(pid, std::move(ps)).first->second;
  };

  std::vector<ehp_attr_key> to_delete;
  // The entries, read in batches (one syscall per kBatch entries instead of two per entry:
  // at 800 new connections/s the per-entry walk was most of this thread's CPU). Falls back to
  // get_next_key + lookup where batch reads are refused (old kernels; a hash bucket longer
  // than the batch: ENOSPC).
  constexpr uint32_t kBatch = 512;
  std::vector<ehp_attr_key> keys(kBatch);
  std::vector<ehp_attr_value> vals(kBatch);
  std::vector<std::pair<ehp_attr_key, ehp_attr_value>> all;
  {
    uint64_t token = 0;
    bool first = true, batched = true;
    for (;;) {
      uint32_t count = kBatch;
      int rc = bpf_map_lookup_batch(map_fd, first ? nullptr : &token, &token, keys.data(), vals.data(),
                                    &count, nullptr);
      const int e = rc ? errno : 0;
      if (rc && e != ENOENT) {
        batched = false;
        break;
      }
      for (uint32_t i = 0; i < count; ++i) all.emplace_back(keys[i], vals[i]);
      st.batch_reads++;
      if (e == ENOENT) break;  // that was the last batch
      first = false;
    }
    if (!batched) {
      all.clear();
      st.batch_reads = 0;
      ehp_attr_key key{}, next{};
      bool first_key = true;
      while (true) {
        int rc = first_key ? bpf_map_get_next_key(map_fd, nullptr, &next)
                           : bpf_map_get_next_key(map_fd, &key, &next);
        if (rc != 0) {
          if (errno == ENOENT) break;
          if (err) *err = std::string("bpf_map_get_next_key(attribution): ") + strerror(errno);
          return false;
        }
        first_key = false;
        key = next;
        ehp_attr_value v;
        if (bpf_map_lookup_elem(map_fd, &key, &v) != 0) continue;  // evicted meanwhile
        all.emplace_back(key, v);
      }
    }
  }
  for (auto& [key, v] : all) {
    ++st.entries;
    if (v.closed_ns) {
      if (now_mono_ns > v.closed_ns && now_mono_ns - v.closed_ns > EHP_ATTR_GRACE_NS)
        to_delete.push_back(key);
      continue;
    }
    if (!judge_liveness) continue;
    PidState& ps = pid_state(v.proc.pid);
    if (ps.scan == FdScan::kUnreadable) continue;  // can't tell: leave it to close/LRU
    bool alive = ps.scan == FdScan::kOk;
    if (alive && v.sock_ino) {
      alive = ps.inodes.count(v.sock_ino) != 0;
    } else if (alive) {
      if (!ps.ports_loaded) {
        ps.ports_loaded = true;
        NetnsSockets socks = read_netns_sockets(static_cast<int>(v.proc.pid));
        for (const auto& [proto, s] : socks.rows)
          if (ps.inodes.count(s.inode)) ps.ports.emplace(proto, htons(s.local_port));
      }
      alive = ps.ports.count({key.proto, key.local_port}) != 0;
    }
    if (alive) continue;
    // BPF_EXIST: if the hooks replaced the entry meanwhile, we overwrite their proc with the
    // old one at worst until the owner's next send/recv rewrites it (closed entries are
    // always rewritten by the hooks).
    v.closed_ns = now_mono_ns;
    if (bpf_map_update_elem(map_fd, &key, &v, BPF_EXIST) == 0) ++st.marked_closed;
  }
  for (const ehp_attr_key& k : to_delete)
    if (bpf_map_delete_elem(map_fd, &k) == 0) ++st.deleted;
  return true;
}

}  // namespace ehp::capture
