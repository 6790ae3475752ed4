// SPDX-License-Identifier: BSD-2-Clause
#include "capture/tc_netlink.h"

#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ehp::capture::detail {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

void parse_attrs(const rtattr* rta, int len, const rtattr** tb, int max) {
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
    if (rta->rta_type <= max) tb[rta->rta_type] = rta;
  }
}

// One RTM_GET* dump of tc objects on `ifindex`: sends the request and calls on_msg for every
// message of type `reply`. `what` names the dump in errors; with missing_ok, "no clsact / no
// such device" answers mean an empty dump.
template <typename OnMsg>
bool tc_dump(uint16_t request, uint16_t reply, int ifindex, uint32_t parent, const char* what,
             bool missing_ok, std::string* err, OnMsg on_msg) {
  Fd sock;
  sock.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (sock.fd < 0) {
    *err = std::string("netlink socket: ") + strerror(errno);
    return false;
  }
  struct {
    nlmsghdr nh;
    tcmsg tc;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.nh.nlmsg_type = request;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.tc.tcm_family = AF_UNSPEC;
  req.tc.tcm_ifindex = ifindex;
  req.tc.tcm_parent = parent;
  if (send(sock.fd, &req, req.nh.nlmsg_len, 0) < 0) {
    *err = std::string("netlink send: ") + strerror(errno);
    return false;
  }
  alignas(nlmsghdr) static thread_local char buf[1 << 16];
  for (;;) {
    ssize_t n = recv(sock.fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = std::string("netlink recv: ") + strerror(errno);
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type == NLMSG_DONE) return true;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
        if (e->error == 0) return true;
        if (missing_ok && (e->error == -EINVAL || e->error == -ENOENT || e->error == -ENODEV)) return true;
        *err = std::string("netlink ") + what + " dump: " + strerror(-e->error);
        return false;
      }
      if (nh->nlmsg_type != reply) continue;
      auto* tc = static_cast<tcmsg*>(NLMSG_DATA(nh));
      const rtattr* tb[TCA_MAX + 1] = {};
      parse_attrs(TCA_RTA(tc), static_cast<int>(nh->nlmsg_len - NLMSG_LENGTH(sizeof(*tc))), tb, TCA_MAX);
      on_msg(tc, tb);
    }
  }
}

}  // namespace

bool list_clsact_filters(int ifindex, bool ingress, std::vector<TcFilter>* out, std::string* err) {
  out->clear();
  // No clsact qdisc (or no device): nothing attached there.
  return tc_dump(RTM_GETTFILTER, RTM_NEWTFILTER, ifindex,
                 TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS), "filter",
                 /*missing_ok=*/true, err, [&](const tcmsg* tc, const rtattr* const* tb) {
                   TcFilter f;
                   f.ingress = ingress;
                   f.handle = tc->tcm_handle;
                   f.priority = TC_H_MAJ(tc->tcm_info) >> 16;
                   if (tb[TCA_KIND]) f.kind = static_cast<const char*>(RTA_DATA(tb[TCA_KIND]));
                   if (f.kind == "bpf" && tb[TCA_OPTIONS]) {
                     const rtattr* ob[TCA_BPF_MAX + 1] = {};
                     parse_attrs(static_cast<const rtattr*>(RTA_DATA(tb[TCA_OPTIONS])),
                                 RTA_PAYLOAD(tb[TCA_OPTIONS]), ob, TCA_BPF_MAX);
                     if (ob[TCA_BPF_NAME]) f.bpf_name = static_cast<const char*>(RTA_DATA(ob[TCA_BPF_NAME]));
                     if (ob[TCA_BPF_ID]) memcpy(&f.bpf_prog_id, RTA_DATA(ob[TCA_BPF_ID]), sizeof(uint32_t));
                   }
                   out->push_back(std::move(f));
                 });
}

bool has_clsact(int ifindex, bool* out, std::string* err) {
  *out = false;
  // The kernel dumps every device's qdiscs; keep this device's clsact.
  return tc_dump(RTM_GETQDISC, RTM_NEWQDISC, ifindex, 0, "qdisc", /*missing_ok=*/false, err,
                 [&](const tcmsg* tc, const rtattr* const* tb) {
                   if (tc->tcm_ifindex != ifindex || tc->tcm_parent != TC_H_CLSACT) return;
                   if (tb[TCA_KIND] && strcmp(static_cast<const char*>(RTA_DATA(tb[TCA_KIND])), "clsact") == 0)
                     *out = true;
                 });
}

}  // namespace ehp::capture::detail
