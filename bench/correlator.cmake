# SPDX-License-Identifier: BSD-2-Clause
# Correlator flow graph and HoldBack: packets/s for non-TLS traffic and for held TLS sessions.
add_executable(bench_correlator ${CMAKE_CURRENT_LIST_DIR}/bench_correlator.cc)
target_link_libraries(bench_correlator PRIVATE ehp_correlate benchmark::benchmark)
# CI smoke run: keeps the benchmark working; it is not a timed test.
add_test(NAME correlator.bench_smoke COMMAND bench_correlator --benchmark_min_time=0.01)
set_tests_properties(correlator.bench_smoke PROPERTIES LABELS unit TIMEOUT 60)
