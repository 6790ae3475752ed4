// SPDX-License-Identifier: BSD-2-Clause
// The NSS key log file of -m keylog, and of -m pcap when --keylogfile is given too: one set of
// lines per TLS session (deduplicated by client random), created 0600 (output/create.h).
// The first failed write is reported at once on stderr (with strerror) and the file is marked
// failed: the caller stops the run and exits 1, as for a failed pcapng write.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "tls/keys.h"
#include "tls/secrets.h"

namespace ehp::pipeline {

class KeylogFile {
 public:
  static std::unique_ptr<KeylogFile> open(const std::string& path, std::string* err);
  ~KeylogFile();
  KeylogFile(const KeylogFile&) = delete;
  KeylogFile& operator=(const KeylogFile&) = delete;

  enum class Result { Written, Null, Duplicate, Failed };
  // From one thread only (the key reader's).
  Result add(const tls::Secrets& s);
  bool failed() const { return failed_.load(); }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  uint64_t sessions() const { return sessions_.load(); }
  // fsync and close; false + *err (one line) when that fails and no write had failed before.
  bool close(std::string* err);

 private:
  KeylogFile(std::string path, int fd) : path_(std::move(path)), fd_(fd), dedup_(1 << 16) {}
  std::string path_;
  int fd_;
  tls::ClientRandomDedup dedup_;
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> sessions_{0};
};

}  // namespace ehp::pipeline
