# SPDX-License-Identifier: BSD-2-Clause
# OpenSSL linked statically into a program that exports nothing (.symtab only; stripped: refused).
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_static COMMAND bash ${EHP_TEST_DIR}/e2e/tls_static.sh)
  set_tests_properties(e2e_tls_static PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
