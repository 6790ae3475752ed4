# engine/filter tests.
#   filter_unit_test (unit): compile errors, translator refusals, output shape, and the
#                            translation run by a userspace eBPF interpreter vs libpcap.
#   filter_bpf_test  (bpf):  translated filters patched into bpf/filter_test.bpf.c via install(),
#                            loaded, and run with BPF_PROG_TEST_RUN against pcap_offline_filter.
add_library(ehp_filter_testlib STATIC
  ${EHP_TEST_DIR}/bpf/filter_frames.cc
  ${EHP_TEST_DIR}/bpf/filter_pcap_oracle.cc
  ${EHP_TEST_DIR}/bpf/filter_ebpf_interp.cc)
target_include_directories(ehp_filter_testlib PUBLIC ${EHP_TEST_DIR}/bpf)
target_link_libraries(ehp_filter_testlib PUBLIC ehp_filter)

add_executable(filter_unit_test ${EHP_TEST_DIR}/bpf/filter_unit_test.cc ${EHP_TEST_DIR}/bpf/filter_prepared_test.cc)
target_link_libraries(filter_unit_test PRIVATE ehp_filter_testlib GTest::gtest_main)
gtest_discover_tests(filter_unit_test PROPERTIES LABELS unit)

add_executable(filter_bpf_test ${EHP_TEST_DIR}/bpf/filter_bpf_test.cc)
target_link_libraries(filter_bpf_test PRIVATE ehp_filter_testlib ehp_bpf GTest::gtest_main)
add_dependencies(filter_bpf_test bpf_filter_test)
gtest_discover_tests(filter_bpf_test PROPERTIES LABELS bpf TIMEOUT 120)
