# SPDX-License-Identifier: BSD-2-Clause
# io_uring writer (engine/output/uring_writer.*), unprivileged: file mode/O_TRUNC/O_NOFOLLOW,
# O_DIRECT on the build dir's filesystem, byte-exact content across many buffers, the 2 s flush
# deadline, real short writes (RLIMIT_FSIZE, a slow stdout pipe). Files go under the build dir
# (a real filesystem; /tmp may be tmpfs elsewhere). Root-only cases: tests/e2e/writer.cmake.
add_executable(writer_test ${EHP_TEST_DIR}/unit/writer_test.cc)
target_include_directories(writer_test PRIVATE ${EHP_TEST_DIR}/unit)
target_link_libraries(writer_test PRIVATE ehp_output GTest::gtest GTest::gtest_main)
target_compile_definitions(writer_test PRIVATE
  EHP_WRITER_TEST_DIR_DEFAULT="${CMAKE_CURRENT_BINARY_DIR}")
gtest_discover_tests(writer_test TEST_PREFIX "writer." PROPERTIES LABELS unit TIMEOUT 60)
