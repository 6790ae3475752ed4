# SPDX-License-Identifier: BSD-2-Clause
# TLS programs started after ecapture-hp (Go, Node.js, a libssl copy) against gnutls-serv:
# found by the exec tracepoint's late looks, their first session decrypts.
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_late COMMAND bash ${EHP_TEST_DIR}/e2e/tls_late.sh)
  set_tests_properties(e2e_tls_late PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
