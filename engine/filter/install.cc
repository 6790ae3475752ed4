// SPDX-License-Identifier: BSD-2-Clause
// Load-time patching of the ehp_filter stub (bpf/filter_stub.h).
//
// Why a prog_prepare_load_fn handler and not bpf_program__set_insns() right after open: at open
// time a program's instructions are only its own; libbpf appends the subprograms it calls (the
// stub among them) during relocation inside bpf_object__load(), and func_info/line_info records
// are rebuilt for that layout. The handler runs after relocation and right before
// BPF_PROG_LOAD (libbpf 1.1 re-reads prog->insns after it), so the stub's final position is
// known. We then
//   1. find the stub's marker (ld_imm64 EHP_FILTER_MARKER) and the subprogram around it,
//   2. overwrite that subprogram in place, same length: "call <appended body>; r0 = r0 ...; exit"
//      (no other instruction moves, so no jump, call or .BTF.ext offset needs fixing),
//   3. append the body at the end as one more subprogram,
//   4. append a func_info record (the stub's BTF type: int (struct __sk_buff *)) and a
//      line_info record for it: the kernel wants one func_info per subprogram and a line_info
//      at every subprogram start when either is present.
// The call adds one BPF-to-BPF call (a few ns) per packet; a splice in place would avoid it but
// needs every crossing jump and BTF record rewritten.
#include "filter/filter.h"
#include "filter/insn.h"

#include <linux/bpf.h>
#include <bpf/bpf.h>  // struct bpf_prog_load_opts
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

