// SPDX-License-Identifier: BSD-2-Clause
// Creating a file that will hold TLS secrets, safely in a directory other users can write to.
//
// The rules (as dumpcap refuses unsafe paths; docs/security.md):
//   - a new file is created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: no symlink, no file that
//     someone else slipped in between a check and the open;
//   - an existing regular file of ours is unlinked and created afresh, never truncated: whoever
//     had it open (or hard-linked it) keeps the old inode, never sees the new data;
//   - an existing file of another user is refused: they would own what we write into it;
//   - a FIFO or character device (`-w /dev/null`, `-w FIFO` for a reader) is written in place if
//     it belongs to us or to root, or to anyone when the caller says so (Wireshark's extcap
//     --fifo, created by the user who runs Wireshark);
//   - a symbolic link, directory, socket or block device is refused.
#pragma once
#include <string>

namespace ehp::output {

struct CreateResult {
  int fd = -1;
  bool stream = false;  // a FIFO or character device: no seeking, no truncation, no O_DIRECT
  bool direct = false;  // opened with O_DIRECT
};

// *err is one line naming the path. Opening a FIFO waits for its reader (callers that must stay
// interruptible run it where a signal can end the process).
CreateResult create_output(const std::string& path, bool want_direct, bool allow_foreign_stream, std::string* err);

}  // namespace ehp::output
