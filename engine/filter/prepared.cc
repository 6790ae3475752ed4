// SPDX-License-Identifier: BSD-2-Clause
#include "filter/prepared.h"

#include "filter/filter.h"

namespace ehp::filter {

struct Prepared::Body {
  std::vector<struct bpf_insn> insns;
};

std::optional<Prepared> Prepared::compile(std::string_view expr, int linktype, uint32_t snaplen_bytes,
                                          std::string* err) {
  auto cbpf = compile_cbpf(expr, linktype, snaplen_bytes, err);
  if (!cbpf) return std::nullopt;
  auto body = translate(*cbpf, err);
  if (!body) return std::nullopt;
  Prepared p;
  p.body_ = std::make_shared<const Body>(Body{std::move(*body)});
  return p;
}

std::optional<Prepared> Prepared::compile_per_interface(std::string_view expr,
                                                        const std::vector<std::pair<uint32_t, int>>& ifindex_linktype,
                                                        uint32_t snaplen_bytes, std::string* err) {
  std::vector<InterfaceFilter> per_if;
  for (const auto& [ifindex, linktype] : ifindex_linktype) {
    auto one = compile(expr, linktype, snaplen_bytes, err);
    if (!one) return std::nullopt;
    per_if.push_back({ifindex, one->body_->insns});
  }
  auto body = dispatch_by_ifindex(per_if, err);
  if (!body) return std::nullopt;
  Prepared p;
  p.body_ = std::make_shared<const Body>(Body{std::move(*body)});
  return p;
}

bool Prepared::install(struct bpf_program* prog, std::string* err) const {
  if (!body_) {
    if (err) *err = "filter install: empty Prepared";
    return false;
  }
  return ehp::filter::install(prog, body_->insns, err);
}

size_t Prepared::insn_count() const { return body_ ? body_->insns.size() : 0; }

}  // namespace ehp::filter
