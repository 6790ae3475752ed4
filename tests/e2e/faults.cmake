# SPDX-License-Identifier: BSD-2-Clause
# Fault tests of the ecapture-hp binary (issue 7): SIGKILL + stale filters, SIGINT/SIGTERM under
# load, ENOSPC, a slow output, TLS processes dying mid-handshake / libssl dlclose, -Z, and a
# one-minute soak (tools/soak.sh 1; the 10-minute run is manual, see docs/reliability.md).
# Root, real peers in namespaces; they exist only when the binary is built.
if(TARGET ecapture-hp)
  foreach(t kill signal enospc slowdisk tls_exit dropuser)
    add_test(NAME e2e_faults_${t} COMMAND bash ${EHP_TEST_DIR}/e2e/faults_${t}.sh)
    set_tests_properties(e2e_faults_${t} PROPERTIES LABELS e2e TIMEOUT 180 RUN_SERIAL TRUE
                         ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
  endforeach()
  # Where the kernel puts the handshake uprobes (all processes, or only -p's), read from memory.
  add_test(NAME e2e_uprobe_scope COMMAND bash ${EHP_TEST_DIR}/e2e/uprobe_scope.sh)
  set_tests_properties(e2e_uprobe_scope PROPERTIES LABELS e2e TIMEOUT 120 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
  add_test(NAME e2e_soak_short COMMAND bash ${EHP_TEST_DIR}/../tools/soak.sh 1)
  set_tests_properties(e2e_soak_short PROPERTIES LABELS e2e TIMEOUT 300 RUN_SERIAL TRUE
                       ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
endif()
