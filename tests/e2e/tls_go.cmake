# SPDX-License-Identifier: BSD-2-Clause
# Go crypto/tls (tests/e2e/go/tls_go.go built by the test with Debian's go: PIE, non-PIE,
# stripped) against gnutls-serv, and a Go server against gnutls-cli.
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_go COMMAND bash ${EHP_TEST_DIR}/e2e/tls_go.sh)
  set_tests_properties(e2e_tls_go PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
