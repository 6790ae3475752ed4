// ecapture-hp entry point: flags -> Config, validation with one-line errors; the engine does the rest.
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "config.h"
#include "engine.h"
#include "extcap.h"

namespace {

int fail(const std::string& msg) {
  fprintf(stderr, "ecapture-hp: %s\n", msg.c_str());
  return 2;
}

bool parse_kv(const std::string& s, std::string* k, uint64_t* v, std::string* err) {
  auto c = s.find(':');
  if (c == std::string::npos) {
    *err = "expected KEY:VALUE, got '" + s + "'";
    return false;
  }
  *k = s.substr(0, c);
  const std::string val = s.substr(c + 1);
  char* end = nullptr;
  errno = 0;
  unsigned long long x = strtoull(val.c_str(), &end, 10);
  if (val.empty() || *end || errno || val[0] == '-') {
    *err = "invalid number in '" + s + "'";
    return false;
  }
  *v = x;
  return true;
}

int list_interfaces() {
  // dumpcap -D style: "N. name"
  std::ifstream f("/proc/net/dev");
  std::string line;
  int n = 0;
  std::getline(f, line);
  std::getline(f, line);
  while (std::getline(f, line)) {
    auto c = line.find(':');
    if (c == std::string::npos) continue;
    std::string name = line.substr(0, c);
    name.erase(0, name.find_first_not_of(' '));
    printf("%d. %s\n", ++n, name.c_str());
  }
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

  ehp::Config cfg;
  std::string mode = "pcap", cpus;
  std::vector<std::string> filter_args, autostop, ringbuf;
  std::string filter_opt;
  uint32_t mapsize_kb = 0;
  auto* tls = app.add_subcommand("tls", "Capture packets and OpenSSL TLS secrets");
  tls->add_option("-m,--model", mode, "pcap|pcapng (packets+keys in one file), keylog, text")
      ->check(CLI::IsMember({"pcap", "pcapng", "keylog", "key", "text"}));
  tls->add_option("-w,--pcapfile", cfg.pcapfile, "Output pcapng file, '-' for standard output");
  tls->add_option("--keylogfile", cfg.keylogfile, "Key log file (-m keylog)");
  tls->add_option("-i,--ifname", cfg.ifaces, "Interface to capture (repeatable)")->allow_extra_args(false);
  tls->add_option("--libssl", cfg.libssl, "Path of the libssl to trace (default: discover)");
  tls->add_option("-p,--pid", cfg.pid, "Only this process");
  tls->add_option("-u,--uid", cfg.uid, "Only this user id");
  tls->add_option("--mapsize", mapsize_kb, "Ring buffer size per CPU in KiB");
  tls->add_option("-f", filter_opt, "Capture filter (pcap syntax)");
  tls->add_option("-s,--snaplen", cfg.snaplen, "Snapshot length in bytes")->check(CLI::Range(64u, 262144u));
  tls->add_option("-c", cfg.stop_packets, "Stop after this many packets");
  tls->add_option("-a", autostop, "Stop condition duration:SEC, filesize:KB, packets:N")->allow_extra_args(false);
  tls->add_option("-b", ringbuf, "Rotate files: filesize:KB, duration:SEC, files:N")->allow_extra_args(false);
  tls->add_option("--cpus", cpus, "CPUs whose rings are read, e.g. 0-3,6 (default: all)");
  tls->add_option("--hold-ms", cfg.hold_ms, "Max time a TLS flow waits for its keys");
  tls->add_flag("-q", cfg.quiet, "No periodic statistics line");
  tls->add_option("-Z", cfg.drop_user, "Drop privileges to this user after attaching");
  tls->add_flag("--no-direct-io{false}", cfg.direct_io, "Use buffered writes instead of O_DIRECT");
  tls->add_option("filter", filter_args, "Capture filter expression");
  tls->allow_extras(false);

  ehp::ReplayConfig rcfg;
  auto* replay = app.add_subcommand("replay", "Push a pcap/pcapng file through the capture pipeline");
  replay->add_option("input", rcfg.input, "Input pcap or pcapng")->required();
  replay->add_option("-w", rcfg.output, "Output pcapng")->required();
  replay->add_option("--repeat", rcfg.repeat, "Times to push the input")->check(CLI::Range(1u, 1000000u));
  replay->add_flag("--no-direct-io{false}", rcfg.direct_io, "Use buffered writes");

  try {
    app.parse(argc, argv);
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

  // Validation: one clear line per misuse.
  if (mode == "pcapng") mode = "pcap";
  if (mode == "key") mode = "keylog";
  cfg.mode = mode == "pcap" ? ehp::Mode::Pcap : mode == "keylog" ? ehp::Mode::Keylog : ehp::Mode::Text;
  if (!filter_opt.empty() && !filter_args.empty()) return fail("give the filter either with -f or as trailing arguments, not both");
  cfg.filter = filter_opt;
  for (auto& a : filter_args) cfg.filter += (cfg.filter.empty() ? "" : " ") + a;
  if (mapsize_kb) cfg.ring_bytes_per_cpu = mapsize_kb * 1024u;
  std::string err;
  if (!cpus.empty() && !ehp::parse_cpu_list(cpus, &cfg.cpus, &err)) return fail(err);
  for (auto& s : autostop) {
    std::string k;
    uint64_t v;
    if (!parse_kv(s, &k, &v, &err)) return fail("-a " + err);
    if (k == "duration") cfg.stop_duration_s = v;
    else if (k == "filesize") cfg.stop_filesize_kb = v;
    else if (k == "packets") cfg.stop_packets = v;
    else return fail("-a: unknown condition '" + k + "' (duration, filesize, packets)");
  }
  for (auto& s : ringbuf) {
    std::string k;
    uint64_t v;
    if (!parse_kv(s, &k, &v, &err)) return fail("-b " + err);
    if (k == "filesize") cfg.ring_filesize_kb = v;
    else if (k == "duration") cfg.ring_duration_s = v;
    else if (k == "files") cfg.ring_files = uint32_t(v);
    else return fail("-b: unknown condition '" + k + "' (filesize, duration, files)");
  }
  if (cfg.mode == ehp::Mode::Pcap) {
    if (cfg.ifaces.empty()) return fail("-m pcap needs at least one interface (-i IF)");
    if (cfg.pcapfile == "-" && (cfg.ring_filesize_kb || cfg.ring_duration_s || cfg.ring_files))
      return fail("-b cannot be used with -w - (standard output)");
    if (cfg.ring_files && !cfg.ring_filesize_kb && !cfg.ring_duration_s)
      return fail("-b files:N needs -b filesize:KB or -b duration:SEC");
  } else if (!cfg.ifaces.empty() && cfg.mode != ehp::Mode::Pcap) {
    return fail("-i is only used with -m pcap");
  }
  if (cfg.hold_ms == 0 || cfg.hold_ms > 600000) return fail("--hold-ms must be between 1 and 600000");
  return ehp::run_tls(cfg);
}
