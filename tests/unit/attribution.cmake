# SPDX-License-Identifier: BSD-2-Clause
# Process attribution (engine/capture/attribution.cc), pure parts: /proc/net parsing and comment
# formatting, no privileges. The in-kernel side is tests/bpf/attribution.cmake.
# attribution.cc is compiled in directly so this test doesn't depend on the rest of ehp_capture.
add_executable(attribution_unit_test
  ${EHP_TEST_DIR}/unit/attribution_unit_test.cc
  ${CMAKE_SOURCE_DIR}/engine/capture/attribution.cc)
target_include_directories(attribution_unit_test PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bpf)
target_link_libraries(attribution_unit_test PRIVATE PkgConfig::LIBBPF GTest::gtest_main)
gtest_discover_tests(attribution_unit_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)
