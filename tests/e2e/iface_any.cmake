# SPDX-License-Identifier: BSD-2-Clause
# Issue 15 item 4: -i any with the design card's command line (no subcommand).
if(TARGET ecapture-hp)
  add_test(NAME e2e_iface_any COMMAND bash ${EHP_TEST_DIR}/e2e/iface_any.sh)
  set_tests_properties(e2e_iface_any PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
