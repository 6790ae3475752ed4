// SPDX-License-Identifier: BSD-2-Clause
// A capture, as one object: open() builds the stages (filter, capture, TLS probe, sink,
// correlator) and attaches; run() waits for a stop; shutdown() stops them in the one order that
// loses nothing and prints the summary. See docs/architecture.md for the picture.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "capture/capture.h"
#include "config.h"
#include "correlate/correlator.h"
#include "pipeline/key_policy.h"
#include "pipeline/keylog_file.h"
#include "pipeline/privileges.h"
#include "pipeline/stop_signals.h"
#include "pipeline/workers.h"
#include "sink/pcapng_sink.h"
#include "tlsprobe/tlsprobe.h"

namespace ehp::pipeline {

// Opens the TLS probe and names, once each, the libraries it refused. nullptr when none could
// be traced; *err is then the reason not already printed ("" when the refusals say it all).
std::unique_ptr<tlsprobe::TlsProbe> open_probe(const Config& cfg, bool plaintext, std::string* err);
// One line when a library's secret logger began sessions it never finished (their keys are lost).
void report_logged_losses(const tlsprobe::TlsProbe& probe);

// -m pcap: packets and keys into one pcapng.
class CaptureSession {
 public:
  // Everything up to and including the TC attach (after which a signal asks for a clean stop),
  // then -Z. nullptr + *err (one line) on failure; nothing is left attached.
  static std::unique_ptr<CaptureSession> open(const Config& cfg, StopSignals& sig, const DropUser* drop,
                                              std::string* err);
  ~CaptureSession();
  void run();      // until a stop signal, -a duration, -c, -a filesize or an output failure
  int shutdown();  // detach, drain, release held flows, ISBs, close; summary; the exit code

 private:
  CaptureSession(const Config& cfg, StopSignals& sig) : cfg_(cfg), sig_(sig) {}
  std::string stats_line();
  // Notices interfaces deleted since the last call (says so, ISB with a comment); true when
  // every interface is gone.
  bool check_interfaces_gone();
  std::string source_name(uint32_t source) const;
  void print_summary(bool write_error);

  const Config& cfg_;
  StopSignals& sig_;
  bool drop_caps_ = false;
  std::unique_ptr<capture::Capture> cap_;
  std::unique_ptr<tlsprobe::TlsProbe> probe_;
  std::vector<std::string> sources_;  // probe_->sources(): the key check's names
  std::unique_ptr<PcapngSink> sink_;
  std::unique_ptr<TracedProcessPolicy> policy_;  // before corr_: it must outlive it
  std::unique_ptr<correlate::Correlator> corr_;
  std::unique_ptr<Pump> pump_;
  std::unique_ptr<KeylogFile> keylog_;  // --keylogfile with -m pcap
  std::unique_ptr<KeyReader> keys_;
  std::unique_ptr<StatsReporter> stats_;
  unsigned signals_at_stop_ = 0;
  std::vector<bool> gone_;  // per interface id: deleted from the system
  bool all_gone_ = false;
};

// -m keylog / -m text: keys (and plaintext) from the TLS probe only.
int run_keylog_or_text(const Config& cfg, StopSignals& sig, const DropUser* drop);

}  // namespace ehp::pipeline
