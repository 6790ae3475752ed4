# io_uring writer on filesystems mounted by the test (root): ENOSPC on a small tmpfs (file still
# reads back with tshark and tcpdump, ends on a complete block) and the buffered fallback on
# ramfs, which refuses O_DIRECT. The test binary is built from tests/unit/writer_fs_test.cc.
add_executable(writer_fs_test ${EHP_TEST_DIR}/unit/writer_fs_test.cc)
target_include_directories(writer_fs_test PRIVATE ${EHP_TEST_DIR}/unit)
target_link_libraries(writer_fs_test PRIVATE ehp_output GTest::gtest GTest::gtest_main)
add_test(NAME writer.e2e.enospc_tmpfs_and_ramfs_fallback
         COMMAND bash ${EHP_TEST_DIR}/e2e/writer_fs.sh $<TARGET_FILE:writer_fs_test>)
set_tests_properties(writer.e2e.enospc_tmpfs_and_ramfs_fallback PROPERTIES LABELS e2e TIMEOUT 90)
