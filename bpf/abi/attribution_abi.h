/* Process attribution record shared by BPF and C++ (see bpf/attribution.h). */
#pragma once
#ifdef __cplusplus
#include <cstdint>
typedef uint32_t ehp_u32;
#else
typedef __u32 ehp_u32;
#endif

#define EHP_COMM_LEN 16

struct ehp_proc_info {
	ehp_u32 pid;  /* tgid */
	ehp_u32 tid;
	ehp_u32 uid;
	ehp_u32 gid;
	char comm[EHP_COMM_LEN];
};

#ifdef __cplusplus
static_assert(sizeof(ehp_proc_info) == 32, "ehp_proc_info layout");
#else
_Static_assert(sizeof(struct ehp_proc_info) == 32, "ehp_proc_info layout");
#endif
