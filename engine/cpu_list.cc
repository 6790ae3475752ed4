// SPDX-License-Identifier: BSD-2-Clause
#include <unistd.h>

#include <string>
#include <vector>

#include "config.h"

namespace ehp {

bool parse_cpu_list(const std::string& s, std::vector<int>* out, std::string* err) {
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  out->clear();
  size_t i = 0;
  auto num = [&](int* v) {
    size_t st = i;
    long x = 0;
    while (i < s.size() && isdigit((unsigned char)s[i])) {
      x = x * 10 + (s[i] - '0');
      if (x > 1 << 20) return false;
      ++i;
    }
    *v = int(x);
    return i > st;
  };
  while (i < s.size()) {
    int a, b;
    if (!num(&a)) break;
    b = a;
    if (i < s.size() && s[i] == '-') {
      ++i;
      if (!num(&b) || b < a) break;
    }
    for (int c = a; c <= b; ++c) {
      if (c >= ncpu) {
        *err = "--cpus: CPU " + std::to_string(c) + " is out of range (this machine has " +
               std::to_string(ncpu) + " online: 0-" + std::to_string(ncpu - 1) + ")";
        return false;
      }
      out->push_back(c);
    }
    if (i == s.size()) return true;
    if (s[i] != ',') break;
    ++i;
  }
  *err = "--cpus: invalid CPU list '" + s + "' (example: 0-3,6)";
  return false;
}

}  // namespace ehp
