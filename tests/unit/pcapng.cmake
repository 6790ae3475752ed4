# pcapng encoders: golden bytes, complete_prefix, and read-back by tshark/tcpdump (unit: no root).
add_executable(pcapng_unit_tests
  ${EHP_TEST_DIR}/unit/pcapng_golden_test.cc
  ${EHP_TEST_DIR}/unit/pcapng_readback_test.cc
  ${EHP_TEST_DIR}/unit/pcapng_prefix_test.cc)
target_link_libraries(pcapng_unit_tests PRIVATE ehp_output GTest::gtest GTest::gtest_main)
gtest_discover_tests(pcapng_unit_tests TEST_PREFIX "pcapng." PROPERTIES LABELS unit)
# Designated initialisers leave the other members at their defaults on purpose.
target_compile_options(pcapng_unit_tests PRIVATE -Wno-missing-field-initializers)

# e2e (root): real TLS 1.3 and 1.2 over loopback captured by dumpcap, re-encoded with our encoders,
# decrypted by tshark from the DSB alone; a DSB after the packets must not decrypt.
add_executable(pcapng_reencode ${EHP_TEST_DIR}/unit/pcapng/reencode.cc)
target_link_libraries(pcapng_reencode PRIVATE ehp_output PkgConfig::LIBPCAP)
target_compile_options(pcapng_reencode PRIVATE -Wno-missing-field-initializers)
foreach(ver 1.3 1.2)
  add_test(NAME pcapng.e2e.tls${ver}_decrypt_dsb_order
           COMMAND bash ${EHP_TEST_DIR}/unit/pcapng/tls_decrypt_e2e.sh $<TARGET_FILE:pcapng_reencode> ${ver})
  set_tests_properties(pcapng.e2e.tls${ver}_decrypt_dsb_order PROPERTIES LABELS e2e TIMEOUT 60)
endforeach()
