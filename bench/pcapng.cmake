# SPDX-License-Identifier: BSD-2-Clause
# pcapng encoders: bytes/s and items/s per block type, EPB at 64 and 1400 B, memcpy ceiling.
add_executable(bench_pcapng ${CMAKE_CURRENT_LIST_DIR}/bench_pcapng.cc)
target_link_libraries(bench_pcapng PRIVATE ehp_output benchmark::benchmark)
target_compile_options(bench_pcapng PRIVATE -Wno-missing-field-initializers)
# CI smoke run: keeps the benchmark working; it is not a timed test.
add_test(NAME pcapng.bench_smoke COMMAND bench_pcapng --benchmark_min_time=0.01)
set_tests_properties(pcapng.bench_smoke PROPERTIES LABELS unit TIMEOUT 60)
