# SPDX-License-Identifier: BSD-2-Clause
# OpenSSL linked into Node.js executables (16/18/22 from the npm registry, cached under the build
# directory by tools/fetch-node.sh, and the machine's node), against gnutls-serv.
if(TARGET ecapture-hp)
  add_test(NAME e2e_tls_node COMMAND bash ${EHP_TEST_DIR}/e2e/tls_node.sh)
  set_tests_properties(e2e_tls_node PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE SKIP_RETURN_CODE 77
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
