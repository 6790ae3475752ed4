# SPDX-License-Identifier: BSD-2-Clause
# Issue 15 item 4: -i any with the design card's command line (no subcommand).
# iface_any_hotplug: interfaces that appear after the start are added (issue 15 item 4, issue 16).
if(TARGET ecapture-hp)
  add_test(NAME e2e_iface_any COMMAND bash ${EHP_TEST_DIR}/e2e/iface_any.sh)
  add_test(NAME e2e_iface_any_hotplug COMMAND bash ${EHP_TEST_DIR}/e2e/iface_any_hotplug.sh)
  set_tests_properties(e2e_iface_any e2e_iface_any_hotplug PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
