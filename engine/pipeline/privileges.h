// SPDX-License-Identifier: BSD-2-Clause
// Privileges: what a capture needs up front, and -Z USER (dropping root after the attach, as
// tcpdump does).
#pragma once
#include <sys/types.h>

#include <string>

namespace ehp::pipeline {

struct DropUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// BPF, TC and uprobes need CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN (or CAP_SYS_ADMIN), and CO-RE
// needs the kernel's BTF: false + one line saying which is missing, before any bpf() call.
bool have_capture_privileges(std::string* err);
bool have_kernel_btf(std::string* err);

// Resolved before anything is attached, so a typo fails with nothing to undo.
bool resolve_drop_user(const std::string& name, DropUser* out, std::string* err);

// Becomes `u` (supplementary groups, gid, uid: glibc applies the set*id calls to every thread).
// With keep_net_admin the calling thread alone keeps CAP_NET_ADMIN (removing the TC filters at
// exit is a netlink request that needs it); every other capability is gone, also from the
// bounding set.
bool drop_privileges(const DropUser& u, bool keep_net_admin, std::string* err);

// Threads started after the drop inherit the caller's CAP_NET_ADMIN; they never need it.
void drop_thread_caps();

// The output should belong to the user we run as, as tcpdump's does (it is still 0600).
void chown_output(const std::string& path, const DropUser& u);

}  // namespace ehp::pipeline
