// SPDX-License-Identifier: BSD-2-Clause
// The engine's entry points, one per command (main.cc and the Wireshark extcap call them).
// How a capture is put together: engine/pipeline/session.h and docs/architecture.md.
#pragma once
#include "config.h"

namespace ehp {

int run_capture(const Config& cfg);       // `ecapture-hp tls ...`; returns the exit code
int run_replay(const ReplayConfig& cfg);  // `ecapture-hp replay ...`

}  // namespace ehp
