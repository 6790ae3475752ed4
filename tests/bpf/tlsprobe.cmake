# SPDX-License-Identifier: BSD-2-Clause
# engine/tlsprobe: verifier acceptance of the uprobe program (bpf/openssl.bpf.c) for every
# offset row (root).
add_executable(tlsprobe_bpf_load_test ${EHP_TEST_DIR}/bpf/tlsprobe_bpf_load_test.cc)
target_link_libraries(tlsprobe_bpf_load_test PRIVATE ehp_tlsprobe GTest::gtest_main)
gtest_discover_tests(tlsprobe_bpf_load_test TEST_PREFIX "tlsprobe." PROPERTIES LABELS bpf)
