# Builds bpf/*.bpf.c into objects and libbpf skeletons (<name>.skel.h) in
# ${EHP_BPF_OUT}. vmlinux.h is generated from the running kernel's BTF.
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_CLANG clang REQUIRED)
set(EHP_BPF_OUT ${CMAKE_BINARY_DIR}/bpf)
file(MAKE_DIRECTORY ${EHP_BPF_OUT})

add_custom_command(
  OUTPUT ${EHP_BPF_OUT}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file /sys/kernel/btf/vmlinux format c > ${EHP_BPF_OUT}/vmlinux.h.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${EHP_BPF_OUT}/vmlinux.h.tmp ${EHP_BPF_OUT}/vmlinux.h
  COMMENT "Generating vmlinux.h from /sys/kernel/btf/vmlinux")
add_custom_target(ehp_vmlinux DEPENDS ${EHP_BPF_OUT}/vmlinux.h)

# ehp_bpf_skeleton(<name> <source> [headers...]) -> target bpf_<name>
function(ehp_bpf_skeleton name src)
  set(obj ${EHP_BPF_OUT}/${name}.bpf.o)
  set(skel ${EHP_BPF_OUT}/${name}.skel.h)
  file(GLOB_RECURSE bpf_headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Wno-unused-function
            -I${EHP_BPF_OUT} -I${CMAKE_SOURCE_DIR}/bpf -I${CMAKE_SOURCE_DIR}
            -c ${src} -o ${obj}
    DEPENDS ${src} ${EHP_BPF_OUT}/vmlinux.h ${bpf_headers}
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