namespace ehp::filter {
namespace {

// Keep in sync with bpf/filter_stub.h (EHP_TC_SEC, EHP_FILTER_MARKER).
constexpr const char* kTcSection = "tc";
constexpr uint64_t kMarker = 0x52544c4946504845ULL;
constexpr size_t kMaxStubInsns = 16;

struct Pending {
  std::string prog_name;
  std::vector<struct bpf_insn> body;
};

struct State {
  std::mutex mu;
  std::unordered_map<const struct bpf_program*, Pending> pending;
  std::string last_error;
  int handler_id = 0;  // > 0 once registered
  std::string register_error;
};

State& state() {
  static State s;
  return s;
}

// The func_info/line_info arrays handed to BPF_PROG_LOAD must live until libbpf has made the
// syscall, which happens right after the handler returns, on the same thread, before the next
// program's handler runs.
thread_local std::vector<uint8_t> tl_func_info;
thread_local std::vector<uint8_t> tl_line_info;

bool is_ld_imm64(const struct bpf_insn& i) { return i.code == (BPF_LD | BPF_DW | BPF_IMM); }
bool is_pseudo_call(const struct bpf_insn& i) {
  return i.code == (BPF_JMP | BPF_CALL) && i.src_reg == BPF_PSEUDO_CALL;
}

constexpr auto make = detail::make_insn;

void set_error(const std::string& e) {
  std::lock_guard lk(state().mu);
  state().last_error = e;
}

// Appends to `recs` (an array of `cnt` records of `rec_size` bytes, first field u32 insn_off) a
// copy of the record chosen by `pick` with insn_off = new_off. False if none qualifies.
template <typename Pick>
bool append_record(std::vector<uint8_t>& recs, const void* src, uint32_t cnt, uint32_t rec_size,
                   uint32_t new_off, Pick pick) {
  const auto* base = static_cast<const uint8_t*>(src);
  recs.assign(base, base + size_t{cnt} * rec_size);
  for (uint32_t r = 0; r < cnt; ++r) {
    uint32_t insn_off;
    std::memcpy(&insn_off, base + size_t{r} * rec_size, sizeof(insn_off));
    if (!pick(insn_off)) continue;
    recs.insert(recs.end(), base + size_t{r} * rec_size, base + size_t{r + 1} * rec_size);
    std::memcpy(recs.data() + size_t{cnt} * rec_size, &new_off, sizeof(new_off));
    return true;
  }
  return false;
}

int prepare_load(struct bpf_program* prog, struct bpf_prog_load_opts* opts, long /*cookie*/) {
  Pending p;
  {
    State& s = state();
    std::lock_guard lk(s.mu);
    auto it = s.pending.find(prog);
    if (it == s.pending.end()) return 0;  // not asked to patch: load the stub unchanged
    p = std::move(it->second);
    s.pending.erase(it);
  }
  const char* name = bpf_program__name(prog);
  // A stale entry (its object closed without loading, the address reused) must not patch a
  // program nobody asked for.
  if (p.prog_name != name) return 0;
  auto fail = [&](const std::string& why) {
    set_error(std::string("filter install into program '") + name + "': " + why);
    return -EINVAL;
  };

  const struct bpf_insn* insns = bpf_program__insns(prog);
  const size_t cnt = bpf_program__insn_cnt(prog);
  size_t marker = cnt;
  for (size_t i = 0; i + 1 < cnt; ++i) {
    if (!is_ld_imm64(insns[i])) continue;
    const uint64_t v = uint64_t{static_cast<uint32_t>(insns[i].imm)} |
                       uint64_t{static_cast<uint32_t>(insns[i + 1].imm)} << 32;
    if (insns[i].src_reg == 0 && v == kMarker) {
      if (marker != cnt) return fail("the ehp_filter stub marker appears twice");
      marker = i;
    }
    ++i;  // skip the second half of the ld_imm64
  }
  if (marker == cnt) return fail("no ehp_filter stub (does the program call ehp_filter()?)");

  // Subprogram starts: 0 and every BPF-to-BPF call or callback (ld_imm64 of a function) target.
  size_t start = 0, end = cnt;
  for (size_t i = 0; i < cnt; i += is_ld_imm64(insns[i]) ? 2 : 1) {
    const bool refers = is_pseudo_call(insns[i]) || (is_ld_imm64(insns[i]) && insns[i].src_reg == BPF_PSEUDO_FUNC);
    const int64_t target = static_cast<int64_t>(i) + 1 + insns[i].imm;
    if (!refers || target < 0 || target >= static_cast<int64_t>(cnt)) continue;
    const size_t t = static_cast<size_t>(target);
    if (t <= marker && t > start) start = t;
    if (t > marker && t < end) end = t;
  }
  if (start == 0) return fail("the ehp_filter stub is not a separate subprogram (missing __noinline?)");
  if (end - start < 2 || end - start > kMaxStubInsns || insns[end - 1].code != (BPF_JMP | BPF_EXIT))
    return fail("unexpected shape of the ehp_filter stub (" + std::to_string(end - start) + " instructions)");

  std::vector<struct bpf_insn> patched(insns, insns + cnt);
  // R1 still holds ctx at the stub's entry and the call passes it on unchanged.
  patched[start] = make(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, static_cast<int32_t>(cnt - start - 1));
  for (size_t i = start + 1; i + 1 < end; ++i) patched[i] = make(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_0, BPF_REG_0, 0, 0);
  patched[end - 1] = make(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  patched.insert(patched.end(), p.body.begin(), p.body.end());

  const uint32_t body_off = static_cast<uint32_t>(cnt);
  if (opts->func_info != nullptr && opts->func_info_cnt > 0) {
    if (!append_record(tl_func_info, opts->func_info, opts->func_info_cnt, opts->func_info_rec_size, body_off,
                       [&](uint32_t off) { return off == start; }))
      return fail("no func_info record for the ehp_filter stub");
    opts->func_info = tl_func_info.data();
    opts->func_info_cnt += 1;
  }
  if (opts->line_info != nullptr && opts->line_info_cnt > 0) {
    if (append_record(tl_line_info, opts->line_info, opts->line_info_cnt, opts->line_info_rec_size, body_off,
                      [&](uint32_t off) { return off >= start && off < end; })) {
      opts->line_info = tl_line_info.data();
      opts->line_info_cnt += 1;
    } else {
      // Line info is optional; without a record for the new subprogram the kernel would refuse
      // the whole set, so drop it rather than fail.
      opts->line_info = nullptr;
      opts->line_info_cnt = 0;
    }
  }
  const int rc = bpf_program__set_insns(prog, patched.data(), patched.size());
  if (rc != 0) return fail(std::string("bpf_program__set_insns: ") + std::strerror(-rc));
  return 0;
}

// Registered before main so that every bpf_object opened by the process sees the handler.
const bool kRegisteredAtStartup = register_load_handler(nullptr);

}  // namespace

bool register_load_handler(std::string* err) {
  State& s = state();
  std::lock_guard lk(s.mu);
  if (s.handler_id > 0) return true;
  struct libbpf_prog_handler_opts opts {};
  opts.sz = sizeof(opts);
  opts.prog_prepare_load_fn = prepare_load;
  const int id = libbpf_register_prog_handler(kTcSection, BPF_PROG_TYPE_SCHED_CLS,
                                              static_cast<enum bpf_attach_type>(0) /* as libbpf's own "tc" */, &opts);
  if (id <= 0) {
    s.register_error = std::string("libbpf_register_prog_handler(\"") + kTcSection + "\"): " + std::strerror(-id);
    if (err) *err = s.register_error;
    return false;
  }
  s.handler_id = id;
  return true;
}

bool install(struct bpf_program* prog, std::vector<struct bpf_insn> body, std::string* err) {
  auto fail = [&](std::string why) {
    if (err) *err = "filter install: " + why;
    return false;
  };
  if (prog == nullptr) return fail("no program");
  if (body.empty()) return fail("empty filter body");
  if (!register_load_handler(err)) return false;
  if (bpf_program__fd(prog) >= 0) return fail(std::string("program '") + bpf_program__name(prog) + "' is already loaded");
  const char* sec = bpf_program__section_name(prog);
  if (sec == nullptr || std::strcmp(sec, kTcSection) != 0)
    return fail(std::string("program '") + bpf_program__name(prog) + "' is in section '" + (sec ? sec : "") +
                "', but only SEC(EHP_TC_SEC) = \"" + kTcSection + "\" programs are patched at load");
  for (const auto& i : body) {
    if (is_pseudo_call(i) || (is_ld_imm64(i) && i.src_reg != 0))
      return fail("filter body must not contain BPF-to-BPF calls or map/function references");
  }
  State& s = state();
  std::lock_guard lk(s.mu);
  s.pending[prog] = Pending{bpf_program__name(prog), std::move(body)};
  return true;
}

std::string last_install_error() {
  std::lock_guard lk(state().mu);
  return state().last_error;
}

}  // namespace ehp::filter
