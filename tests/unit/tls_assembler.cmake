# SPDX-License-Identifier: BSD-2-Clause
# Key log lines assembled from secrets logged one by one (engine/tls/assembler).
add_executable(tls_assembler_test ${EHP_TEST_DIR}/unit/tls_assembler_test.cc)
target_link_libraries(tls_assembler_test PRIVATE ehp_tls GTest::gtest_main)
gtest_discover_tests(tls_assembler_test TEST_PREFIX "tls." PROPERTIES LABELS unit)
