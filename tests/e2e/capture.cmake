# SPDX-License-Identifier: BSD-2-Clause
# ehp::capture end to end (root): real traffic on a veth pair into a private netns, compared
# with tcpdump on the same interface; foreign clsact filters; stale filter cleanup; UDP flood.
add_executable(capture_probe ${EHP_TEST_DIR}/e2e/capture_probe.cc)
target_link_libraries(capture_probe PRIVATE ehp_capture)
add_executable(capture_udp_flood ${EHP_TEST_DIR}/e2e/capture_udp_flood.cc)
foreach(mode traffic foreign stale flood multi uid)
  add_test(NAME capture_e2e_${mode}
           COMMAND ${EHP_TEST_DIR}/e2e/capture_e2e.sh $<TARGET_FILE_DIR:capture_probe> ${mode})
  set_tests_properties(capture_e2e_${mode} PROPERTIES LABELS e2e TIMEOUT 90)
endforeach()
