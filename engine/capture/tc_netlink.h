// SPDX-License-Identifier: BSD-2-Clause
// Minimal rtnetlink filter listing for the clsact hooks (libbpf 1.1 can attach/detach/query a
// known filter but cannot list them). Used to decide whether a clsact we created is empty and to
// find our filters left behind by a killed run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ehp::capture::detail {

struct TcFilter {
  bool ingress = true;
  uint32_t handle = 0;
  uint32_t priority = 0;
  std::string kind;     // "bpf", "u32", "matchall", ...
  std::string bpf_name; // TCA_BPF_NAME, e.g. "ehp_cap_ingress:[42]"
  uint32_t bpf_prog_id = 0;
};

// Lists the filters on the clsact ingress/egress hook of ifindex. Returns false with *err on a
// netlink failure; a device without clsact gives an empty list.
bool list_clsact_filters(int ifindex, bool ingress, std::vector<TcFilter>* out, std::string* err);

// Whether ifindex already has a clsact qdisc (asking first keeps libbpf from logging the
// kernel's "Exclusivity flag on" complaint for an EEXIST we expect).
bool has_clsact(int ifindex, bool* out, std::string* err);

}  // namespace ehp::capture::detail
