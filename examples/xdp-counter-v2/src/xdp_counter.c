// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/* xdp-counter v2: counts packets and bytes per IP protocol, reusing v1's pinned map unchanged. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Key for frames that are neither IPv4 nor IPv6 (protocol numbers are 0..255). */
#define OTHER_PROTOCOL 256

struct counter {
	__u64 packets;
	__u64 bytes;
};

/* Kept across upgrades: v2 reuses this pinned map, so its layout must never change. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, struct counter);
	__uint(max_entries, 512);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} proto_counters SEC(".maps");

/* Tunable: count one packet in sample_rate (1 = every packet). */
const volatile __u32 sample_rate = 1;

static __always_inline __u32 ip_protocol(void *data, void *data_end)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return OTHER_PROTOCOL;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end)
			return OTHER_PROTOCOL;
		return ip->protocol;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return OTHER_PROTOCOL;
		return ip6->nexthdr;
	}
	return OTHER_PROTOCOL;
}

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 key = ip_protocol(data, data_end);
	struct counter *value;

	if (sample_rate > 1 && bpf_get_prandom_u32() % sample_rate != 0)
		return XDP_PASS;
	value = bpf_map_lookup_elem(&proto_counters, &key);
	if (!value) {
		struct counter zero = {};

		/* BPF_NOEXIST: another CPU may have created the entry meanwhile; either way, look again. */
		bpf_map_update_elem(&proto_counters, &key, &zero, BPF_NOEXIST);
		value = bpf_map_lookup_elem(&proto_counters, &key);
		if (!value)
			return XDP_PASS;
	}
	__sync_fetch_and_add(&value->packets, 1);
	__sync_fetch_and_add(&value->bytes, data_end - data);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
