// SPDX-License-Identifier: BSD-2-Clause
// One receiver for every signal a user sends to stop a capture, from the first instant on.
//
// Every signal that would end the process (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
// SIGPIPE, SIGALRM, ..., the real-time ones; not SIGKILL) is blocked in every thread and taken
// by one thread (sigtimedwait), created before any slow start-up step, so a stop is never
// ignored:
//   - during start-up (filter compile, BPF load, waiting for a FIFO's reader), the process
//     holds nothing that outlives it (BPF programs, uprobe links and rings are fds), so the
//     receiver ends it at once with one line on stderr. The one start-up step that leaves
//     state on the host, attaching the TC filters, runs under attach_lock(): a signal that
//     arrives during it waits for it, and then takes the clean path below;
//   - once started(), a signal asks for a clean stop (requested()): the filters are removed,
//     buffered packets written; a second signal ends the process at once (second()).
#pragma once
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace ehp::pipeline {

class StopSignals {
 public:
  StopSignals();   // blocks the signals in the caller (threads created later inherit it)
  ~StopSignals();  // ends the receiver thread; the signals stay blocked
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Held while a start-up step changes the host outside the process (TC attach).
  std::unique_lock<std::mutex> attach_lock() { return std::unique_lock<std::mutex>(mu_); }
  // Start-up is over (call with attach_lock() held, right after the attach): signals now ask
  // for a clean stop.
  void started() { started_.store(true); }

  bool requested() const { return count_.load() > 0; }
  unsigned count() const { return count_.load(); }
  int last_signal() const { return last_.load(); }
  // Waits up to ms for a stop request; true when one has arrived.
  bool wait(int ms) const;

 private:
  void run();
  sigset_t set_{};
  std::mutex mu_;
  std::atomic<bool> started_{false}, quit_{false};
  std::atomic<unsigned> count_{0};
  std::atomic<int> last_{0};
  std::thread thread_;
};

}  // namespace ehp::pipeline
