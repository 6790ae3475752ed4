# SPDX-License-Identifier: BSD-2-Clause
# engine/filter tests.
#   ehp_filter_testlib:      frames, the libpcap oracle and a userspace eBPF interpreter, shared
#                            by filter_unit_test (tests/unit/filter.cmake), filter_bpf_test and
#                            the fuzzers (tests/fuzz/fuzz.cmake).
#   filter_bpf_test  (bpf):  translated filters patched into tests/bpf/filter_test.bpf.c via
#                            install(), loaded, and run with BPF_PROG_TEST_RUN against
#                            pcap_offline_filter.
add_library(ehp_filter_testlib STATIC
  ${EHP_TEST_DIR}/bpf/filter_frames.cc
  ${EHP_TEST_DIR}/bpf/filter_pcap_oracle.cc
  ${EHP_TEST_DIR}/bpf/filter_ebpf_interp.cc)
target_include_directories(ehp_filter_testlib PUBLIC ${EHP_TEST_DIR}/bpf)
target_link_libraries(ehp_filter_testlib PUBLIC ehp_filter)

# Test-only BPF object: filter_test.skel.h in ${EHP_BPF_OUT}, target bpf_filter_test.
ehp_bpf_skeleton(filter_test ${EHP_TEST_DIR}/bpf/filter_test.bpf.c)

add_executable(filter_bpf_test ${EHP_TEST_DIR}/bpf/filter_bpf_test.cc)
target_link_libraries(filter_bpf_test PRIVATE ehp_filter_testlib ehp_bpf GTest::gtest_main)
add_dependencies(filter_bpf_test bpf_filter_test)
gtest_discover_tests(filter_bpf_test PROPERTIES LABELS bpf TIMEOUT 120)
