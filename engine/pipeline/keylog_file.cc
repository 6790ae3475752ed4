// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/keylog_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "output/create.h"

namespace ehp::pipeline {

std::unique_ptr<KeylogFile> KeylogFile::open(const std::string& path, std::string* err) {
  const int fd = output::create_output(path, false, false, err).fd;
  if (fd < 0) return nullptr;
  return std::unique_ptr<KeylogFile>(new KeylogFile(path, fd));
}

KeylogFile::~KeylogFile() {
  if (fd_ >= 0) ::close(fd_);
}

KeylogFile::Result KeylogFile::add(const tls::Secrets& s) {
  if (failed_.load()) return Result::Failed;
  const std::string lines = tls::keylog_lines(s);
  if (lines.empty()) return Result::Null;
  if (!dedup_.insert(s.client_random)) return Result::Duplicate;
  size_t off = 0;
  while (off < lines.size()) {
    const ssize_t n = ::write(fd_, lines.data() + off, lines.size() - off);
    if (n > 0) {
      off += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int e = n < 0 ? errno : ENOSPC;  // a write of 0 bytes to a file: no room
    fprintf(stderr, "ecapture-hp: writing %s: %s; stopping\n", path_.c_str(), strerror(e));
    failed_.store(true);
    return Result::Failed;
  }
  sessions_.fetch_add(1);
  return Result::Written;
}

bool KeylogFile::close(std::string* err) {
  if (fd_ < 0) return true;
  bool ok = true;
  // fsync is refused (EINVAL) on pipes and character devices: only a file's error counts.
  if (fsync(fd_) != 0 && errno != EINVAL && errno != EROFS && !failed_.load()) {
    *err = "writing " + path_ + ": " + strerror(errno);
    ok = false;
  }
  if (::close(fd_) != 0 && ok && !failed_.load()) {
    *err = "writing " + path_ + ": " + strerror(errno);
    ok = false;
  }
  fd_ = -1;
  return ok;
}

}  // namespace ehp::pipeline
