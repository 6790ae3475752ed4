// SPDX-License-Identifier: BSD-2-Clause
#include "pipeline/privileges.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

namespace ehp::pipeline {

bool resolve_drop_user(const std::string& name, DropUser* out, std::string* err) {
  std::vector<char> buf(16384);
  passwd pw{}, *res = nullptr;
  int rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &res);
  if (rc != 0 || !res) {
    *err = "-Z: unknown user '" + name + "'";
    return false;
  }
  out->uid = pw.pw_uid;
  out->gid = pw.pw_gid;
  out->name = pw.pw_name;
  return true;
}

static uint32_t last_cap() {
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  uint32_t v = 40;
  f >> v;
  return v;
}

// Becomes `u` (supplementary groups, gid, uid: glibc applies the set*id calls to every thread).
// With keep_net_admin the calling thread alone keeps CAP_NET_ADMIN, because removing the TC
// filters at exit is a netlink request that needs it; every other capability is gone, including
// from the bounding set. No libcap: prctl + raw capset.
bool drop_privileges(const DropUser& u, bool keep_net_admin, std::string* err) {
  auto sys_fail = [&](const char* what) {
    *err = std::string("-Z ") + u.name + ": " + what + ": " + strerror(errno);
    return false;
  };
  if (keep_net_admin) {
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return sys_fail("PR_SET_KEEPCAPS");
    for (uint32_t c = 0, last = last_cap(); c <= last; ++c)
      if (c != CAP_NET_ADMIN) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);  // EINVAL for unknown caps: fine
  }
  if (initgroups(u.name.c_str(), u.gid) != 0) return sys_fail("initgroups");
  if (setgid(u.gid) != 0) return sys_fail("setgid");
  if (setuid(u.uid) != 0) return sys_fail("setuid");
  if (keep_net_admin) {
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted = CAP_TO_MASK(CAP_NET_ADMIN);
    data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective = CAP_TO_MASK(CAP_NET_ADMIN);
    if (syscall(SYS_capset, &hdr, data) != 0) return sys_fail("capset");
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  // Like tcpdump: regaining root must be impossible now. Raw syscall: this thread only, and
  // glibc's all-threads machinery is not involved in an attempt that is meant to fail.
  if (u.uid != 0 && syscall(SYS_setuid, 0) == 0) {
    *err = "-Z " + u.name + ": root could be regained after dropping privileges";
    return false;
  }
  return true;
}

// Threads started after the drop inherit the caller's CAP_NET_ADMIN; they never need it.
void drop_thread_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  syscall(SYS_capset, &hdr, data);  // per thread (raw syscall, not glibc's all-threads path)
}

// The output should belong to the user we run as, as tcpdump's does (it is still 0600).
void chown_output(const std::string& path, const DropUser& u) {
  if (path.empty() || path == "-") return;
  if (fchownat(AT_FDCWD, path.c_str(), u.uid, u.gid, AT_SYMLINK_NOFOLLOW) != 0)
    fprintf(stderr, "ecapture-hp: warning: chown %s to %s: %s\n", path.c_str(), u.name.c_str(), strerror(errno));
}


bool have_capture_privileges(std::string* err) {
  std::ifstream f("/proc/self/status");
  std::string line;
  uint64_t eff = 0;
  while (std::getline(f, line))
    if (line.rfind("CapEff:", 0) == 0) eff = strtoull(line.c_str() + 7, nullptr, 16);
  auto has = [&](int cap) { return (eff >> cap) & 1; };
  bool ok = (has(39) || has(21)) && (has(38) || has(21)) && has(12);  // BPF, PERFMON, NET_ADMIN
  if (!ok) *err = "needs root (CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN) to load eBPF programs";
  return ok;
}


bool have_kernel_btf(std::string* err) {
  if (access("/sys/kernel/btf/vmlinux", R_OK) == 0) return true;
  *err = "this kernel has no BTF (/sys/kernel/btf/vmlinux: " + std::string(strerror(errno)) +
         "); ecapture-hp needs a kernel built with CONFIG_DEBUG_INFO_BTF=y";
  return false;
}

}  // namespace ehp::pipeline
