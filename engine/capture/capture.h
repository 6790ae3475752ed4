// SPDX-License-Identifier: BSD-2-Clause
// Live capture fast path: TC ingress/egress (bpf/tc_capture.bpf.c) -> one BPF ringbuf per CPU
// -> pinned consumer threads -> one lock-free queue per ring -> a time-ordered merge.
//
// Zero-copy contract: PacketRef::data points into the mmapped ring. The ring space stays
// reserved until release(); the caller copies the bytes once (into its output buffer) and then
// releases. release(ref) frees ref and everything delivered before it, on every ring.
//
// Threads: consumer threads are internal. next_batch/release are called by ONE thread (the
// merge has no locks); open/attach/start/detach/stop/stats from the owning thread.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/process.h"

struct bpf_object;
struct bpf_program;

namespace ehp::capture {

struct Options {
  std::vector<std::string> ifaces;
  // CPUs to run (and pin) consumer threads on; empty = all online. Every online CPU has a
  // ring; rings are spread over the consumer threads (ring c goes to the consumer on c if any).
  std::vector<int> cpus;
  uint32_t snaplen = 262144;
  uint32_t ring_bytes_per_cpu = 32u << 20;  // power of two, >= page size
  std::optional<uint32_t> pid, uid;         // capture only packets attributed to this pid/uid
  // Called between open and load (e.g. ehp::filter::install patches the filter stub here).
  std::function<bool(struct bpf_object*, struct bpf_program* ingress, struct bpf_program* egress,
                     std::string* err)>
      before_load;
  // Unread bytes in a ring that trigger a consumer wakeup (edge-triggered in BPF); below it the
  // consumer drains on its poll timeout. A wakeup is an irq_work self-IPI (an APIC MSR write,
  // i.e. a VM exit here): at 256 KiB they were 7.7% of the TC program's time at 1400 B x 2
  // senders (perf). At 4 MiB (capped at ring/8) the 10 ms poll timeout drains first at up to
  // ~400 MB/s per CPU, and the threshold only speeds up a consumer that fell behind.
  uint32_t wakeup_bytes = 4u << 20;
  int poll_timeout_ms = 10;
  // Socket -> process attribution housekeeping (capture/attribution.h): pick the syscall hooks
  // before load, seed the flow map with sockets already open at attach(), sweep closed entries
  // every second while started. The BPF lookup itself always runs.
  bool attribution = true;
};

struct Interface {
  std::string name;
  int ifindex = 0;
  uint16_t linktype = 1;  // 1 Ethernet, 101 RAW for devices without L2 (ARPHRD_NONE, tun, wireguard)
  // A loopback device hands every frame it sends straight back to itself, so each packet
  // crosses its egress and then its ingress hook. Only egress is attached there: one copy per
  // packet (libpcap also keeps one), taken in the sender's context where skb->sk still names
  // the socket, so a connection's first packet (a client's SYN, a new UDP socket's first
  // datagram) is attributed to its sender as on any other device (ehp_attr_from_sock).
  bool loopback = false;
};

struct PacketRef {
  uint64_t ts_ns;  // wall clock (CLOCK_REALTIME ns)
  uint32_t ifindex;
  uint8_t direction;  // 0 in, 1 out
  uint32_t wire_len, cap_len;
  Process proc;  // who sent it, or its local receiver (proc.known = false: nobody named)
  const uint8_t* data;  // cap_len bytes in ring memory, valid until release()
  uint32_t slot;        // ring index (internal)
  uint64_t release_pos; // ring position after this record (internal)
  uint64_t seq;         // delivery sequence number: release() frees every ref up to this one
};

class Capture {
 public:
  // Resolves ifaces (clear error for unknown/down), opens the skeleton, runs before_load,
  // loads, creates the per-CPU rings. On failure returns nullptr with *err set; nothing is left.
  static std::unique_ptr<Capture> open(const Options& opts, std::string* err);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  const std::vector<Interface>& interfaces() const;
  // Tracepoints (attribution) first, then the TC filters. On failure everything attached so
  // far is removed again.
  bool attach(std::string* err);
  void start();  // one pinned consumer thread per CPU in Options::cpus

