// The engine owns the threads and the shutdown order:
//   ring consumers (capture) -> pump thread -> correlator (TBB graph, hold-back) -> sink -> writer thread
//   uprobe ring (tlsprobe)   -> keys thread -> correlator
// Shutdown: detach TC -> drain rings -> drain keys -> release held flows -> ISBs -> fsync -> close.
#pragma once
#include "config.h"

namespace ehp {

int run_tls(const Config& cfg);            // `ecapture-hp tls ...`; returns the exit code
int run_replay(const ReplayConfig& cfg);   // `ecapture-hp replay ...`

}  // namespace ehp
