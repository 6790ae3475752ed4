# SPDX-License-Identifier: BSD-2-Clause
# Frame decoding and TLS hello recognition (engine/net/frame): crafted VLAN, IPv4
# options/fragments, IPv6 extension headers, every truncation of every valid frame.
add_executable(correlate_frame_test ${EHP_TEST_DIR}/unit/frame_test.cc)
target_link_libraries(correlate_frame_test PRIVATE ehp_correlate GTest::gtest_main)
gtest_discover_tests(correlate_frame_test PROPERTIES LABELS unit)
