// ecapture-hp entry point: flags -> config; the engine owns everything else.
#include <CLI/CLI.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  CLI::App app{"ecapture-hp: TLS-decrypting packet capture with eBPF"};
  app.set_version_flag("--version", "ecapture-hp 0.1.0");
  CLI11_PARSE(app, argc, argv);
  return 0;
}
