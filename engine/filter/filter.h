// SPDX-License-Identifier: BSD-2-Clause
// In-kernel capture filter: pcap expression -> classic BPF -> eBPF, patched into the
// ehp_filter() stub (bpf/filter_stub.h) of the TC capture programs before they load.
//
// Typical use (per capture program, between open and load of its bpf_object):
//   auto cbpf = ehp::filter::compile_cbpf(expr, DLT_EN10MB, snaplen_bytes, &err);
//   auto body = ehp::filter::translate(*cbpf, &err);
//   ehp::filter::install(skel->progs.ingress, *body, &err);
//
// Semantics (equal to pcap_offline_filter with caplen = wire length = skb->len):
//   - packet offsets are relative to skb->data: the L2 header on Ethernet devices, the IP header
//     on LINKTYPE_RAW devices, which is what DLT_EN10MB / DLT_RAW filters expect;
//   - a load beyond the end of the packet makes the filter reject, as in libpcap;
//   - division/modulo by zero rejects; a shift by X >= 32 gives 0 (libpcap 1.10); a constant
//     shift count >= 32 (which libpcap's compiler refuses) uses its low 5 bits, as x86 does;
//   - `len`/`greater`/`less` use skb->len.
//   - VLAN: at TC a tag that the NIC or veth offloaded lives in skb->vlan_tci, not in the
//     bytes. The filter sees exactly the bytes the capture program records, so `vlan` matches
//     only in-band tags (802.1Q frames on devices without rx-vlan offload, QinQ inner tags,
//     BPF_PROG_TEST_RUN). Offloaded tags are invisible to it, as they are to the saved frame.
#pragma once

#include <linux/bpf.h>  // struct bpf_insn (eBPF). Clashes with <pcap.h>: see filter/prepared.h.

#include <cstdint>
#include <span>

#include "filter/cbpf.h"

struct bpf_program;

namespace ehp::filter {

// Classic BPF -> eBPF instructions forming the body of the ehp_filter subprogram (R1 = ctx on
// entry, R0 = 0 reject / 1 accept on exit). Packet bytes are read with bpf_skb_load_bytes: the
// first 96 bytes once per packet into the stack, later loads from there (loads beyond: one
// helper call each). Works on non-linear skbs; see README.md for why not LD_ABS or direct
// packet access. Uses R6-R9 and 168 bytes of stack. Refuses (nullopt, *err) anything it cannot
// translate into verifier-safe code: unknown opcodes, jumps out of range, backward jumps
// (libpcap's `protochain` loop), falling off the end, scratch-memory index >= 16, programs
// longer than 4096 instructions.
std::optional<std::vector<struct bpf_insn>> translate(std::span<const struct sock_filter> prog, std::string* err);

// One program attached to several interfaces whose filters differ -- the same expression
// compiled for DLT_EN10MB on one and DLT_RAW on another -- gets one body that looks at
// skb->ifindex and runs that interface's translated body (2 instructions per interface).
// Packets from an interface not listed are rejected. Refuses an empty or duplicate list.
struct InterfaceFilter {
  uint32_t ifindex;
  std::vector<struct bpf_insn> body;  // from translate()
};
std::optional<std::vector<struct bpf_insn>> dispatch_by_ifindex(std::span<const InterfaceFilter> filters,
                                                         std::string* err);

// Arranges for `prog` (of an opened, not yet loaded bpf_object, in SEC(EHP_TC_SEC) = "tc") to
// have its ehp_filter stub replaced by `body` when it loads. How: this library registers a libbpf
// prog_prepare_load_fn handler for the "tc" section at static-initialisation time (before main,
// so before any bpf_object is opened). libbpf calls it after relocation, when the stub is at its
// final offset; the handler finds the stub by its marker, turns it into "call <body>; exit",
// appends `body` as a new subprogram and adds matching func_info/line_info records.
// Programs without an install() load unchanged (the stub accepts everything).
// `body` must be self-contained: helper calls are fine, no BPF-to-BPF calls or map references.
// Errors found at load time make bpf_object__load fail; last_install_error() says why.
bool install(struct bpf_program* prog, std::vector<struct bpf_insn> body, std::string* err);

// Why the last load-time patch failed ("" if none has).
std::string last_install_error();

// Registers the libbpf handler (idempotent; already done at static initialisation). Call it
// explicitly only if you open bpf_objects from another static initialiser.
bool register_load_handler(std::string* err);

}  // namespace ehp::filter
