# SPDX-License-Identifier: BSD-2-Clause
# Queue handoff between threads (moodycamel bulk vs mutex+deque): items/s, one producer thread.
add_executable(bench_queue ${CMAKE_CURRENT_LIST_DIR}/bench_queue.cc)
target_link_libraries(bench_queue PRIVATE benchmark::benchmark Threads::Threads)
# CI smoke run: keeps the benchmark working; it is not a timed test.
add_test(NAME queue.bench_smoke COMMAND bench_queue --benchmark_min_time=0.01)
set_tests_properties(queue.bench_smoke PROPERTIES LABELS unit TIMEOUT 60)
