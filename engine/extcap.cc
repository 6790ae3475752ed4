// SPDX-License-Identifier: BSD-2-Clause
// Wireshark extcap protocol, so that Wireshark/tshark list "ecapture-hp: IF" interfaces and start
// a live, decrypted capture: tshark -i ecapture-hp_eth0 -Y http
#include <net/if.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "config.h"
#include "capture/capture.h"
#include "engine.h"
#include "extcap.h"
#include "filter/cbpf.h"

namespace ehp {

// Interface names, as /proc/net/dev lists them (the order `-D` and extcap show).
std::vector<std::string> system_interfaces() {
  std::vector<std::string> out;
  std::ifstream f("/proc/net/dev");
  std::string line;
  std::getline(f, line);
  std::getline(f, line);
  while (std::getline(f, line)) {
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string name = line.substr(0, c);
    name.erase(0, name.find_first_not_of(' '));
    out.push_back(name);
  }
  return out;
}

namespace {

constexpr const char* kPrefix = "ecapture-hp_";


// Wireshark shows anything an extcap program writes to stderr as "Error by extcap pipe", even
// after a clean stop. So the engine's stderr goes to a memory file during the capture, and only
// a real failure's last message reaches Wireshark. The usual end of an extcap capture is the
// reader closing the FIFO (tshark -a duration, Stop in Wireshark): that is success, not an error.
int run_quiet_capture(const Config& cfg) {
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  int mem = memfd_create("ecapture-hp-extcap-stderr", MFD_CLOEXEC);
  if (saved < 0 || mem < 0 || dup2(mem, STDERR_FILENO) < 0) {
    if (saved >= 0) close(saved);
    if (mem >= 0) close(mem);
    return run_capture(cfg);  // no memory file: the engine's lines go to Wireshark's log as they are
  }
  int rc = run_capture(cfg);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::string log;
  char buf[4096];
  ssize_t n;
  off_t off = 0;
  while ((n = pread(mem, buf, sizeof buf, off)) > 0) {
    log.append(buf, size_t(n));
    off += n;
  }
  close(mem);
  if (rc == 0 || log.find("(broken pipe)") != std::string::npos) return 0;
  // The last "ecapture-hp: ..." line is the reason the engine gave up.
  std::string last;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t nl = log.find('\n', pos);
    std::string line = log.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.rfind("ecapture-hp: ", 0) == 0) last = line;
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  fprintf(stderr, "%s\n", last.empty() ? "ecapture-hp: capture failed" : last.c_str());
  return rc;
}

}  // namespace

bool is_extcap_call(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--extcap-", 0) == 0 || a == "--capture" || a.rfind("--fifo", 0) == 0) return true;
  }
  return false;
}

int run_extcap(int argc, char** argv) {
  std::string iface, fifo, filter;
  bool list = false, dlts = false, config = false, capture = false;
  std::string hold_ms;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      auto eq = a.find('=');
      if (eq != std::string::npos) *out = a.substr(eq + 1);
      else if (i + 1 < argc) *out = argv[++i];
    };
    auto name = a.substr(0, a.find('='));
    if (name == "--extcap-interfaces") list = true;
    else if (name == "--extcap-dlts") dlts = true;
    else if (name == "--extcap-config") config = true;
    else if (name == "--capture") capture = true;
    else if (name == "--extcap-interface") value(&iface);
    else if (name == "--fifo") value(&fifo);
    else if (name == "--extcap-capture-filter") value(&filter);
    else if (name == "--hold-ms") value(&hold_ms);
    else if (name == "--extcap-version" || name == "--extcap-reload-option" ||
             name == "--extcap-control-in" || name == "--extcap-control-out") {
      if (a.find('=') == std::string::npos && i + 1 < argc && argv[i + 1][0] != '-') ++i;
    }
  }
  if (list) {
    printf("extcap {version=0.1.0}{help=https://localhost/ecapture-hp}\n");
    for (auto& n : system_interfaces())
      printf("interface {value=%s%s}{display=TLS-decrypting capture on %s (ecapture-hp)}\n", kPrefix,
             n.c_str(), n.c_str());
    return 0;
  }
  if (iface.rfind(kPrefix, 0) != 0) {
    fprintf(stderr, "ecapture-hp: extcap: unknown interface '%s'\n", iface.c_str());
    return 2;
  }
  std::string ifname = iface.substr(strlen(kPrefix));
  // As --capture would: an interface that does not exist (any more) is refused.
  if (ifname.empty() || ifname.size() >= IF_NAMESIZE || if_nametoindex(ifname.c_str()) == 0) {
    fprintf(stderr, "ecapture-hp: extcap: unknown interface '%s'\n", ifname.c_str());
    return 2;
  }
  if (dlts) {
    if (capture::interface_linktype(ifname) == 101) printf("dlt {number=101}{name=RAW}{display=Raw IP}\n");
    else printf("dlt {number=1}{name=EN10MB}{display=Ethernet}\n");
    return 0;
  }
  if (config) {
    printf("arg {number=0}{call=--hold-ms}{display=Hold TLS flows for keys (ms)}{type=integer}"
           "{range=1,600000}{default=3000}{tooltip=How long a TLS flow waits for its secrets}\n");
    return 0;
  }
  if (capture) {
    if (fifo.empty()) {
      fprintf(stderr, "ecapture-hp: extcap: --capture needs --fifo\n");
      return 2;
    }
    Config cfg;
    cfg.mode = Mode::Pcap;
    cfg.ifaces = {ifname};
    cfg.pcapfile = fifo;
    cfg.output_is_callers_fifo = true;  // Wireshark made it, for the user who runs Wireshark
    cfg.filter = filter;
    cfg.quiet = true;
    cfg.direct_io = false;
    if (!hold_ms.empty()) {
      char* end = nullptr;
      errno = 0;
      unsigned long long v = strtoull(hold_ms.c_str(), &end, 10);
      if (*end || errno || v == 0 || v > 600000 || !isdigit(uint8_t(hold_ms[0]))) {
        fprintf(stderr, "ecapture-hp: extcap: --hold-ms must be between 1 and 600000\n");
        return 2;
      }
      cfg.hold_ms = v;
    }
    return run_quiet_capture(cfg);
  }
  if (!filter.empty()) {
    // Wireshark asks whether the capture filter it shows is valid (to colour the filter box):
    // exit 0 when it compiles for this interface's link type, else the compiler's message on
    // standard output (which Wireshark shows) and exit 1.
    std::string err;
    if (filter::compile_cbpf_bounded(filter, capture::interface_linktype(ifname), 262144, 3000, &err)) return 0;
    printf("%s\n", err.c_str());
    return 1;
  }
  fprintf(stderr, "ecapture-hp: extcap: nothing to do (use --extcap-interfaces, --extcap-dlts, --extcap-config or --capture)\n");
  return 2;
}

}  // namespace ehp
