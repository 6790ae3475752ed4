// SPDX-License-Identifier: BSD-2-Clause
// ecapture-hp entry point: flags -> Config, validation with one-line errors; the engine does the rest.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "capture/capture.h"
#include "config.h"
#include "engine.h"
#include "extcap.h"

namespace {

int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 2;
}

// "KEY:VALUE" of -a / -b, VALUE a positive decimal number no larger than max_value[KEY].
struct KvLimit {
  const char* key;
  uint64_t max_value;
  const char* unit;
};

bool parse_kv(const char* flag, const std::string& s, std::initializer_list<KvLimit> keys,
              std::string* k, uint64_t* v, std::string* err) {
  std::string known;
  for (auto& l : keys) known += (known.empty() ? "" : ", ") + std::string(l.key) + ":" + l.unit;
  auto c = s.find(':');
  if (c == std::string::npos) {
    *err = std::string(flag) + " " + s + ": expected KEY:VALUE, one of " + known;
    return false;
  }
  *k = s.substr(0, c);
  const KvLimit* lim = nullptr;
  for (auto& l : keys)
    if (*k == l.key) lim = &l;
  if (!lim) {
    *err = std::string(flag) + " " + s + ": unknown condition '" + *k + "' (" + known + ")";
    return false;
  }
  const std::string val = s.substr(c + 1);
  char* end = nullptr;
  errno = 0;
  unsigned long long x = strtoull(val.c_str(), &end, 10);
  if (val.empty() || *end || errno || !isdigit(uint8_t(val[0]))) {
    *err = std::string(flag) + " " + s + ": '" + val + "' is not a number";
    return false;
  }
  if (x == 0 || x > lim->max_value) {
    *err = std::string(flag) + " " + s + ": " + *k + " must be between 1 and " +
           std::to_string(lim->max_value);
    return false;
  }
  *v = x;
  return true;
}

// Counts, sizes and ids: digits only. A sign is refused (CLI11 alone takes "-1" as the largest
// value and "-18446744073709551615" as 1).
const CLI::Validator kWholeNumber(
    [](std::string& v) -> std::string {
      if (v.empty() || v.size() > 20 || !std::all_of(v.begin(), v.end(), [](unsigned char c) { return isdigit(c); }))
        return "'" + v + "' is not a whole number (digits only, no sign)";
      return "";
    },
    "N");

// The tls subcommand's flags that need checking or converting before they go into Config.
struct TlsFlags {
  std::string mode = "pcap", cpus;
  std::vector<std::string> filter_args, autostop, ringbuf;
  std::string filter_opt;
  uint32_t mapsize_kb = 0;
  bool no_direct_io = false;
};