  // Time-ordered merge across all rings: fills up to max refs in global timestamp order, only
  // those no later than the minimum watermark of all rings, waiting up to timeout_ms for the
  // first one. Returns 0 on timeout, and 0 immediately once stopped and fully drained.
  // At most kMaxOutstanding refs may be delivered and not yet released; beyond that
  // next_batch returns 0 until the caller releases (counted in Stats::caller_backpressure).
  size_t next_batch(PacketRef* out, size_t max, int timeout_ms);
  // Done with `ref` and with every ref delivered before it (in next_batch order, across all
  // rings): their ring space may be reused. Releasing only the last ref of a batch is enough.
  void release(const PacketRef& ref);
  // True once stop() has completed and next_batch has delivered every record: next_batch will
  // only return 0 from now on. Call from the next_batch thread. A pump loop should end on
  // `n == 0 && drained()`, not on its own stop flag (records may still be draining).
  bool drained();
  static constexpr size_t kMaxOutstanding = 1u << 17;

  void detach();  // removes the TC filters (and the clsact hook if we created it and it is empty) and links
  void stop();    // after detach: waits for running programs, drains rings, joins threads

  struct Stats {
    uint64_t records = 0, bytes = 0;  // read from the rings by consumers
    uint64_t reserve_fail = 0;        // kernel: ring full, summed over CPUs
    uint64_t queue_full = 0;          // consumer stalled on a full queue (backpressure episodes)
    std::vector<uint64_t> per_cpu_reserve_fail;
    // Kernel counters summed over CPUs (see ehp_capture_counters).
    uint64_t kernel_seen = 0, kernel_records = 0, kernel_bytes = 0, no_ring = 0, filtered_out = 0,
             filtered_proc = 0, load_fail = 0, truncated = 0, wakeups = 0;
    uint64_t delivered = 0;     // refs returned by next_batch
    uint64_t out_of_order = 0;  // a record older than one already delivered (should stay 0)
    uint64_t caller_backpressure = 0;  // next_batch calls cut short by kMaxOutstanding
    uint64_t attr_seeded = 0, attr_swept = 0, attr_errors = 0;  // attribution housekeeping
  };
  Stats stats() const;

  // What prepare_attribution chose (and any seeding/sweep error), for a startup log line.
  std::string attribution_note() const;

  // The socket -> process map (abi/attribution_abi.h), for lookups by the hold-back's KeyPolicy.
  int attribution_map_fd() const;
  // For tests and diagnostics.
  int ingress_prog_fd() const;
  int egress_prog_fd() const;
  struct bpf_object* object() const;

  struct Impl;

 private:
  explicit Capture(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Removes TC filters left behind by a killed run: filters named ehp_cap_ingress/ehp_cap_egress
// whose program no live process holds open. ifaces empty = every interface in this netns.
// Appends one line per removed filter to *report. Returns the number removed, -1 on error.
int remove_stale_filters(const std::vector<std::string>& ifaces, std::string* report,
                         std::string* err);

// The link type an interface's frames have at TC (1 Ethernet, 101 RAW): the one rule used by
// the capture (Interface::linktype, the BPF side's L2 length), the filter compiler, the IDBs
// and Wireshark's extcap --extcap-dlts.
uint16_t interface_linktype(const std::string& name);

// `-i any` (as tcpdump's): every interface that is up now and hands TC an Ethernet header (lo
// included), in /proc/net/dev order. Interfaces of another link type (tun, wireguard, ipip: raw
// IP) would make a section that libpcap refuses; each is named in *skipped instead. Interfaces
// that come up later are not added.
std::vector<std::string> any_interfaces(std::vector<std::string>* skipped);

// SIGKILL leaves a capture no chance to remove its TC filters (nor the clsact it created).
// Before attaching: removes ours on these interfaces that no live process holds
// (remove_stale_filters), and the clsact too when that left it without filters (the killed run
// had created it; a clean run removes its own). Appends one line per action or warning.
void remove_leftovers(const std::vector<Interface>& ifaces, std::vector<std::string>* lines);

}  // namespace ehp::capture
