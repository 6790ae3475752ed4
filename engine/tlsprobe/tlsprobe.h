// SPDX-License-Identifier: BSD-2-Clause
// OpenSSL uprobes: TLS secrets once per handshake (and, with -m text, the plaintext of
// SSL_read/SSL_write) from every process that maps a traced libssl.
//
// Lifecycle: open() discovers libssl, confirms the struct offsets against that very library
// by reading it (accessor decoding, see libssl.h; its code never runs in ecapture-hp), loads
// bpf/openssl.bpf.c with the offsets in rodata and attaches to the inode it read, with pid -1
// (uprobes are per inode, so processes started later are covered). poll() drains the ring.
// Without --libssl, binaries first run after the start are found too (late looks): every exec
// is told by the kernel (bpf/openssl.bpf.c ehp_exec), and poll() reads that process's maps
// right away and again 5 ms, 150 ms and 1.5 s later, then attaches what is new (see poll()).
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/process.h"
#include "tls/secrets.h"

namespace ehp::tlsprobe {

struct Options {
  std::string libssl_path;  // --libssl override; empty = discover
  std::optional<uint32_t> pid, uid;  // -p / -u, enforced in the BPF program; -p also scopes the uprobes
  bool plaintext = false;            // -m text: SSL_read/SSL_write data too
  // Tests/bench only: skip the handshake_func hooks and use the SSL_do_handshake + per-call
  // SSL_read/SSL_write/SSL_get_error fallback (what a library without located handshake
  // functions gets).
  bool force_io_fallback = false;
  // Tests only (Config::test_corrupt_tls13_secret_offset): TLS 1.3 handshake secrets are taken
  // this many bytes further on than read, as a wrong offset would read them. 0 = off.
  uint32_t corrupt_tls13_secret_offset = 0;
  // Late looks (off with --libssl): each binary traced or refused after the start is told here,
  // one line each, from the polling thread. Unset: the lines go to skipped()/libraries() only.
  std::function<void(const std::string&)> on_late;
  // Late attaches run with the kernel's RCU grace periods expedited (expedite.h); false: never.
  bool rcu_expedite = true;
  std::string rcu_dir = "/sys/kernel";  // tests: a stand-in directory for the knob
};

// The process that ran the handshake or the SSL call (base/process.h; gid is not read).
using ProcInfo = ehp::Process;

// Connection tuple, best effort: the kernel socket behind the SSL's rbio fd, read in the probe.
// Absent when the app uses its own BIO (curl 7.88 does) or a non-inet fd. saddr/sport are the
// traced process's end; addresses in network order, IPv4 in the first 4 bytes.
struct Tuple {
  uint8_t ip_version;
  std::array<uint8_t, 16> saddr, daddr;
  uint16_t sport, dport;
};

struct PlainData {
  ProcInfo proc;
  bool is_write;
  uint64_t ts_ns;  // wall clock (CLOCK_REALTIME ns)
  std::optional<Tuple> tuple;
  std::span<const uint8_t> data;  // valid during the callback only; may be truncated
  uint64_t len_bytes;             // what the SSL call transferred (>= data.size())
};

class TlsProbe {
 public:
  // nullptr and *err = one line naming the library and version when nothing could be attached
  // (no libssl found, offsets not confirmed, BPF load/attach failure). *skipped (optional)
  // receives the refusal lines also when nothing could be attached.
  static std::unique_ptr<TlsProbe> open(const Options& opt, std::string* err,
                                        std::vector<std::string>* skipped = nullptr);
  ~TlsProbe();
  TlsProbe(const TlsProbe&) = delete;
  TlsProbe& operator=(const TlsProbe&) = delete;

  // "path (OpenSSL 3.0.19, offsets confirmed by ...)" for each attached library.
  std::vector<std::string> libraries() const;
  // The traced binaries by source id: a Secrets with source N came from sources()[N-1] (each
  // hook carries its binary's id as BPF cookie). Paths as found (possibly in another mount
  // namespace).
  std::vector<std::string> sources() const;
  // One line per discovered library that was NOT attached, and why.
  std::vector<std::string> skipped() const;
  // The files whose hooks are attached (st_dev, st_ino of the inode read and traced): a process
  // mapping one of them gives keys (within -p/-u). For the hold-back's KeyPolicy.
  struct FileId {
    uint64_t dev, ino;
    bool operator==(const FileId&) const = default;
  };
  std::vector<FileId> traced_files() const;
  // True for 2 s after a look at process `pid` (exec'ed after the start) found a TLS binary not
  // yet traced: its keys may still come, once the probes are in place. A process that maps no
  // new candidate is never pending.
  // Starts detaching every uprobe and the exec tracepoint on another thread (each waits ~0.1 s
  // for the kernel); the destructor waits for it. For the stop, once the last keys are drained.
  void begin_detach();
  bool process_pending(uint32_t pid) const;
  // Changes whenever traced_files() does (a binary traced after the start), so that a copy of it
  // can be refreshed with one atomic load.
  uint64_t files_generation() const;
  // Stops the late looks (before the polling thread drops its privileges: they need them).
  // False when they were not on.
  bool stop_late_looks();
  // True when process `pid` started a traced handshake or logged a secret within `within_ns`
  // (the kernel marks it: bpf/openssl.bpf.c ehp_tls_tgids). Answers for processes that have
  // already exited, which /proc cannot.
  bool process_seen(uint32_t pid, uint64_t within_ns) const;

  // Drains the ring (waiting up to timeout_ms for the first record; records below the wakeup
  // threshold are seen within 10 ms, the ring is looked at that often). on_secrets runs for every
  // completed handshake; on_data for plaintext records (-m text). Returns records handled, or a
  // negative errno. Also runs the late looks that are due (on this thread: they load and attach
  // BPF programs and add rings; the other methods may be called from any thread meanwhile).
  int poll(int timeout_ms, const std::function<void(const ehp::tls::Secrets&, const ProcInfo&)>& on_secrets,
           const std::function<void(const PlainData&)>& on_data = {});

  struct Stats {
    uint64_t secrets_events, data_events;
    uint64_t ring_drops;       // counted in-kernel (secrets + data)
    uint64_t data_truncated;   // data records shorter than the call (EHP_TLS_MAX_DATA_BYTES)
    uint64_t io_unseen;        // -m text: calls that returned with their entry not kept (no data)
    uint64_t read_faults;      // secrets not readable from the process (struct or logger arguments)
    uint64_t null_secrets;     // finished handshake but zero key material (not sent)
    uint64_t logged_secrets;     // secrets from a library's own secret logger, one per label
    uint64_t logged_incomplete;  // logged sessions that never got all their secrets (expired)
    // Late looks: exec records, looks made, looks not made (over kMaxLooksPerSec or the queue
    // full), exec records lost in the kernel (ring full), binaries traced after the start.
    uint64_t execs, late_looks, late_looks_skipped, exec_drops, late_traced;
  };
  Stats stats() const;

 private:
  struct Impl;
  explicit TlsProbe(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ehp::tlsprobe
