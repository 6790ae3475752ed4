// SPDX-License-Identifier: BSD-2-Clause
#include "tlsprobe/expedite.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ehp::tlsprobe {

namespace {

// The first byte of a small sysfs file ('0', '1', ...), or 0 when it cannot be read.
char first_byte(int fd) {
  char c = 0;
  return pread(fd, &c, 1, 0) == 1 ? c : 0;
}

}  // namespace

RcuExpedite::~RcuExpedite() {
  if (fd_ < 0) return;
  if (set_now_) write('0');
  close(fd_);
}

bool RcuExpedite::open(const std::string& dir, std::string* why) {
  const std::string knob = dir + "/rcu_expedited";
  const int fd = ::open(knob.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *why = knob + ": " + strerror(errno);
    return false;
  }
  // rcu_normal=1 makes every grace period a normal one: setting rcu_expedited would change nothing.
  const int normal = ::open((dir + "/rcu_normal").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (normal >= 0) {
    const char c = first_byte(normal);
    close(normal);
    if (c != '0') {
      close(fd);
      *why = dir + "/rcu_normal is set (it overrides rcu_expedited)";
      return false;
    }
  }
  if (first_byte(fd) == 0) {
    close(fd);
    *why = knob + ": unreadable";
    return false;
  }
  fd_ = fd;
  return true;
}

bool RcuExpedite::read_is_zero() const { return first_byte(fd_) == '0'; }

bool RcuExpedite::write(char c) const {
  const char buf[2] = {c, '\n'};
  return pwrite(fd_, buf, sizeof buf, 0) == ssize_t(sizeof buf);
}

RcuExpedite::Scope::Scope(RcuExpedite& r) : r_(r) {
  if (r_.fd_ < 0 || r_.set_now_ || !r_.read_is_zero()) return;  // unusable, or someone else's 1
  if (!r_.write('1')) return;
  set_ = r_.set_now_ = true;
  ++r_.times_set_;
}

RcuExpedite::Scope::~Scope() {
  if (!set_) return;
  if (r_.write('0')) r_.set_now_ = false;  // else the destructor tries again at exit
}

}  // namespace ehp::tlsprobe
