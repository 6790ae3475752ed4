# SPDX-License-Identifier: BSD-2-Clause
# The key check (engine/tls/verify): real records from an in-memory OpenSSL handshake, TLS 1.2
# and 1.3, AES-GCM and ChaCha20-Poly1305; flipped bytes fail, other suites are unverifiable.
add_executable(tls_verify_test ${EHP_TEST_DIR}/unit/tls_verify_test.cc)
target_link_libraries(tls_verify_test PRIVATE ehp_tls OpenSSL::SSL OpenSSL::Crypto GTest::gtest_main)
gtest_discover_tests(tls_verify_test TEST_PREFIX "tls." PROPERTIES LABELS unit)
