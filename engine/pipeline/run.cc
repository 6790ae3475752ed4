// SPDX-License-Identifier: BSD-2-Clause
// `ecapture-hp tls ...`: each mode is a short composition of the pipeline's parts.
#include <cstdio>
#include <optional>

#include "engine.h"
#include "pipeline/privileges.h"
#include "pipeline/session.h"
#include "pipeline/stop_signals.h"

namespace ehp {

int run_capture(const Config& cfg) {
  // First of all, so that a stop is never ignored, whatever start-up is doing.
  pipeline::StopSignals sig;
  std::string err;
  if (!pipeline::have_capture_privileges(&err) || !pipeline::have_kernel_btf(&err)) {
    fprintf(stderr, "ecapture-hp: %s\n", err.c_str());
    return 1;
  }
  std::optional<pipeline::DropUser> drop;
  if (!cfg.drop_user.empty() && !pipeline::resolve_drop_user(cfg.drop_user, &drop.emplace(), &err)) {
    fprintf(stderr, "ecapture-hp: %s\n", err.c_str());
    return 1;
  }
  const pipeline::DropUser* d = drop ? &*drop : nullptr;
  if (cfg.mode != Mode::Pcap) return pipeline::run_keylog_or_text(cfg, sig, d);
  auto session = pipeline::CaptureSession::open(cfg, sig, d, &err);
  if (!session) {
    fprintf(stderr, "ecapture-hp: %s\n", err.c_str());
    return 1;
  }
  session->run();
  return session->shutdown();
}

}  // namespace ehp
