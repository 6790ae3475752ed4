// SPDX-License-Identifier: BSD-2-Clause
// The threads of a capture, one class each. A session (pipeline/session.h) composes them:
//   ring consumers (capture) -> Pump -> correlator (hold-back, flow graph) -> sink -> writer
//   uprobe ring (tlsprobe)   -> KeyReader -> correlator (or the key log / stdout)
//   StatsReporter prints the periodic line.
// Each thread drops the capability it inherited when the session ran -Z (drop_caps).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "capture/capture.h"
#include "correlate/correlator.h"
#include "sink/pcapng_sink.h"
#include "pipeline/stop_signals.h"
#include "tlsprobe/tlsprobe.h"

namespace ehp::pipeline {

// Moves packets from the capture's time-ordered merge into the correlator, ticks the correlator
// and the sink (rotation by time) every 100 ms, and notices the stop conditions -c and
// -a filesize and a failed output.
class Pump {
 public:
  struct Limits {
    uint64_t stop_packets = 0;        // -c (0 = none): take no packet past it
    uint64_t stop_file_bytes = 0;     // -a filesize in bytes (0 = none)
  };
  Pump(capture::Capture& cap, correlate::Correlator& corr, PcapngSink& sink, Limits limits, bool drop_caps);
  ~Pump();
  void start();
  // Ends once the capture is stopped (Capture::stop) and drained: call stop_when_drained() first.
  void stop_when_drained() { stop_.store(true); }
  void join();
  bool autostop() const { return autostop_.load(); }  // -c / -a filesize reached or output failed
  uint64_t packets() const { return packets_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  // From the session's thread, while running: packets of `ifindex` are interface `id` from now
  // on. Call it BEFORE the interface's TC filters are attached (CaptureSession::add_interface
  // says why that keeps every packet of `id` behind its IDB).
  void add_interface(int ifindex, uint32_t id, uint16_t linktype);

 private:
  void run();
  void apply_added();  // the pump's thread: takes over what add_interface() published
  capture::Capture& cap_;
  correlate::Correlator& corr_;
  PcapngSink& sink_;
  Limits limits_;
  bool drop_caps_;
  void map_ifindex(int ifindex, uint32_t id);
  int id_of(uint32_t ifindex) const;  // -1: not a captured device
  static constexpr int kDenseIfindex = 1 << 20;
  std::vector<int> ifindex_to_id_;    // pump thread only (after start)
  std::unordered_map<int, int> sparse_ifindex_to_id_;  // ifindexes >= kDenseIfindex
  std::vector<uint16_t> linktypes_;  // by interface id; pump thread only (after start)
  struct Added { int ifindex; uint32_t id; uint16_t linktype; };
  std::mutex added_mu_;
  std::vector<Added> added_;                // under added_mu_
  std::atomic<uint32_t> added_gen_{0};      // bumped (release) after each add_interface
  uint32_t added_seen_ = 0;                 // pump thread: the generation applied
  std::atomic<bool> stop_{false}, autostop_{false};
  std::atomic<uint64_t> packets_{0}, bytes_{0};
  std::thread thread_;
};

// Drains the TLS probe's ring into a consumer until stopped, then once more to the end.
class KeyReader {
 public:
  using OnSecrets = std::function<void(const tls::Secrets&, const tlsprobe::ProcInfo&)>;
  using OnData = std::function<void(const tlsprobe::PlainData&)>;
  // probe may be null (nothing traced): the reader then does nothing.
  KeyReader(tlsprobe::TlsProbe* probe, OnSecrets on_secrets, OnData on_data, bool drop_caps);
  ~KeyReader();
  void start();
  void stop();  // returns after the ring's last record was handed over
  uint64_t secrets() const { return secrets_.load(std::memory_order_relaxed); }

 private:
  tlsprobe::TlsProbe* probe_;
  OnSecrets on_secrets_;
  OnData on_data_;
  bool drop_caps_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> secrets_{0};
  std::thread thread_;
};

// Prints line() to stderr every interval, on its own thread: line() may block (the correlator's
// stats take the hold-back lock, which the pump holds while a slow output stalls the sink), and
// the thread that handles signals must never wait on it.
class StatsReporter {
 public:
  StatsReporter(std::function<std::string()> line, uint64_t interval_ns, bool drop_caps);
  ~StatsReporter();
  void start();
  void request_stop() { stop_.store(true); }  // no more lines from now on
  void join();

 private:
  std::function<std::string()> line_;
  uint64_t interval_ns_;
  bool drop_caps_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// While a stopped capture drains (possibly to a slow or stuck output), one more stop signal
// ends the process at once: the host is already restored (filters removed; uprobe links go with
// the process) and the file keeps what the writer flushed. Hints at that after 2 s.
// `signals_at_stop` is StopSignals::count() when the capture decided to stop: any signal past
// it counts, also one that arrived while the TC filters were still being removed.
class DrainGuard {
 public:
  DrainGuard(const StopSignals& sig, unsigned signals_at_stop, std::string output_name, bool drop_caps);
  ~DrainGuard();  // the drain is over
 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace ehp::pipeline
