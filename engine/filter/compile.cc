// Filter expression -> classic BPF with libpcap. The only file of ehp_filter that includes
// <pcap.h> (see CMakeLists.txt).
#include "filter/cbpf.h"

#include <pcap/pcap.h>

#include <climits>
#include <cstring>

namespace ehp::filter {
namespace {

// libpcap messages may span lines; callers print ours as one line.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) out.push_back(c == '\n' || c == '\r' || c == '\t' ? ' ' : c);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::optional<std::vector<struct sock_filter>> compile_cbpf(std::string_view expr, int linktype,
                                                             uint32_t snaplen, std::string* err) {
  static_assert(sizeof(struct sock_filter) == sizeof(struct bpf_insn),
                "libpcap's cBPF instruction and the kernel's sock_filter must have one layout");
  const std::string text(expr);
  const std::string shown = one_line(text);
  auto fail = [&](std::string_view why) -> std::optional<std::vector<struct sock_filter>> {
    if (err) *err = "invalid filter '" + shown + "': " + one_line(why);
    return std::nullopt;
  };
  if (text.find('\0') != std::string::npos) return fail("contains a NUL byte");
  if (linktype == kLinktypeRaw) linktype = DLT_RAW;
  // pcap_open_dead takes an int snaplen; anything larger is "everything" anyway.
  const int snap = snaplen == 0 || snaplen > INT_MAX ? INT_MAX : static_cast<int>(snaplen);
  pcap_t* p = pcap_open_dead(linktype, snap);
  if (p == nullptr) return fail("pcap_open_dead failed for link type " + std::to_string(linktype));

  struct bpf_program bp {};
  std::optional<std::vector<struct sock_filter>> out;
  if (pcap_compile(p, &bp, text.c_str(), /*optimize=*/1, PCAP_NETMASK_UNKNOWN) != 0) {
    // libpcap prefixes parser errors with this; "invalid filter '...'" already says it.
    std::string_view why = pcap_geterr(p);
    constexpr std::string_view kParsePrefix = "can't parse filter expression: ";
    if (why.substr(0, kParsePrefix.size()) == kParsePrefix) why.remove_prefix(kParsePrefix.size());
    out = fail(why);
  } else {
    std::vector<struct sock_filter> insns(bp.bf_len);
    // Same field layout (u16 code, u8 jt, u8 jf, u32 k), asserted above.
    if (bp.bf_len > 0) std::memcpy(insns.data(), bp.bf_insns, bp.bf_len * sizeof(struct bpf_insn));
    out = std::move(insns);
    pcap_freecode(&bp);
  }
  pcap_close(p);
  return out;
}

}  // namespace ehp::filter
