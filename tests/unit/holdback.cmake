# SPDX-License-Identifier: BSD-2-Clause
# Hold-back (DSB-before-ClientHello ordering) and the correlation flow graph: pure code, no root.
add_executable(holdback_test ${EHP_TEST_DIR}/unit/holdback_test.cc)
target_include_directories(holdback_test PRIVATE ${EHP_TEST_DIR}/unit)
target_link_libraries(holdback_test PRIVATE ehp_correlate GTest::gtest GTest::gtest_main)
gtest_discover_tests(holdback_test PROPERTIES LABELS unit)

add_executable(correlator_test ${EHP_TEST_DIR}/unit/correlator_test.cc)
target_include_directories(correlator_test PRIVATE ${EHP_TEST_DIR}/unit)
target_link_libraries(correlator_test PRIVATE ehp_correlate GTest::gtest GTest::gtest_main)
gtest_discover_tests(correlator_test PROPERTIES LABELS unit)
