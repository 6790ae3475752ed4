/* The pcap filter hook of the TC capture program. The body below is a placeholder that
 * accepts every packet; engine/filter replaces it, before load, with the translation of the
 * user's filter expression (see engine/filter). Returns non-zero to capture the packet. */
#pragma once
#ifndef EHP_TC_SEC
#define EHP_TC_SEC "tc"
#endif

static __noinline int ehp_filter(struct __sk_buff *skb)
{
	return skb != 0;
}
