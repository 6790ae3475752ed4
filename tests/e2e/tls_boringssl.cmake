# SPDX-License-Identifier: BSD-2-Clause
# BoringSSL (Debian's android-libboringssl) through its own secret logger, against gnutls-serv.
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_boringssl COMMAND bash ${EHP_TEST_DIR}/e2e/tls_boringssl.sh)
  set_tests_properties(e2e_tls_boringssl PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
