# SPDX-License-Identifier: BSD-2-Clause
# One home per fact: the interface link type (ipip tunnel) and the extcap entry point.
if(TARGET ecapture-hp)
  add_test(NAME e2e_pipeline_facts COMMAND bash ${EHP_TEST_DIR}/e2e/pipeline_facts.sh)
  set_tests_properties(e2e_pipeline_facts PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
