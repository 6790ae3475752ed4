// SPDX-License-Identifier: BSD-2-Clause
// libpcap's own verdict for a cBPF program: the reference the in-kernel filter must equal.
// Separate TU because <pcap.h> and <linux/bpf.h> both define struct bpf_insn.
#pragma once
#include <linux/filter.h>

#include <cstdint>
#include <vector>

namespace ehp::filter::test {
// pcap_offline_filter with caplen = wire length = len_bytes; true = accept.
bool pcap_accepts(const std::vector<struct sock_filter>& prog, const uint8_t* data, uint32_t len_bytes);
// libpcap's bpf_validate: programs it refuses may trap its interpreter (division by constant 0).
bool pcap_validates(const std::vector<struct sock_filter>& prog);
}
