# SPDX-License-Identifier: BSD-2-Clause
# ehp_capture against the real kernel: loads tc_capture.bpf.c and drives it with
# BPF_PROG_TEST_RUN (root).
add_executable(capture_bpf_test ${EHP_TEST_DIR}/bpf/capture_bpf_test.cc)
target_link_libraries(capture_bpf_test PRIVATE ehp_capture GTest::gtest_main)
gtest_discover_tests(capture_bpf_test PROPERTIES LABELS bpf DISCOVERY_TIMEOUT 30)
