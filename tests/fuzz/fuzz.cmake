# SPDX-License-Identifier: BSD-2-Clause
# libFuzzer targets (issue 7, "Fuzzing"). Included by tests/CMakeLists.txt only with
# -DEHP_FUZZ=ON; tools/fuzz.sh configures such a build (CC=clang CXX=clang++) and runs them.
#
# Every target is compiled with -fsanitize=fuzzer,address,undefined. tools/fuzz.sh also passes
# -fsanitize=fuzzer-no-link,address,undefined in CMAKE_{C,CXX}_FLAGS so the engine libraries the
# targets link (ehp_correlate, ehp_output, ehp_filter) are coverage-instrumented too; without it
# the targets still build and run, only with coverage feedback from their own code.
#
#   fuzz_frame          ehp::net::decode_frame + classify_tls + flow_key
#   fuzz_keylog         ehp::tls::parse_keylog_line, keylog_lines round trip
#   fuzz_ring_record    capture ring walk + record decode (engine/capture/record.h)
#   fuzz_translate      ehp::filter::translate -> kernel verifier (root) + verdict vs libpcap
#   fuzz_filter         differential: translate vs userspace eBPF interpreter (tests/bpf/filter_ebpf_interp.h)
#   fuzz_pcapng_prefix  ehp::pcapng::complete_prefix / scan_prefix
#   fuzz_capture_file   the replay input reader (pipeline/capture_file: pcap, pcapng, DSBs, cut files)
#   fuzz_elf            engine/tlsprobe's binary readers (ELF tables, secret-logger locator, Go pclntab, RETs)
#   fuzz_seeds          seed corpus generator (not a fuzzer)
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "EHP_FUZZ=ON needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()

set(EHP_FUZZ_DIR ${CMAKE_CURRENT_LIST_DIR})
set(EHP_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -g)
set(EHP_FUZZ_TARGETS "")

function(ehp_fuzz_target name)
  add_executable(${name} ${EHP_FUZZ_DIR}/${name}.cc)
  target_compile_options(${name} PRIVATE ${EHP_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE ${EHP_FUZZ_FLAGS})
  target_include_directories(${name} PRIVATE ${EHP_FUZZ_DIR} ${CMAKE_SOURCE_DIR}/engine
                             ${CMAKE_SOURCE_DIR}/bpf)
  target_link_libraries(${name} PRIVATE ${ARGN})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  set(EHP_FUZZ_TARGETS ${EHP_FUZZ_TARGETS} ${name} PARENT_SCOPE)
endfunction()

ehp_fuzz_target(fuzz_frame ehp_correlate)
ehp_fuzz_target(fuzz_keylog ehp_correlate)
ehp_fuzz_target(fuzz_ring_record ehp_correlate)
ehp_fuzz_target(fuzz_pcapng_prefix ehp_output)
# The reader alone: its source, not ehp_pipeline (BPF skeletons, TBB) it lives in.
ehp_fuzz_target(fuzz_capture_file)
target_sources(fuzz_capture_file PRIVATE ${CMAKE_SOURCE_DIR}/engine/pipeline/capture_file.cc)
if(TARGET ehp_filter_testlib)
  # Only filter_test.skel.h is needed: depend on that skeleton alone rather than on ehp_bpf
  # (all skeletons), so a BPF program being edited elsewhere cannot break the fuzz build.
  ehp_fuzz_target(fuzz_translate ehp_filter_testlib PkgConfig::LIBBPF)
  target_include_directories(fuzz_translate PRIVATE ${EHP_BPF_OUT})
  add_dependencies(fuzz_translate bpf_filter_test)
  ehp_fuzz_target(fuzz_filter ehp_filter_testlib)
endif()

# The binary readers alone: their sources and Zydis, not ehp_tlsprobe (BPF skeletons).
ehp_fuzz_target(fuzz_elf Zydis::Zydis)
target_sources(fuzz_elf PRIVATE ${CMAKE_SOURCE_DIR}/engine/tlsprobe/elf.cc ${CMAKE_SOURCE_DIR}/engine/tlsprobe/libssl.cc
                                ${CMAKE_SOURCE_DIR}/engine/tlsprobe/gobin.cc)

# The generator is an ordinary program (no libFuzzer main), sanitized like the rest.
add_executable(fuzz_seeds ${EHP_FUZZ_DIR}/fuzz_seeds.cc)
target_compile_options(fuzz_seeds PRIVATE -fsanitize=address,undefined)
target_link_options(fuzz_seeds PRIVATE -fsanitize=address,undefined)
target_include_directories(fuzz_seeds PRIVATE ${CMAKE_SOURCE_DIR}/engine ${CMAKE_SOURCE_DIR}/bpf)
target_link_libraries(fuzz_seeds PRIVATE ehp_correlate ehp_output ehp_filter)
set_target_properties(fuzz_seeds PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
# fuzz_elf's seeds: the assembled code shapes of real libssl builds (tests/unit/shapes) and the
# system's libssl, copied by fuzz_seeds.
add_dependencies(fuzz_seeds shape_openssl34_o3 shape_openssl111_split)
target_compile_definitions(fuzz_seeds PRIVATE
  EHP_ELF_SEEDS="$<TARGET_FILE:shape_openssl34_o3>:$<TARGET_FILE:shape_openssl111_split>:/usr/lib/x86_64-linux-gnu/libssl.so.3")

# One target that builds everything tools/fuzz.sh runs (binaries land in <build>/fuzz/).
add_custom_target(fuzz_all DEPENDS ${EHP_FUZZ_TARGETS} fuzz_seeds)
