# SPDX-License-Identifier: BSD-2-Clause
# Issue "Security first": a hostile local user (nobody) against ecapture-hp: no code of an
# inspected libssl runs in the engine (also in another mount namespace), a bit-flipped libssl is
# refused without a crash, hostile files are read bounded (512 MiB sparse libssl, /dev/zero), the
# secret-bearing output is never handed to another user (pre-created files, FIFOs), and signals at
# any moment (filter compile, FIFO open, extcap, start-up) end it within 1 s with no tc hook left.
if(TARGET ecapture-hp)
  add_test(NAME e2e_security COMMAND bash ${EHP_TEST_DIR}/e2e/security.sh)
  set_tests_properties(e2e_security PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
