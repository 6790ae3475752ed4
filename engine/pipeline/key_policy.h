// SPDX-License-Identifier: BSD-2-Clause
// Which TLS sessions can get keys on this host, so that only those are held (issue 15;
// docs/architecture.md, "What is held").
//
// Rule: a session can get keys when one of its ends is a process on this host that maps a file
// whose TLS stack is traced (TlsProbe::traced_files(): a libssl, an executable with OpenSSL
// linked in, ...), within -p/-u. The ends are named by the capture's socket attribution: the
// packet's own process first, then the attribution map looked up for both ends of the tuple
// (a local client talking to a local server: either may be the one whose keys come).
// Forwarded and bridged traffic has no local socket, so no end is named and nothing is held.
//
// A process is asked about twice: the kernel's mark of processes whose traced TLS code ran in the
// last 30 s (bpf/openssl.bpf.c ehp_tls_tgids: handshake starts and logged secrets), which still
// answers when the process has exited by the time its ClientHello reaches this stage (a client
// like curl lives ~15 ms; packets reach the hold-back ~10 ms after the wire), then its
// /proc/PID/maps (a server waiting for its first handshake).
// What it can miss (counted as HoldBackStats::keyed_not_held when keys come anyway): a socket
// the attribution has not seen yet when its first hello is captured, a process that maps its TLS
// library only after that, a socket handed to another process, and a client whose stack is
// traced through its secret logger only (OpenSSL linked into an executable, BoringSSL) that
// exits before its ClientHello is looked at: its first secret is logged after the ServerHello. A process's answer is cached
// (yes for 10 s, no for 1 s), so a pid reused within that time may be held needlessly (a delay,
// not a loss). A local process whose maps cannot be read (after -Z drops privileges, another
// user's process) is held: the rule errs towards a delay, never towards a lost session.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "correlate/holdback.h"
#include "tlsprobe/tlsprobe.h"

namespace ehp::pipeline {

class TracedProcessPolicy final : public correlate::KeyPolicy {
 public:
  struct Options {
    // Traced files; empty: nothing is keyable. Refreshed from `probe` when it traces more after
    // the start (TlsProbe::files_generation()).
    std::vector<tlsprobe::TlsProbe::FileId> files;
    std::optional<uint32_t> pid, uid;               // -p / -u: the probe gives no other keys
    int attr_map_fd = -1;                           // the capture's ehp_attr_flows, -1: none
    // The probe's kernel mark of processes that ran a traced handshake (TlsProbe::process_seen):
    // answers for a short-lived client that has exited before its ClientHello is looked at.
    const tlsprobe::TlsProbe* probe = nullptr;
    std::string proc_root = "/proc";
  };
  explicit TracedProcessPolicy(Options o) : o_(std::move(o)) {}

  bool keyable(const correlate::PacketMeta& meta, const ehp::net::FrameInfo& fi) override;

  struct Stats {
    uint64_t asked = 0, keyable = 0;
    uint64_t maps_read = 0;       // /proc/PID/maps reads (cache misses)
    uint64_t maps_too_large = 0;  // maps past the read cap: taken as keyable (held, to be safe)
    uint64_t maps_unreadable = 0; // EACCES/EPERM (after -Z): taken as keyable (held, to be safe)
  };
  Stats stats() const { return st_; }

  // True when the text of /proc/PID/maps names one of `files` (exposed for unit tests).
  static bool maps_name_any(std::string_view maps, const std::vector<tlsprobe::TlsProbe::FileId>& files);

 private:
  bool process_gives_keys(uint32_t pid, uint32_t uid);
  Options o_;
  Stats st_;
  struct Cached {
    bool yes;
    uint64_t until_ns;
  };
  std::unordered_map<uint32_t, Cached> cache_;
  uint64_t files_gen_ = 0;  // o_.probe->files_generation() that o_.files was copied at
};

}  // namespace ehp::pipeline
