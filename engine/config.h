// SPDX-License-Identifier: BSD-2-Clause
// Everything the command line decides, validated. main.cc fills it; the engine only reads it.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ehp {

enum class Mode { Pcap, Keylog, Text };

struct Config {
  Mode mode = Mode::Pcap;
  std::string pcapfile = "ecapture_openssl.pcapng";  // "-" = stdout
  std::string keylogfile = "ecapture_masterkey.log";
  bool keylog_with_pcap = false;  // -m pcap and --keylogfile: write the key log file too
  std::vector<std::string> ifaces;
  bool iface_any = false;  // -i any was given (ifaces holds what it expanded to at start)
  // An interface deleted during the capture is captured again when one of that name comes back,
  // and with -i any new interfaces are added; when every interface is gone the capture waits.
  // --no-reattach: the interface set is fixed at start, and the capture stops (exit 1) when the
  // last one is gone.
  bool reattach = true;
  std::string filter;  // pcap filter expression (trailing args or -f)
  std::string libssl;
  // Late attaches (no --libssl) set /sys/kernel/rcu_expedited for their few ms (tlsprobe/expedite.h);
  // --no-rcu-expedite: never touch it (their probes then come ~10 ms later).
  bool rcu_expedite = true;
  std::optional<uint32_t> pid, uid;
  uint32_t snaplen = 262144;
  std::vector<int> cpus;  // empty = all online
  uint32_t ring_bytes_per_cpu = 32u << 20;
  uint64_t hold_ms = 3000;
  bool quiet = false;
  // -c / -a: stop conditions (0 = none)
  uint64_t stop_packets = 0;
  uint64_t stop_duration_s = 0;
  uint64_t stop_filesize_kb = 0;
  // -b: rotation (0 = none)
  uint64_t ring_filesize_kb = 0;
  uint64_t ring_duration_s = 0;
  uint32_t ring_files = 0;
  std::string drop_user;  // -Z
  bool direct_io = true;
  // Extcap --fifo: an existing FIFO of another user is the caller's and may be written
  // (otherwise a file of another user is refused: output/create.h).
  bool output_is_callers_fifo = false;
  // Tests only (env EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET): every TLS 1.3 handshake secret the
  // probe reads is taken this many bytes too far on, as a wrong struct offset would read it, so
  // that the key check's failure path can be shown end to end. 0 = off.
  uint32_t test_corrupt_tls13_secret_offset = 0;
};

struct ReplayConfig {
  std::string input;
  std::string output;
  uint32_t repeat = 1;
  bool direct_io = true;
};

// Parses a CPU list like "0-3,6". Returns false with *err on bad syntax or CPUs that are not online.
bool parse_cpu_list(const std::string& s, std::vector<int>* out, std::string* err);

}  // namespace ehp
