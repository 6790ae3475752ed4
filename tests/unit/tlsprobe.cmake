# SPDX-License-Identifier: BSD-2-Clause
# engine/tlsprobe offsets: table rows, accessor decoding, handshake functions from the file,
# hostile files, refusal lines. No root needed. tlsprobe_fake_libssl is built by
# tests/e2e/tlsprobe.cmake (the e2e refusal test uses it too).
add_executable(tlsprobe_offsets_test ${EHP_TEST_DIR}/unit/tlsprobe_offsets_test.cc)
target_link_libraries(tlsprobe_offsets_test PRIVATE ehp_tlsprobe ehp_correlate OpenSSL::SSL GTest::gtest_main)
target_compile_definitions(tlsprobe_offsets_test PRIVATE
  EHP_FAKE_LIBSSL="$<TARGET_FILE:tlsprobe_fake_libssl>")
add_dependencies(tlsprobe_offsets_test tlsprobe_fake_libssl)
gtest_discover_tests(tlsprobe_offsets_test TEST_PREFIX "tlsprobe." PROPERTIES LABELS unit)
