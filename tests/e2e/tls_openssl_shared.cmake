# SPDX-License-Identifier: BSD-2-Clause
# Shared libssl of other Debian releases (1.1.1, 3.5, 3.6; fetched by tools/fetch-debian-openssl.sh
# and cached under the build directory), client and server side, against gnutls.
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_openssl_shared COMMAND bash ${EHP_TEST_DIR}/e2e/tls_openssl_shared.sh)
  set_tests_properties(e2e_tls_openssl_shared PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
