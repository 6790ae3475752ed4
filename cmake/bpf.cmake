# SPDX-License-Identifier: BSD-2-Clause
# Builds BPF programs (<name>.bpf.c) into objects and libbpf skeletons (<name>.skel.h) in
# ${EHP_BPF_OUT}. vmlinux.h is generated from the running kernel's BTF.
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_CLANG clang REQUIRED)
set(EHP_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${EHP_BPF_OUT})

# bpf_tracing.h's PT_REGS_* macros need the target architecture, in the kernel's naming.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(EHP_BPF_TARGET_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(EHP_BPF_TARGET_ARCH arm64)
else()
  message(FATAL_ERROR "BPF programs: no __TARGET_ARCH_* known for CMAKE_SYSTEM_PROCESSOR "
                      "'${CMAKE_SYSTEM_PROCESSOR}' (supported: x86_64 -> x86, aarch64 -> arm64); "
                      "add the mapping in cmake/bpf.cmake")
endif()

add_custom_command(
  OUTPUT ${EHP_BPF_OUT}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${EHP_BPF_OUT}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${EHP_BPF_OUT}/vmlinux.h.tmp ${EHP_BPF_OUT}/vmlinux.h
  COMMENT "Generating vmlinux.h from /sys/kernel/btf/vmlinux")
add_custom_target(ehp_vmlinux DEPENDS ${EHP_BPF_OUT}/vmlinux.h)

# ehp_bpf_skeleton(<name> <source> [headers...]) -> target bpf_<name>
# Every header under bpf/ is a dependency; list any other header the source includes (e.g. a
# test-only one next to it) as `headers`.
function(ehp_bpf_skeleton name src)
  set(obj ${EHP_BPF_OUT}/${name}.bpf.o)
  set(skel ${EHP_BPF_OUT}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${EHP_BPF_TARGET_ARCH} -Wall -Wno-unused-function
            -I${EHP_BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${EHP_BPF_OUT}/vmlinux.h ${bpf_headers} ${ARGN}
    COMMENT "BPF ${name}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Skeleton ${name}")
  add_custom_target(bpf_${name} DEPENDS ${skel})
  add_dependencies(bpf_${name} ehp_vmlinux)
endfunction()
