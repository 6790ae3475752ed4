// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/stop_signals.h"

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

namespace ehp::pipeline {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  // Every signal whose default action ends the process and that a user may send (SIGKILL and
  // SIGSTOP aside; SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGTRAP/SIGSYS report a fault of the process and
  // keep their default). SIGPIPE and SIGXFSZ are blocked, not ignored: a write to a closed pipe
  // or past the file size limit then fails with EPIPE/EFBIG (the writer reports it), while one
  // sent with kill takes the clean stop like the others.
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
                SIGXFSZ, SIGPWR, SIGSTKFLT, SIGIO})
    sigaddset(&set_, s);
  for (int s = SIGRTMIN; s <= SIGRTMAX; ++s) sigaddset(&set_, s);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  thread_ = std::thread([this] { run(); });
}

StopSignals::~StopSignals() {
  quit_ = true;
  if (thread_.joinable()) thread_.join();
}

void StopSignals::run() {
  pthread_setname_np(pthread_self(), "ehp-signal");
  while (!quit_.load()) {
    timespec ts{0, 100'000'000L};
    siginfo_t si;
    int sig = sigtimedwait(&set_, &si, &ts);
    if (sig <= 0) continue;
    last_ = sig;
    if (!started_.load()) {
      // Wait out an attach in progress; if it completed, the capture is started and this
      // signal takes the clean path instead.
      std::lock_guard<std::mutex> g(mu_);
      if (!started_.load()) {
        const char* name = sigabbrev_np(sig);
        if (name) fprintf(stderr, "ecapture-hp: stopped by SIG%s during start-up; nothing was captured\n", name);
        else fprintf(stderr, "ecapture-hp: stopped by signal %d during start-up; nothing was captured\n", sig);
        _exit(128 + sig);
      }
    }
    count_.fetch_add(1);
  }
}

bool StopSignals::wait(int ms) const {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!requested()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 20)));
  }
  return true;
}

}  // namespace ehp::pipeline
