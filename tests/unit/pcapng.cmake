# SPDX-License-Identifier: BSD-2-Clause
# pcapng encoders: golden bytes, complete_prefix, and read-back by tshark/tcpdump (unit: no root).
add_executable(pcapng_unit_tests
  ${EHP_TEST_DIR}/unit/pcapng_golden_test.cc
  ${EHP_TEST_DIR}/unit/pcapng_readback_test.cc
  ${EHP_TEST_DIR}/unit/pcapng_prefix_test.cc)
target_link_libraries(pcapng_unit_tests PRIVATE ehp_output GTest::gtest GTest::gtest_main)
gtest_discover_tests(pcapng_unit_tests TEST_PREFIX "pcapng." PROPERTIES LABELS unit)
# Designated initialisers leave the other members at their defaults on purpose.
target_compile_options(pcapng_unit_tests PRIVATE -Wno-missing-field-initializers)
# The TLS decryption e2e test of the encoders is tests/e2e/pcapng.cmake.
