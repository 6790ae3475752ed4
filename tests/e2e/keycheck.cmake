# SPDX-License-Identifier: BSD-2-Clause
# The key check (issue 14 item 5): curl/s_client against gnutls-serv, keys verified per traced
# binary; a deliberately corrupted secret (test hook) is caught and named.
if(TARGET ecapture-hp)
  add_test(NAME e2e_keycheck COMMAND bash ${EHP_TEST_DIR}/e2e/keycheck.sh)
  set_tests_properties(e2e_keycheck PROPERTIES LABELS e2e TIMEOUT 180 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
