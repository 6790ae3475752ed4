# SPDX-License-Identifier: BSD-2-Clause
# ClientHello recognition on real handshakes (root): openssl s_server/s_client, TLS 1.2 and
# 1.3 (SHA-256 and SHA-384 suites), IPv4 and IPv6 loopback, captured by dumpcap, read back
# with libpcap; randoms checked against s_client's key log and hello frames against tshark.
add_executable(correlate_clienthello_e2e ${EHP_TEST_DIR}/e2e/clienthello_test.cc)
target_link_libraries(correlate_clienthello_e2e PRIVATE ehp_correlate PkgConfig::LIBPCAP GTest::gtest_main)
add_test(NAME correlate_clienthello_e2e COMMAND correlate_clienthello_e2e)
set_tests_properties(correlate_clienthello_e2e PROPERTIES LABELS e2e TIMEOUT 90)
