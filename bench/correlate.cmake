# SPDX-License-Identifier: BSD-2-Clause
# TLS key math and ClientHello parser: HKDF-Expand-Label (SHA-256/384), keylog_lines for
# TLS 1.3, decode_frame+classify_tls on a ClientHello and on a data frame, dedup insert.
add_executable(bench_correlate ${CMAKE_CURRENT_LIST_DIR}/bench_correlate.cc)
target_link_libraries(bench_correlate PRIVATE ehp_correlate benchmark::benchmark)
# CI smoke run: keeps the benchmark working; it is not a timed test.
add_test(NAME correlate.bench_smoke COMMAND bench_correlate --benchmark_min_time=0.01)
set_tests_properties(correlate.bench_smoke PROPERTIES LABELS unit TIMEOUT 60)
