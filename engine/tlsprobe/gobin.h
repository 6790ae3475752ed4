// SPDX-License-Identifier: BSD-2-Clause
// Go binaries, read from the file (never run): the toolchain version from the build info and a
// function's entry from the runtime's own function table (pclntab), which stays in binaries
// stripped with -ldflags "-s -w". Bounded like everything in elf.h: a hostile file costs fixed
// memory and at most kMaxScanBytes of reading.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tlsprobe/elf.h"

namespace ehp::tlsprobe {

struct GoBuild {
  std::string version;  // "go1.19.8" (empty when the build info does not carry it inline)
  int major = 0, minor = 0;
};
// nullopt: not a Go binary (no build info: neither a .go.buildinfo section nor its magic
// "\xff Go buildinf:" in a loaded segment). Build info in the pre-1.18 form (pointers to the
// version string) is followed in a .go.buildinfo section; where it cannot be (no sections, or
// pointers that lead nowhere) it gives major = minor = 0 and an empty version.
std::optional<GoBuild> go_build(const ElfFile& elf);

// Virtual address of the entry of the Go function `name` (e.g. "crypto/tls.(*Config).writeKeyLog"),
// from the pclntab of Go 1.16 and later (header magic 0xfffffffa for 1.16-1.17, 0xfffffff0 for
// 1.18-1.19, 0xfffffff1 for 1.20+): found as the .gopclntab section or, in a PIE where it sits
// inside .data.rel.ro, by its header in a loaded segment, checked (pointer size 8, offsets inside the segment, textStart in
// an executable segment). nullopt and *why empty: the binary has no such function; nullopt and
// *why set: the table could not be read (one phrase).
// `end`, when given, gets the address where the function's code ends (the next function's entry
// in the table, or the table's end of text).
std::optional<uint64_t> go_func_entry(const ElfFile& elf, std::string_view name, std::string* why,
                                      uint64_t* end = nullptr);

// File offsets of the RET instructions of the code at [vaddr, end) (at most 64 KiB), found by
// decoding every instruction from the start (Go emits no data inside functions): where uprobes
// may sit to see a Go function return, which a uretprobe must not do (Go moves goroutine
// stacks). nullopt + *why when an instruction does not decode or the range is not code.
std::optional<std::vector<uint64_t>> go_ret_offsets(const ElfFile& elf, uint64_t vaddr, uint64_t end, std::string* why);

// Where an entry probe of the Go function at `vaddr` costs least: on the conditional jump of its
// stack-growth check (`[lea -X(%rsp),%r12;] cmp 0x10(%r14),%rsp|%r12; jbe ...`), which the
// kernel emulates, instead of the first instruction, which it single-steps out of line behind a
// #DB trap (libssl.h emulated_probe_point). The instructions skipped write only r12 and the
// flags, so every argument register still holds its argument there, and every call passes it.
// The entry's file offset when the prologue has another shape; nullopt when the entry is in no
// loaded segment.
std::optional<uint64_t> go_probe_point(const ElfFile& elf, uint64_t vaddr);

}  // namespace ehp::tlsprobe
