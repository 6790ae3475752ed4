# SPDX-License-Identifier: BSD-2-Clause
# Issue 5 (operator features) end-to-end tests of the ecapture-hp binary: streaming to tshark,
# rotation, stop conditions and statistics, Wireshark extcap + install, command-line misuse.
# Root, real peers in network namespaces; they need the binary, so they exist only with it.
if(TARGET ecapture-hp)
  foreach(t operator_stream operator_rotate operator_stop operator_extcap operator_cli)
    if(EXISTS ${EHP_TEST_DIR}/e2e/${t}.sh)
      add_test(NAME e2e_${t} COMMAND bash ${EHP_TEST_DIR}/e2e/${t}.sh)
      set_tests_properties(e2e_${t} PROPERTIES LABELS e2e TIMEOUT 180 RUN_SERIAL TRUE
                           ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
    endif()
  endforeach()
endif()
