# SPDX-License-Identifier: BSD-2-Clause
# Issue 16 (edge cases a careful operator hits) end-to-end tests of the ecapture-hp binary:
# pcap + key log file and a failing key log (operator_edge), replay of keys, late timestamps and
# cut files (operator_replay), every stop signal and TC leftovers with two captures and other
# tools' filters (operator_signals). Root, real peers in network namespaces; binary only.
if(TARGET ecapture-hp)
  foreach(t operator_edge operator_replay operator_signals operator_ifgone)
    if(EXISTS ${EHP_TEST_DIR}/e2e/${t}.sh)
      add_test(NAME e2e_${t} COMMAND bash ${EHP_TEST_DIR}/e2e/${t}.sh)
      set_tests_properties(e2e_${t} PROPERTIES LABELS e2e TIMEOUT 240 RUN_SERIAL TRUE
                           ENVIRONMENT "EHP=$<TARGET_FILE:ecapture-hp>")
    endif()
  endforeach()
endif()
