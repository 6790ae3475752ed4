# SPDX-License-Identifier: BSD-2-Clause
# Short smoke runs of the benchmark tools (tools/bench-capture.sh, bench-tls.sh, bench.sh's
# replay vs fio vs pcapgo, bench-gateway.sh): they keep working; they are not timed tests. Root,
# netns, real peers.
foreach(mode capture tls replay)
  add_test(NAME bench_smoke_${mode}
           COMMAND ${EHP_TEST_DIR}/e2e/bench_smoke.sh ${CMAKE_BINARY_DIR} ${mode})
  set_tests_properties(bench_smoke_${mode} PROPERTIES LABELS e2e TIMEOUT 90 RUN_SERIAL TRUE)
endforeach()
# The gateway benchmark, one 2-s round (~15 s): forwarded TLS is not held and the file is in order.
add_test(NAME bench_smoke_gateway COMMAND ${EHP_TEST_DIR}/e2e/bench_smoke.sh ${CMAKE_BINARY_DIR} gateway)
set_tests_properties(bench_smoke_gateway PROPERTIES LABELS "e2e;bench" TIMEOUT 60 RUN_SERIAL TRUE)
