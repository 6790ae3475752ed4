# SPDX-License-Identifier: BSD-2-Clause
# Traffic generator for tools/bench-capture.sh: sendmmsg UDP load, N sender threads, fixed time.
add_executable(udpgen ${CMAKE_SOURCE_DIR}/tools/gen/udpgen.c)
target_link_libraries(udpgen PRIVATE Threads::Threads)
# Next to ecapture-hp, where tools/bench-capture.sh looks for it.
set_target_properties(udpgen PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
