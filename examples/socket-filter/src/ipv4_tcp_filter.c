// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* socket-filter: passes IPv4 TCP packets whole and drops the rest, counting each verdict. */
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Indexes into verdict_counters. */
enum verdict {
	VERDICT_ACCEPTED,
	VERDICT_DROPPED_NOT_IPV4,
	VERDICT_DROPPED_NOT_TCP,
	VERDICT_COUNT,
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, VERDICT_COUNT);
} verdict_counters SEC(".maps");

static __always_inline void count_verdict(__u32 verdict)
{
	__u64 *count = bpf_map_lookup_elem(&verdict_counters, &verdict);

	if (count)
		__sync_fetch_and_add(count, 1);
}

SEC("socket")
int ipv4_tcp_only(struct __sk_buff *skb)
{
	__u8 protocol;

	if (skb->protocol != bpf_htons(ETH_P_IP)) {
		count_verdict(VERDICT_DROPPED_NOT_IPV4);
		return 0;
	}
	/* Relative to the network header, so it works whatever link-layer header the socket sees. */
	if (bpf_skb_load_bytes_relative(skb, offsetof(struct iphdr, protocol), &protocol, sizeof(protocol),
					BPF_HDR_START_NET) < 0 || protocol != IPPROTO_TCP) {
		count_verdict(VERDICT_DROPPED_NOT_TCP);
		return 0;
	}
	count_verdict(VERDICT_ACCEPTED);
	return skb->len;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
