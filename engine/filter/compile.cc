// SPDX-License-Identifier: BSD-2-Clause
// Filter expression -> classic BPF with libpcap. The only file of ehp_filter that includes
// <pcap.h> (see CMakeLists.txt).
#include "filter/cbpf.h"

#include <pcap/pcap.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
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

namespace {

bool write_all(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n) {
    ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    c += w;
    n -= size_t(w);
  }
  return true;
}

}  // namespace

std::optional<std::vector<struct sock_filter>> compile_cbpf_bounded(std::string_view expr, int linktype,
                                                                     uint32_t snaplen, unsigned max_ms,
                                                                     std::string* err) {
  if (expr.empty()) return compile_cbpf(expr, linktype, snaplen, err);
  const std::string shown = one_line(expr);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    if (err) *err = std::string("filter: pipe: ") + strerror(errno);
    return std::nullopt;
  }
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child < 0) {
    if (err) *err = std::string("filter: fork: ") + strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return std::nullopt;
  }
  if (child == 0) {
    // The child: compile, send "<u8 ok><u32 n><n bytes: instructions or the error>", exit.
    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    const rlim_t cpu_s = max_ms / 1000 + 1;
    struct rlimit cpu{cpu_s, cpu_s}, as{4ull << 30, 4ull << 30};
    setrlimit(RLIMIT_CPU, &cpu);
    setrlimit(RLIMIT_AS, &as);
    std::string e;
    auto r = compile_cbpf(expr, linktype, snaplen, &e);
    uint8_t ok = r.has_value();
    uint32_t n = ok ? uint32_t(r->size() * sizeof(struct sock_filter)) : uint32_t(e.size());
    bool sent = write_all(fds[1], &ok, 1) && write_all(fds[1], &n, 4) &&
                write_all(fds[1], ok ? static_cast<const void*>(r->data()) : e.data(), n);
    _exit(sent ? 0 : 1);
  }
  close(fds[1]);
  std::string msg;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int pr = ::poll(&p, 1, int(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) continue;
    char buf[65536];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, size_t(n));
  }
  close(fds[0]);
  if (timed_out) kill(child, SIGKILL);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  auto fail = [&](const std::string& why) -> std::optional<std::vector<struct sock_filter>> {
    if (err) *err = why;
    return std::nullopt;
  };
  const std::string head = "filter '" + (shown.size() > 60 ? shown.substr(0, 57) + "..." : shown) + "'";
  if (timed_out || (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU))
    return fail(head + " is too complex: compiling it takes longer than " + std::to_string(max_ms / 1000.0).substr(0, 3) +
                " s (libpcap's optimiser grows much faster than the number of terms; use fewer terms or ranges such as 'portrange 1-1500')");
  uint32_t n = 0;
  if (msg.size() < 5 || (memcpy(&n, msg.data() + 1, 4), msg.size() != 5 + size_t(n)))
    return fail(head + ": the compiler process failed" +
                (WIFSIGNALED(status) ? std::string(" (") + strsignal(WTERMSIG(status)) + ")" : std::string()));
  if (!msg[0]) return fail(msg.substr(5));
  std::vector<struct sock_filter> insns(n / sizeof(struct sock_filter));
  if (n) memcpy(insns.data(), msg.data() + 5, n);
  return insns;
}

}  // namespace ehp::filter
