# SPDX-License-Identifier: BSD-2-Clause
# io_uring writer on filesystems mounted by the test (root, /tmp/p2-*): ENOSPC on a small tmpfs
# and EIO from a loop device shrunk under its ext4 (the file still reads back with tshark and
# tcpdump and ends on a complete block), and the buffered fallback on ramfs, which refuses
# O_DIRECT (tmpfs accepts it since Linux 6.6). Binary built from tests/e2e/writer_fs_test.cc, with
# the helpers of tests/unit/writer_testlib.h.
add_executable(writer_fs_test ${EHP_TEST_DIR}/e2e/writer_fs_test.cc)
target_include_directories(writer_fs_test PRIVATE ${EHP_TEST_DIR}/unit)
target_link_libraries(writer_fs_test PRIVATE ehp_output GTest::gtest GTest::gtest_main)
add_test(NAME writer.e2e.enospc_eio_odirect_fallback
         COMMAND bash ${EHP_TEST_DIR}/e2e/writer_fs.sh $<TARGET_FILE:writer_fs_test>)
set_tests_properties(writer.e2e.enospc_eio_odirect_fallback PROPERTIES LABELS e2e TIMEOUT 90)
