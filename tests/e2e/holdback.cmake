# SPDX-License-Identifier: BSD-2-Clause
# Hold-back end to end (root): real openssl TLS 1.2/1.3 sessions in a netns, captured by dumpcap,
# replayed through HoldBack with late secrets; plain `tshark -Y http` must decrypt every request,
# and the same replay without hold-back must decrypt none.
add_executable(holdback_replay ${EHP_TEST_DIR}/e2e/holdback_replay.cc)
target_link_libraries(holdback_replay PRIVATE ehp_correlate ehp_output PkgConfig::LIBPCAP)
add_test(NAME holdback_e2e
         COMMAND bash ${EHP_TEST_DIR}/e2e/holdback_e2e.sh $<TARGET_FILE:holdback_replay>)
set_tests_properties(holdback_e2e PROPERTIES LABELS e2e TIMEOUT 120)
