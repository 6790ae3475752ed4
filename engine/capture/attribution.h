// SPDX-License-Identifier: BSD-2-Clause
// Userspace side of socket -> process attribution (kernel side: bpf/attribution.h, layouts:
// bpf/abi/attribution_abi.h). The BPF hooks only see sockets that do something after the
// capture starts; seed_attribution() adds the ones already open, sweep_attribution() retires
// entries whose socket vanished without a TCP state change (UDP has no close tracepoint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "abi/attribution_abi.h"

struct bpf_object;

namespace ehp::capture {

// Which flavour of the UDP syscall hooks an object uses (see bpf/attribution.h).
enum class SyscallHooks {
  kRaw,         // tp_btf/sys_enter + sys_exit: always attachable, a BPF call on every syscall
  kPerSyscall,  // tracepoint/syscalls/<5 syscalls>: cheaper for the host, needs tracefs
};

// Optional; call between open and load of any object that includes bpf/attribution.h (e.g. the
// tc_capture skeleton: prepare_attribution(skel->obj, &note)). If tracefs is available (mounting
// it at /sys/kernel/tracing if needed) it switches the object to the per-syscall tracepoints,
// else leaves the raw ones, which the skeleton attaches without tracefs. Never fails the
// capture; `note` (may be null) says what was chosen and why.
SyscallHooks prepare_attribution(bpf_object* obj, std::string* note);

// Pre-fills `map_fd` (the ehp_attr_flows map) with every TCP/UDP socket open right now, in every
// network namespace that has a process: /proc/<pid>/fd socket:[inode] -> /proc/<pid>/net/{tcp,
// tcp6,udp,udp6} -> key; pid/uid/gid/comm from /proc/<pid>. Listening TCP and unconnected UDP
// sockets become wildcard entries. Entries the BPF hooks already wrote are kept (BPF_NOEXIST).
// Returns the number of entries written, or -1 with *err set.
long seed_attribution(int map_fd, std::string* err);

struct SweepStats {
  size_t entries = 0;         // entries visited
  size_t marked_closed = 0;   // open entries whose socket or process is gone
  size_t batch_reads = 0;     // bpf_map_lookup_batch calls (0: the per-entry fallback ran)
  size_t deleted = 0;         // closed longer than EHP_ATTR_GRACE_NS
};

// Walks the map once: marks entries whose owning process no longer holds the socket as closed
// (closed_ns = now, so they keep matching for the grace period), deletes entries closed longer
// than EHP_ATTR_GRACE_NS. Call it every second or two (e.g. from the stats tick); it reads /proc
// once per distinct pid. `now_mono_ns` is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
// Liveness is judged only when running in the initial pid namespace (BPF records global pids)
// and for processes whose /proc/<pid>/fd is readable; otherwise entries are left to TCP close
// and the LRU.
// Returns false with *err set if the map can't be read.
bool sweep_attribution(int map_fd, uint64_t now_mono_ns, SweepStats* stats, std::string* err);

// Tells the TC programs' per-CPU lookup cache (bpf/attribution.h, ehp_attr_cache) that
// userspace changed the map: bumps the userspace slot of the `ehp_attr_gen` ARRAY (gen_fd).
// Call it after seed_attribution()/sweep_attribution() wrote anything, and after any direct
// map update. One writer at a time. Returns false with *err set on a bad map.
bool attribution_changed(int gen_fd, std::string* err = nullptr);

// ---- parsing helpers, exposed for tests ----

// One row of /proc/net/{tcp,tcp6,udp,udp6}.
struct ProcNetSocket {
  uint8_t local_addr[16] = {};   // v4-mapped for IPv4 rows
  uint8_t remote_addr[16] = {};
  uint16_t local_port = 0;       // host byte order
  uint16_t remote_port = 0;
  int state = 0;                 // TCP state number (0x0A = LISTEN), 7 for idle UDP
  uint64_t inode = 0;
};

// Parses one data row (not the header). `v6` selects the 32-hex-digit address format.
bool parse_proc_net_line(std::string_view line, bool v6, ProcNetSocket* out);

// Map key for a /proc/net row: exact 5-tuple if connected, else the (proto, lport) wildcard.
ehp_attr_key key_for_socket(const ProcNetSocket& s, uint8_t proto);

// Fills pid/tid/uid/gid/comm of a process from /proc. False if the process is gone.
bool read_proc_info(int pid, ehp_proc_info* out);

}  // namespace ehp::capture
