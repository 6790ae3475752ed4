# SPDX-License-Identifier: BSD-2-Clause
# pcapng encoders, e2e (root): real TLS 1.3 and 1.2 over loopback captured by dumpcap, re-encoded
# with our encoders (pcapng_reencode), decrypted by tshark from the DSB alone; a DSB after the
# packets must not decrypt. The encoders' unit tests are tests/unit/pcapng.cmake.
add_executable(pcapng_reencode ${EHP_TEST_DIR}/e2e/pcapng_reencode.cc)
target_link_libraries(pcapng_reencode PRIVATE ehp_output PkgConfig::LIBPCAP)
# Designated initialisers leave the other members at their defaults on purpose.
target_compile_options(pcapng_reencode PRIVATE -Wno-missing-field-initializers)
foreach(ver 1.3 1.2)
  add_test(NAME pcapng.e2e.tls${ver}_decrypt_dsb_order
           COMMAND bash ${EHP_TEST_DIR}/e2e/pcapng_tls_decrypt.sh $<TARGET_FILE:pcapng_reencode> ${ver})
  set_tests_properties(pcapng.e2e.tls${ver}_decrypt_dsb_order PROPERTIES LABELS e2e TIMEOUT 60)
endforeach()
