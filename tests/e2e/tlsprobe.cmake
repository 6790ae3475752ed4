# engine/tlsprobe: OpenSSL uprobes for TLS secrets and -m text plaintext.
# Driver used by tests/scripts/tlsprobe_*.sh.
add_executable(tlsprobe_tool ${EHP_TEST_DIR}/e2e/tlsprobe_tool.cc)
target_link_libraries(tlsprobe_tool PRIVATE ehp_tlsprobe ehp_correlate)

# A fake "vendor build" libssl.so.3: exports SSL_new and SSL_get_session reading ssl_st+0x938 (the
# drift FACTS.md reports for a vendor 3.0.12), carries "OpenSSL 3.0.12"; must be refused.
add_library(tlsprobe_fake_libssl SHARED ${EHP_TEST_DIR}/e2e/tlsprobe_fake_libssl.c)
set_target_properties(tlsprobe_fake_libssl PROPERTIES OUTPUT_NAME ssl SUFFIX .so.3 PREFIX lib
                      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/tlsprobe_fake)
# Its accessors must stay the plain loads the decoder expects, even in sanitizer builds.
target_compile_options(tlsprobe_fake_libssl PRIVATE -fno-sanitize=all)
target_link_options(tlsprobe_fake_libssl PRIVATE -fno-sanitize=all)

# Offsets: table rows, accessor decoding, handshake functions from the file, hostile files,
# refusal lines. No root needed.
add_executable(tlsprobe_offsets_test ${EHP_TEST_DIR}/e2e/tlsprobe_offsets_test.cc)
target_link_libraries(tlsprobe_offsets_test PRIVATE ehp_tlsprobe ehp_correlate OpenSSL::SSL GTest::gtest_main)
target_compile_definitions(tlsprobe_offsets_test PRIVATE
  EHP_FAKE_LIBSSL="$<TARGET_FILE:tlsprobe_fake_libssl>")
add_dependencies(tlsprobe_offsets_test tlsprobe_fake_libssl)
gtest_discover_tests(tlsprobe_offsets_test TEST_PREFIX "tlsprobe." PROPERTIES LABELS unit)

# e2e (root): s_server + curl/python/s_client on loopback; the probe's keylog lines must equal the
# clients' own SSLKEYLOGFILE lines; pid/comm, late processes, -p filter, -m text.
add_test(NAME tlsprobe_e2e_keylog
         COMMAND bash ${EHP_TEST_DIR}/scripts/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> keylog)
add_test(NAME tlsprobe_e2e_keylog_fallback
         COMMAND bash ${EHP_TEST_DIR}/scripts/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> keylog_fallback)
add_test(NAME tlsprobe_e2e_filter
         COMMAND bash ${EHP_TEST_DIR}/scripts/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> filter)
add_test(NAME tlsprobe_e2e_text
         COMMAND bash ${EHP_TEST_DIR}/scripts/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> text)
add_test(NAME tlsprobe_e2e_refuse
         COMMAND bash ${EHP_TEST_DIR}/scripts/tlsprobe_e2e.sh $<TARGET_FILE:tlsprobe_tool> refuse
                 $<TARGET_FILE:tlsprobe_fake_libssl>)
set_tests_properties(tlsprobe_e2e_keylog tlsprobe_e2e_keylog_fallback tlsprobe_e2e_filter tlsprobe_e2e_text tlsprobe_e2e_refuse
                     PROPERTIES LABELS e2e TIMEOUT 90)

# Hook overhead (not a test: timing on a shared 2-core box is no pass/fail signal):
#   tests/scripts/tlsprobe_overhead.sh build-dir/tests/tlsprobe_bench
add_executable(tlsprobe_bench ${EHP_TEST_DIR}/e2e/tlsprobe_bench.cc)
target_link_libraries(tlsprobe_bench PRIVATE ehp_tlsprobe OpenSSL::SSL)

# Verifier acceptance of the uprobe program for every offset row (root).
add_executable(tlsprobe_bpf_load_test ${EHP_TEST_DIR}/e2e/tlsprobe_bpf_load_test.cc)
target_link_libraries(tlsprobe_bpf_load_test PRIVATE ehp_tlsprobe GTest::gtest_main)
gtest_discover_tests(tlsprobe_bpf_load_test TEST_PREFIX "tlsprobe." PROPERTIES LABELS bpf)
