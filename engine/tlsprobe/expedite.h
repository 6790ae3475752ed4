// SPDX-License-Identifier: BSD-2-Clause
// Expedited RCU grace periods for the few milliseconds of a late attach.
//
// The kernel registers a uprobe under the write side of a per-CPU semaphore (uprobes'
// dup_mmap_sem), and taking it waits for an RCU grace period: 7-18 ms per attach on this 2-core
// VM, measured. A program started after ecapture-hp that handshakes sooner than that (a Go client
// handshakes ~3 ms after its exec) logs its first secrets before its probe exists. With
// /sys/kernel/rcu_expedited set, the same wait is an expedited grace period and the attach takes
// 0.3-1.9 ms. The knob is global, so it is set only around a late attach and put back right after;
// it is left alone when it is set already (someone else's), when rcu_normal overrides it, and
// with --no-rcu-expedite. The file is opened at the start (as root, before any privilege drop).
#pragma once

#include <cstdint>
#include <string>

namespace ehp::tlsprobe {

class RcuExpedite {
 public:
  RcuExpedite() = default;
  RcuExpedite(const RcuExpedite&) = delete;
  RcuExpedite& operator=(const RcuExpedite&) = delete;
  ~RcuExpedite();

  // Opens the knob (dir: /sys/kernel, or a test's stand-in). False with *why when it cannot be
  // used: not there, not writable, or overridden by rcu_normal.
  bool open(const std::string& dir, std::string* why);
  bool usable() const { return fd_ >= 0; }

  // While a Scope lives, grace periods are expedited (the knob is 1); when it ends, the knob is
  // 0 again if this Scope set it. Nothing happens when the knob is unusable or already nonzero.
  class Scope {
   public:
    explicit Scope(RcuExpedite& r);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    bool set() const { return set_; }

   private:
    RcuExpedite& r_;
    bool set_ = false;
  };

  uint64_t times_set() const { return times_set_; }

 private:
  bool read_is_zero() const;
  bool write(char c) const;
  int fd_ = -1;
  bool set_now_ = false;  // a Scope set it and has not put it back (the destructor's duty then)
  uint64_t times_set_ = 0;
};

}  // namespace ehp::tlsprobe
