/* Socket -> process attribution for the TC capture program (placeholder: finds nothing).
 * ehp_attr_lookup: given the skb, the offset of its L3 header and the direction, fill `out`
 * with the process owning the local end of the flow. Returns 1 when found, 0 otherwise. */
#pragma once
#include "abi/attribution_abi.h"

static __always_inline int ehp_attr_lookup(struct __sk_buff *skb, __u32 l3_off, int egress,
					   struct ehp_proc_info *out)
{
	return 0;
}
