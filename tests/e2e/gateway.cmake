# SPDX-License-Identifier: BSD-2-Clause
# Issue 15: a router namespace between a client and a server namespace; untraced forwarded TLS
# is not held (time order), each interface matches tcpdump, the router's traced client decrypts.
if(TARGET ecapture-hp)
  add_test(NAME e2e_gateway COMMAND bash ${EHP_TEST_DIR}/e2e/gateway.sh)
  set_tests_properties(e2e_gateway PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
