# SPDX-License-Identifier: BSD-2-Clause
# PcapngSink (engine/sink): interfaces added while a capture runs (issue 16), read back with the
# replay reader. Unprivileged; files go under the build dir.
add_executable(sink_unit_tests ${EHP_TEST_DIR}/unit/sink_interfaces_test.cc)
target_link_libraries(sink_unit_tests PRIVATE ehp_sink ehp_pipeline GTest::gtest GTest::gtest_main)
target_compile_definitions(sink_unit_tests PRIVATE EHP_SINK_TEST_DIR="${CMAKE_CURRENT_BINARY_DIR}")
target_compile_options(sink_unit_tests PRIVATE -Wno-missing-field-initializers)
gtest_discover_tests(sink_unit_tests TEST_PREFIX "sink." PROPERTIES LABELS unit TIMEOUT 60)
