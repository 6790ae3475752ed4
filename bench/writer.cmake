# SPDX-License-Identifier: BSD-2-Clause
# io_uring writer throughput: O_DIRECT vs buffered io_uring vs a plain write(2) loop, bytes/s,
# file under $EHP_BENCH_DIR (default: the working dir) and deleted after each iteration.
add_executable(bench_writer ${CMAKE_CURRENT_LIST_DIR}/bench_writer.cc)
target_link_libraries(bench_writer PRIVATE ehp_output benchmark::benchmark)
# CI smoke run (8 MiB per iteration in the build dir): keeps it working; it is not a timed test.
add_test(NAME writer.bench_smoke COMMAND bench_writer --benchmark_min_time=0.01)
set_tests_properties(writer.bench_smoke PROPERTIES LABELS unit TIMEOUT 60
                     ENVIRONMENT "EHP_BENCH_WRITER_MB=8;EHP_BENCH_DIR=${CMAKE_CURRENT_BINARY_DIR}")
