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

# The code shapes of real libssl builds the secret-logger locator must handle (upstream -O3 3.4,
# Debian's 1.1.1w with the split key log body), as tiny assembled libraries (tests/unit/shapes).
enable_language(ASM)
foreach(shape openssl34_o3 openssl111_split)
  add_library(shape_${shape} SHARED ${EHP_TEST_DIR}/unit/shapes/${shape}.S)
  set_target_properties(shape_${shape} PROPERTIES LINKER_LANGUAGE C)
  target_link_options(shape_${shape} PRIVATE -nostdlib -Wl,--eh-frame-hdr)
  add_dependencies(tlsprobe_offsets_test shape_${shape})
endforeach()
target_compile_definitions(tlsprobe_offsets_test PRIVATE
  EHP_SHAPE_34_O3="$<TARGET_FILE:shape_openssl34_o3>" EHP_SHAPE_111_SPLIT="$<TARGET_FILE:shape_openssl111_split>")

# The RCU knob guard of late attaches, on stand-in files (no root needed).
add_executable(tlsprobe_expedite_test ${EHP_TEST_DIR}/unit/tlsprobe_expedite_test.cc)
target_link_libraries(tlsprobe_expedite_test PRIVATE ehp_tlsprobe GTest::gtest_main)
gtest_discover_tests(tlsprobe_expedite_test TEST_PREFIX "tlsprobe." PROPERTIES LABELS unit)
