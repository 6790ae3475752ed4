# SPDX-License-Identifier: BSD-2-Clause
# CI smoke runs of issue 7's fuzzing and sanitizer jobs (label `fuzz`, not `unit`: they build
# their own instrumented trees and take minutes, so `ctest -L unit` stays fast).
#   fuzz.smoke_10s      tools/fuzz.sh 10: clang/libFuzzer build of tests/fuzz/ in <build>/fuzz-smoke,
#                       then every target for 10 s from generated seeds; fails on any crash or
#                       violated property. fuzz_translate loads every translation into the
#                       kernel verifier, so this wants root (CI runs as root).
#   fuzz.sanitize_unit  tools/sanitize.sh: the unit tests built with ASan+UBSan in
#                       <build>/sanitize-smoke and run with halt_on_error.
# Both use -j2 and are RUN_SERIAL so they do not compete with each other for the two cores.
# Skip them with `ctest -LE fuzz`; run only them with `ctest -L fuzz`.
# The EHP_FUZZ / EHP_SANITIZE builds they configure do not register them again.
if(NOT EHP_FUZZ AND NOT EHP_SANITIZE)
  add_test(NAME fuzz.smoke_10s
           COMMAND ${CMAKE_COMMAND} -E env BUILD_FUZZ=${CMAKE_BINARY_DIR}/fuzz-smoke FUZZ_JOBS=2
                   bash ${CMAKE_SOURCE_DIR}/tools/fuzz.sh 10)
  set_tests_properties(fuzz.smoke_10s PROPERTIES LABELS fuzz TIMEOUT 600 RUN_SERIAL TRUE)
  add_test(NAME fuzz.sanitize_unit
           COMMAND ${CMAKE_COMMAND} -E env BUILD_SAN=${CMAKE_BINARY_DIR}/sanitize-smoke JOBS=2
                   bash ${CMAKE_SOURCE_DIR}/tools/sanitize.sh)
  set_tests_properties(fuzz.sanitize_unit PROPERTIES LABELS fuzz TIMEOUT 900 RUN_SERIAL TRUE)
endif()
