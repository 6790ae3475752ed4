// SPDX-License-Identifier: BSD-2-Clause
#include "output/create.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ehp::output {

CreateResult create_output(const std::string& path, bool want_direct, bool allow_foreign_stream, std::string* err) {
  CreateResult r;
  auto fail = [&](const std::string& why) {
    *err = why;
    if (r.fd >= 0) ::close(r.fd);
    r.fd = -1;
    return r;
  };
  if (path.empty()) return fail("empty output path");
  const uid_t me = geteuid();
  for (int attempt = 0; attempt < 4; ++attempt) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) {
      if (errno != ENOENT) return fail("cannot create " + path + ": " + strerror(errno));
      r.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (r.fd < 0 && errno == EEXIST) continue;  // someone created it just now: look again
      if (r.fd < 0) return fail("cannot create " + path + ": " + strerror(errno));
      break;
    }
    if (S_ISLNK(st.st_mode)) return fail("refusing to write to " + path + ": it is a symbolic link");
    if (S_ISREG(st.st_mode)) {
      if (st.st_uid != me)
        return fail("refusing to overwrite " + path + ": it belongs to uid " + std::to_string(st.st_uid) +
                    ", who could read the TLS secrets written into it; remove it or choose another name");
      if (unlink(path.c_str()) != 0 && errno != ENOENT)
        return fail("cannot replace " + path + ": " + strerror(errno));
      continue;  // create afresh
    }
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      if (st.st_uid != me && st.st_uid != 0 && !allow_foreign_stream)
        return fail("refusing to write to " + path + ": it is a " + (S_ISFIFO(st.st_mode) ? "FIFO" : "device") +
                    " of uid " + std::to_string(st.st_uid) + ", who would receive the TLS secrets");
      r.fd = ::open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      if (r.fd < 0) return fail("cannot open " + path + ": " + strerror(errno));
      struct stat now {};
      if (fstat(r.fd, &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino)
        return fail("refusing to write to " + path + ": it was replaced while being opened");
      r.stream = true;
      return r;
    }
    return fail("refusing to write to " + path + ": not a regular file, FIFO or character device");
  }
  if (r.fd < 0) return fail("cannot create " + path + ": it keeps being re-created by someone else");
  if (fchmod(r.fd, 0600) != 0) return fail("chmod " + path + ": " + strerror(errno));
  if (want_direct) {
    // Same inode, O_DIRECT; some filesystems (tmpfs) refuse it: stay buffered there.
    const std::string self = "/proc/self/fd/" + std::to_string(r.fd);
    int d = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (d >= 0) {
      ::close(r.fd);
      r.fd = d;
      r.direct = true;
    }
  }
  return r;
}

}  // namespace ehp::output