// After parsing: turns the tls subcommand's flags into cfg. -1 when valid, else the exit code
// (one clear line per misuse has been printed).
int finish_tls_config(TlsFlags& f, CLI::App* tls, ehp::Config& cfg) {
  cfg.direct_io = !f.no_direct_io;
  if (f.mode == "pcapng") f.mode = "pcap";
  if (f.mode == "key") f.mode = "keylog";
  cfg.mode = f.mode == "pcap" ? ehp::Mode::Pcap : f.mode == "keylog" ? ehp::Mode::Keylog : ehp::Mode::Text;
  if (!f.filter_opt.empty() && !f.filter_args.empty()) return fail("give the filter either with -f or as trailing arguments, not both");
  cfg.filter = f.filter_opt;
  for (auto& a : f.filter_args) cfg.filter += (cfg.filter.empty() ? "" : " ") + a;
  std::string err;
  if (!f.cpus.empty() && !ehp::parse_cpu_list(f.cpus, &cfg.cpus, &err)) return fail(err);  // err names --cpus
  if (*tls->get_option("--mapsize")) {
    // The BPF ring buffer size: a power of two of at least one page (and fits a u32).
    if (f.mapsize_kb < 4 || f.mapsize_kb > (1u << 21) || (f.mapsize_kb & (f.mapsize_kb - 1)))
      return fail("--mapsize " + std::to_string(f.mapsize_kb) +
                  ": must be a power of two between 4 and 2097152 (KiB per CPU)");
    cfg.ring_bytes_per_cpu = f.mapsize_kb * 1024u;
  }
  if (*tls->get_option("-c") && cfg.stop_packets == 0) return fail("-c 0: the packet count must be at least 1");
  constexpr uint64_t kTenYears_s = 10ull * 365 * 24 * 3600;
  constexpr uint64_t kMaxKb = 1ull << 40;  // a petabyte-class file: anything above is a typo
  for (auto& s : f.autostop) {
    std::string k;
    uint64_t v;
    if (!parse_kv("-a", s, {{"duration", kTenYears_s, "SEC"}, {"filesize", kMaxKb, "KB"},
                            {"packets", UINT64_MAX / 2, "N"}}, &k, &v, &err))
      return fail(err);
    if (k == "duration") cfg.stop_duration_s = v;
    else if (k == "filesize") cfg.stop_filesize_kb = v;
    else cfg.stop_packets = cfg.stop_packets ? std::min(cfg.stop_packets, v) : v;
  }
  for (auto& s : f.ringbuf) {
    std::string k;
    uint64_t v;
    if (!parse_kv("-b", s, {{"filesize", kMaxKb, "KB"}, {"duration", kTenYears_s, "SEC"},
                            {"files", 100000, "N"}}, &k, &v, &err))
      return fail(err);
    if (k == "filesize") cfg.ring_filesize_kb = v;
    else if (k == "duration") cfg.ring_duration_s = v;
    else cfg.ring_files = uint32_t(v);
  }
  const bool rotating = cfg.ring_filesize_kb || cfg.ring_duration_s || cfg.ring_files;
  if (tls->count("-Z") && cfg.drop_user.empty()) return fail("-Z needs a user name (it was empty)");
  const bool keylog_given = tls->count("--keylogfile") > 0, pcapfile_given = tls->count("-w") > 0;
  if (keylog_given && cfg.keylogfile.empty()) return fail("--keylogfile needs a file name (it was empty)");
  if (cfg.mode == ehp::Mode::Pcap) {
    if (keylog_given) {
      if (cfg.keylogfile == cfg.pcapfile) return fail("--keylogfile and -w name the same file");
      if (cfg.keylogfile == "-") return fail("--keylogfile - is not supported; give a file name");
      cfg.keylog_with_pcap = true;  // both: the pcapng with its DSBs, and the key log file
    }
    if (cfg.ifaces.empty()) return fail("-m pcap needs at least one interface (-i IF)");
    if (std::find(cfg.ifaces.begin(), cfg.ifaces.end(), "any") != cfg.ifaces.end()) {
      // tcpdump's -i any: every interface that is up (one IDB each), with the others named.
      std::vector<std::string> skipped;
      std::vector<std::string> named;
      for (auto& n : cfg.ifaces)
        if (n != "any") named.push_back(n);
      for (auto& n : ehp::capture::any_interfaces(&skipped))
        if (std::find(named.begin(), named.end(), n) == named.end()) named.push_back(n);
      for (auto& n : skipped)
        fprintf(stderr, "ecapture-hp: -i any: leaving out %s (raw IP link type; give it its own run: -i %s)\n",
                n.c_str(), n.c_str());
      if (named.empty()) return fail("-i any: no interface is up");
      cfg.ifaces = std::move(named);
      cfg.iface_any = true;
    }
    if (cfg.pcapfile.empty()) return fail("-w needs a file name, or - for standard output");
    if (cfg.pcapfile == "-" && rotating) return fail("-b cannot be used with -w - (a stream cannot be rotated)");
    if (cfg.pcapfile == "-" && isatty(STDOUT_FILENO))
      return fail("-w -: standard output is a terminal; pipe it (| tshark -i -) or redirect it to a file");
    if (cfg.ring_files && !cfg.ring_filesize_kb && !cfg.ring_duration_s)
      return fail("-b files:N needs -b filesize:KB or -b duration:SEC to decide when to switch files");
  }
  if (const char* t = getenv("EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET"); t && *t) {
    char* end = nullptr;
    errno = 0;
    const unsigned long v = strtoul(t, &end, 10);
    if (*end || errno || !isdigit(uint8_t(t[0])) || v < 1 || v > 32)
      return fail(std::string("EHP_TEST_CORRUPT_TLS13_SECRET_OFFSET=") + t + ": must be a number from 1 to 32");
    cfg.test_corrupt_tls13_secret_offset = uint32_t(v);
  }
  if (cfg.mode != ehp::Mode::Pcap) {
    const char* m = cfg.mode == ehp::Mode::Keylog ? "keylog" : "text";
    if (pcapfile_given)
      return fail(cfg.mode == ehp::Mode::Keylog ? "-w only applies to -m pcap; -m keylog writes the keys to --keylogfile"
                                                : "-w only applies to -m pcap; -m text prints to standard output");
    if (keylog_given && cfg.mode == ehp::Mode::Text)
      return fail("--keylogfile only applies to -m keylog and -m pcap; -m text prints the keys to standard output");
    if (!cfg.ifaces.empty()) return fail(std::string("-i is only used with -m pcap, not -m ") + m);
    if (rotating) return fail(std::string("-b only applies to -m pcap, not -m ") + m);
    if (cfg.stop_packets || cfg.stop_filesize_kb)
      return fail(std::string("-c, -a packets and -a filesize only apply to -m pcap, not -m ") + m);
    if (!cfg.filter.empty()) return fail(std::string("a capture filter only applies to -m pcap, not -m ") + m);
  }
  if (cfg.hold_ms == 0 || cfg.hold_ms > 600000) return fail("--hold-ms must be between 1 and 600000");
  // The uprobes are attached to that process (the kernel then traps nowhere else): it must exist.
  // (kill() takes pid_t: a value past INT_MAX would name a process group, or every process.)
  if (cfg.pid && (*cfg.pid == 0 || *cfg.pid > uint32_t(INT32_MAX) ||
                  (kill(pid_t(*cfg.pid), 0) != 0 && errno == ESRCH)))
    return fail("-p " + std::to_string(*cfg.pid) + ": no such process");
  return -1;
}

