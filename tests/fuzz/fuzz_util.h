// SPDX-License-Identifier: BSD-2-Clause
// Helpers shared by the libFuzzer targets in tests/fuzz/.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ehp::fuzz {

// The input as a file (a memfd holding it): its descriptor, -1 when it could not be written.
// Readers open it as "/proc/self/fd/N", as they would a file on disk.
inline int input_file(const char* name, const unsigned char* data, size_t size) {
  const int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) return -1;
  for (size_t done = 0; done < size;) {
    const ssize_t w = write(fd, data + done, size - done);
    if (w <= 0) {
      close(fd);
      return -1;
    }
    done += size_t(w);
  }
  return fd;
}

// A property failed: print why and abort, so libFuzzer records the input as a crash
// (a plain return would be "uninteresting input" and the bug would go unnoticed).
[[noreturn]] inline void fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: property violated: %s\n", target, what.c_str());
  std::fflush(stderr);
  std::abort();
}

inline std::string hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 15]);
  }
  return s;
}

}  // namespace ehp::fuzz
