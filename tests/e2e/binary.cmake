# SPDX-License-Identifier: BSD-2-Clause
# End-to-end tests of the ecapture-hp binary itself (root, real peers). They need the binary,
# so they exist only when it is built.
if(TARGET ecapture-hp)
  foreach(t tls_decrypt tls_keylog_text live_capture live_loopback live_vlan cli_errors)
    if(EXISTS ${EHP_TEST_DIR}/e2e/${t}.sh)
      add_test(NAME e2e_${t} COMMAND bash ${EHP_TEST_DIR}/e2e/${t}.sh)
      set_tests_properties(e2e_${t} PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE
                           ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
    endif()
  endforeach()
endif()
