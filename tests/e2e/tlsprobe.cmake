# SPDX-License-Identifier: BSD-2-Clause
# engine/tlsprobe: OpenSSL uprobes for TLS secrets and -m text plaintext.
# Driver used by tests/e2e/tlsprobe_e2e.sh and tests/e2e/tlsprobe_overhead.sh.
add_executable(tlsprobe_tool ${EHP_TEST_DIR}/e2e/tlsprobe_tool.cc)
target_link_libraries(tlsprobe_tool PRIVATE ehp_tlsprobe ehp_correlate)

# A fake "vendor build" libssl.so.3: exports SSL_new and SSL_get_session reading ssl_st+0x938 (the
# drift docs/facts.md reports for a vendor 3.0.12), carries "OpenSSL 3.0.12"; must be refused.
# Also used by tlsprobe_offsets_test (tests/unit/tlsprobe.cmake).
add_library(tlsprobe_fake_libssl SHARED ${EHP_TEST_DIR}/e2e/tlsprobe_fake_libssl.c)
set_target_properties(tlsprobe_fake_libssl PROPERTIES OUTPUT_NAME ssl SUFFIX .so.3 PREFIX lib
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/tlsprobe_fake)
# Its accessors must stay the plain loads the decoder expects, even in sanitizer builds.
target_compile_options(tlsprobe_fake_libssl PRIVATE -fno-sanitize=all)
target_link_options(tlsprobe_fake_libssl PRIVATE -fno-sanitize=all)

# e2e (root): s_server + curl/python/s_client on loopback; the probe's keylog lines must equal the
# clients' own SSLKEYLOGFILE lines; pid/comm, late processes, -p filter, -m text.
add_test(NAME tlsprobe_e2e_keylog
         COMMAND bash ${EHP_TEST_DIR}/e2e/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> keylog)
add_test(NAME tlsprobe_e2e_keylog_fallback
         COMMAND bash ${EHP_TEST_DIR}/e2e/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> keylog_fallback)
add_test(NAME tlsprobe_e2e_filter
         COMMAND bash ${EHP_TEST_DIR}/e2e/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> filter)
add_test(NAME tlsprobe_e2e_text
         COMMAND bash ${EHP_TEST_DIR}/e2e/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> text)
add_test(NAME tlsprobe_e2e_refuse
         COMMAND bash ${EHP_TEST_DIR}/e2e/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> refuse
                 $<TARGET_FILE:tlsprobe_fake_libssl>)
set_tests_properties(tlsprobe_e2e_keylog tlsprobe_e2e_keylog_fallback tlsprobe_e2e_filter tlsprobe_e2e_text tlsprobe_e2e_refuse
                     PROPERTIES LABELS e2e TIMEOUT 90)

# Hook overhead (not a test: timing on a shared 2-core box is no pass/fail signal):
#   tests/e2e/tlsprobe_overhead.sh build-dir/tests/tlsprobe_bench
add_executable(tlsprobe_bench ${EHP_TEST_DIR}/e2e/tlsprobe_bench.cc)
target_link_libraries(tlsprobe_bench PRIVATE ehp_tlsprobe OpenSSL::SSL)

# The other engine/tlsprobe tests: tests/unit/tlsprobe.cmake (offsets, no root) and
# tests/bpf/tlsprobe.cmake (verifier acceptance, root).
