// Wireshark extcap protocol, so that Wireshark/tshark list "ecapture-hp: IF" interfaces and start
// a live, decrypted capture: tshark -i ecapture-hp_eth0 -Y http
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "config.h"
#include "engine.h"
#include "extcap.h"

namespace ehp {
namespace {

constexpr const char* kPrefix = "ecapture-hp_";

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

uint16_t linktype_of(const std::string& ifname) {
  std::ifstream f("/sys/class/net/" + ifname + "/type");
  int t = 1;
  f >> t;
  return t == 65534 ? 101 : 1;
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
      printf("interface {value=%s%s}{display=ecapture-hp TLS-decrypting capture: %s}\n", kPrefix,
             n.c_str(), n.c_str());
    return 0;
  }
  if (iface.rfind(kPrefix, 0) != 0) {
    fprintf(stderr, "ecapture-hp: extcap: unknown interface '%s'\n", iface.c_str());
    return 2;
  }
  std::string ifname = iface.substr(strlen(kPrefix));
  if (dlts) {
    if (linktype_of(ifname) == 101) printf("dlt {number=101}{name=RAW}{display=Raw IP}\n");
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
    cfg.filter = filter;
    cfg.quiet = true;
    cfg.direct_io = false;
    if (!hold_ms.empty()) cfg.hold_ms = strtoull(hold_ms.c_str(), nullptr, 10);
    if (cfg.hold_ms == 0) cfg.hold_ms = 3000;
    return run_tls(cfg);
  }
  fprintf(stderr, "ecapture-hp: extcap: nothing to do (use --extcap-interfaces, --extcap-dlts, --extcap-config or --capture)\n");
  return 2;
}

}  // namespace ehp
