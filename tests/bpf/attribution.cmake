# Process attribution (bpf/attribution.h, engine/capture/attribution.cc).
# attribution_unit_test: /proc/net parsing and comment formatting, no privileges.
# attribution_bpf_test:  loads bpf/attrib_test.bpf.c, runs real TCP/UDP/curl peers in two netns
#                        joined by a veth, and checks every packet's attributed process (root).
# attribution.cc is compiled in directly so these tests don't depend on the rest of ehp_capture.
add_executable(attribution_unit_test
  ${EHP_TEST_DIR}/bpf/attribution_unit_test.cc
  ${CMAKE_SOURCE_DIR}/engine/capture/attribution.cc)
target_include_directories(attribution_unit_test PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bpf)
target_link_libraries(attribution_unit_test PRIVATE PkgConfig::LIBBPF GTest::gtest_main)
gtest_discover_tests(attribution_unit_test PROPERTIES LABELS unit DISCOVERY_TIMEOUT 30)

add_executable(attribution_bpf_test
  ${EHP_TEST_DIR}/bpf/attribution_bpf_test.cc
  ${CMAKE_SOURCE_DIR}/engine/capture/attribution.cc)
target_include_directories(attribution_bpf_test PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bpf)
target_link_libraries(attribution_bpf_test PRIVATE ehp_bpf PkgConfig::LIBBPF GTest::gtest_main)
add_dependencies(attribution_bpf_test bpf_attrib_test)
gtest_discover_tests(attribution_bpf_test PROPERTIES LABELS bpf DISCOVERY_TIMEOUT 30)