int list_interfaces() {
  // dumpcap -D style: "N. name"
  int n = 0;
  for (auto& name : ehp::system_interfaces()) printf("%d. %s\n", ++n, name.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (ehp::is_extcap_call(argc, argv)) return ehp::run_extcap(argc, argv);
  CLI::App app{"ecapture-hp: packet capture with eBPF that writes TLS secrets into the pcapng"};
  app.set_version_flag("--version", "ecapture-hp 0.1.0");
  app.require_subcommand(0, 1);
  bool list_ifaces = false;
  app.add_flag("-D,--list-interfaces", list_ifaces, "List the capture interfaces and exit");
  app.footer(
      "\nWireshark extcap: --extcap-interfaces, --extcap-dlts, --extcap-config and\n"
      "--capture --fifo F --extcap-interface ecapture-hp_IF (run by Wireshark/tshark).\n"
      "See `ecapture-hp tls --help` and man ecapture-hp(8).");

  ehp::Config cfg;
  TlsFlags f;
  auto* tls = app.add_subcommand("tls", "Capture packets and OpenSSL TLS secrets");
  tls->add_option("-m,--model", f.mode, "pcap (= pcapng, default): packets + TLS keys in one pcapng; keylog; text")
      ->check(CLI::IsMember({"pcap", "pcapng", "keylog", "key", "text"}));
  tls->add_option("-w,--pcapfile", cfg.pcapfile, "Output pcapng (default ecapture_openssl.pcapng), - for standard output");
  tls->add_option("--keylogfile", cfg.keylogfile,
                  "Key log file for -m keylog (default ecapture_masterkey.log); with -m pcap, written as well as the pcapng");
  tls->add_option("-i,--ifname", cfg.ifaces, "Interface to capture (repeatable)")->allow_extra_args(false);
  tls->add_flag("--no-reattach{false}", cfg.reattach,
                "Keep the interfaces of the start only: one deleted is not captured again when it comes back, -i any "
                "adds no new ones, and the capture stops when the last is gone");
  // `gotls --elfpath BIN` as in eCapture: the same command, tracing exactly that (Go) binary.
  tls->alias("gotls");
  auto* libssl_opt =
      tls->add_option("--libssl", cfg.libssl, "The libssl to trace (default: every libssl in use, plus the system one)");
  tls->add_option("--elfpath", cfg.libssl, "The binary to trace, e.g. a Go program (as --libssl; eCapture's gotls flag)")
      ->excludes(libssl_opt);
  tls->add_flag("--no-rcu-expedite{false}", cfg.rcu_expedite,
                "Never set /sys/kernel/rcu_expedited: by default it is 1 for the ~1 ms of attaching to a TLS program "
                "started after the start, then 0 again, so its probes are in place in ~2 ms instead of ~10-20 ms");
  tls->add_option("-p,--pid", cfg.pid, "Only this process")->check(kWholeNumber);
  tls->add_option("-u,--uid", cfg.uid, "Only this user id")->check(kWholeNumber);
  tls->add_option("--mapsize", f.mapsize_kb, "Ring buffer size per CPU in KiB, a power of two (default 32768)")
      ->check(kWholeNumber);
  tls->add_option("-f", f.filter_opt, "Capture filter, pcap syntax (or give it as trailing arguments)");
  tls->add_option("-s,--snaplen", cfg.snaplen, "Snapshot length in bytes (default 262144)")->check(CLI::Range(64u, 262144u));
  tls->add_option("-c", cfg.stop_packets, "Stop after writing N packets")->check(kWholeNumber);
  tls->add_option("-a", f.autostop, "Stop condition: duration:SEC, filesize:KB (1 KB = 1000 B), packets:N; repeatable")->allow_extra_args(false);
  tls->add_option("-b", f.ringbuf, "Rotate files: filesize:KB, duration:SEC, files:N (keep a ring of N); repeatable")->allow_extra_args(false);
  tls->add_option("--cpus", f.cpus, "CPUs whose rings are read, e.g. 0-3,6 (default: all)");
  tls->add_option("--hold-ms", cfg.hold_ms, "Max time a TLS flow is held back waiting for its keys (default 3000)")
      ->check(kWholeNumber);
  tls->add_flag("-q", cfg.quiet, "No periodic statistics line (the exit summary stays)");
  tls->add_option("-Z", cfg.drop_user, "Drop privileges to this user after attaching");
  tls->add_flag("--no-direct-io", f.no_direct_io, "Buffered writes instead of O_DIRECT");
  tls->add_option("filter", f.filter_args, "Capture filter expression");
  tls->allow_extras(false);
  tls->footer(
      "\nExamples:\n"
      "  ecapture-hp tls -m pcap -i eth0 -w tls.pcapng tcp port 443\n"
      "  ecapture-hp tls -m pcap -i eth0 -w - tcp port 443 | tshark -i - -Y http\n"
      "  ecapture-hp tls -m pcap -i eth0 -w ring.pcapng -b filesize:100000 -b files:10\n"
      "  ecapture-hp tls -m keylog --keylogfile keys.log");

  ehp::ReplayConfig rcfg;
  auto* replay = app.add_subcommand("replay", "Push a pcap/pcapng file through the capture pipeline");
  replay->add_option("input", rcfg.input, "Input pcap or pcapng")->required();
  replay->add_option("-w", rcfg.output, "Output pcapng")->required();
  replay->add_option("--repeat", rcfg.repeat, "Times to push the input")->check(kWholeNumber)->check(CLI::Range(1u, 1000000u));
  replay->add_flag("--no-direct-io{false}", rcfg.direct_io, "Use buffered writes");

  // The design card's command line has no subcommand: `ecapture-hp --cpus 0-7 -i bond0` is the
  // default capture, `tls` with its flags (-m pcap, default file name, every traced stack).
  std::vector<char*> args(argv, argv + argc);
  static char kTls[] = "tls";
  if (argc >= 2 && argv[1][0] == '-') {
    const std::string first = argv[1];
    if (first != "-D" && first != "--list-interfaces" && first != "--version" && first != "-h" && first != "--help" &&
        first != "--help-all")
      args.insert(args.begin() + 1, kTls);
  }
  try {
    app.parse(int(args.size()), args.data());
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what());
  }

  if (list_ifaces) return list_interfaces();
  if (*replay) return ehp::run_replay(rcfg);
  if (!*tls) return fail("a command is required: tls or replay (see --help)");

  if (int rc = finish_tls_config(f, tls, cfg); rc >= 0) return rc;
  return ehp::run_capture(cfg);
}
