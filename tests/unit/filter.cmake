# SPDX-License-Identifier: BSD-2-Clause
# engine/filter, no privileges.
#   filter_unit_test (unit): compile errors, translator refusals, output shape, and the
#                            translation run by a userspace eBPF interpreter vs libpcap
#                            (ehp_filter_testlib, tests/bpf/filter.cmake).
add_executable(filter_unit_test
  ${EHP_TEST_DIR}/unit/filter_unit_test.cc
  ${EHP_TEST_DIR}/unit/filter_prepared_test.cc)
target_link_libraries(filter_unit_test PRIVATE ehp_filter_testlib GTest::gtest_main)
gtest_discover_tests(filter_unit_test PROPERTIES LABELS unit)
