// SPDX-License-Identifier: BSD-2-Clause
#include "filter_pcap_oracle.h"

#include <pcap/pcap.h>

#include <cstring>

namespace ehp::filter::test {

bool pcap_accepts(const std::vector<struct sock_filter>& prog, const uint8_t* data, uint32_t len_bytes) {
  std::vector<struct bpf_insn> insns(prog.size());
  std::memcpy(insns.data(), prog.data(), prog.size() * sizeof(struct bpf_insn));
  struct bpf_program bp {};
  bp.bf_len = static_cast<u_int>(insns.size());
  bp.bf_insns = insns.data();
  struct pcap_pkthdr h {};
  h.caplen = len_bytes;
  h.len = len_bytes;
  return pcap_offline_filter(&bp, &h, data) != 0;
}

bool pcap_validates(const std::vector<struct sock_filter>& prog) {
  std::vector<struct bpf_insn> insns(prog.size());
  std::memcpy(insns.data(), prog.data(), prog.size() * sizeof(struct bpf_insn));
  return bpf_validate(insns.data(), static_cast<int>(insns.size())) != 0;
}

}  // namespace ehp::filter::test
