# SPDX-License-Identifier: BSD-2-Clause
# Which sessions the hold-back holds on a live capture (pipeline/key_policy.h).
add_executable(key_policy_test ${EHP_TEST_DIR}/unit/key_policy_test.cc)
target_link_libraries(key_policy_test PRIVATE ehp_pipeline GTest::gtest GTest::gtest_main)
gtest_discover_tests(key_policy_test PROPERTIES LABELS unit)
