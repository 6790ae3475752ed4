# SPDX-License-Identifier: BSD-2-Clause
# TLS key material (engine/tls/keys): RFC 8448 / SHA-384 known answers, key log
# lines, strict key log parsing, bounded client-random dedup.
add_executable(correlate_tls_keys_test ${EHP_TEST_DIR}/unit/tls_keys_test.cc)
target_link_libraries(correlate_tls_keys_test PRIVATE ehp_correlate OpenSSL::SSL OpenSSL::Crypto GTest::gtest_main)
gtest_discover_tests(correlate_tls_keys_test PROPERTIES LABELS unit)
