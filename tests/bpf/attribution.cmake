# SPDX-License-Identifier: BSD-2-Clause
# Process attribution (bpf/attribution.h, engine/capture/attribution.cc), in the kernel (root).
# attribution_bpf_test: loads tests/bpf/attrib_test.bpf.c, runs real TCP/UDP/curl peers in two
#                       netns joined by a veth, and checks every packet's attributed process.
# The pure parts (no privileges) are tested by tests/unit/attribution.cmake.
# attribution.cc is compiled in directly so this test doesn't depend on the rest of ehp_capture.

# Test-only BPF object: attrib_test.skel.h in ${EHP_BPF_OUT}, target bpf_attrib_test.
ehp_bpf_skeleton(attrib_test ${EHP_TEST_DIR}/bpf/attrib_test.bpf.c
                 ${EHP_TEST_DIR}/bpf/attribution_test_abi.h)

add_executable(attribution_bpf_test
  ${EHP_TEST_DIR}/bpf/attribution_bpf_test.cc
  ${CMAKE_SOURCE_DIR}/engine/capture/attribution.cc)
target_include_directories(attribution_bpf_test PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bpf)
target_link_libraries(attribution_bpf_test PRIVATE ehp_bpf PkgConfig::LIBBPF GTest::gtest_main)
add_dependencies(attribution_bpf_test bpf_attrib_test)
gtest_discover_tests(attribution_bpf_test PROPERTIES LABELS bpf DISCOVERY_TIMEOUT 30)
