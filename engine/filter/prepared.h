// SPDX-License-Identifier: BSD-2-Clause
// The capture filter in one step for the engine: expression -> translated eBPF body, kept opaque.
// Unlike filter.h this header can sit next to <pcap.h> in one file: libpcap's classic-BPF
// `struct bpf_insn` and the kernel's eBPF one (needed by filter.h) cannot both be declared in
// one translation unit.
//
//   auto flt = ehp::filter::Prepared::compile(expr, linktype, snaplen_bytes, &err);
//   if (!flt) fail(err);                          // "invalid filter 'tcp prt 80': syntax error"
//   ... between open and load of the capture skeleton:
//   flt->install(ingress_prog, &err) && flt->install(egress_prog, &err);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct bpf_program;

namespace ehp::filter {

class Prepared {
 public:
  // compile_cbpf + translate. `linktype`: DLT_EN10MB (1), DLT_RAW (12) or LINKTYPE_RAW (101).
  static std::optional<Prepared> compile(std::string_view expr, int linktype, uint32_t snaplen_bytes,
                                         std::string* err);
  // For one program attached to interfaces of different link types: the expression compiled
  // per {ifindex, linktype}, combined with dispatch_by_ifindex (other interfaces: rejected).
  static std::optional<Prepared> compile_per_interface(std::string_view expr,
                                                       const std::vector<std::pair<uint32_t, int>>& ifindex_linktype,
                                                       uint32_t snaplen_bytes, std::string* err);
  // ehp::filter::install() with this body (a copy; the Prepared can be installed many times).
  bool install(struct bpf_program* prog, std::string* err) const;
  size_t insn_count() const;

 private:
  struct Body;
  std::shared_ptr<const Body> body_;
};

}  // namespace ehp::filter
