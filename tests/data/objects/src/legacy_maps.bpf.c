// SPDX-License-Identifier: GPL-2.0
/* Pre-BTF style: struct bpf_map_def in the legacy "maps" and "maps/<name>" sections, a "version" section. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") rx_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 2,
};

struct bpf_map_def SEC("maps") flows = {
	.type = BPF_MAP_TYPE_PERCPU_HASH,
	.key_size = 8,
	.value_size = 16,
	.max_entries = 4096,
	.map_flags = BPF_F_NO_PREALLOC,
};

struct bpf_map_def SEC("maps/jump_table") jump_table = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.key_size = 4,
	.value_size = 4,
	.max_entries = 8,
};

SEC("socket")
int sock_count(struct __sk_buff *skb)
{
	__u32 key = skb->pkt_type == 0 ? 0 : 1;
	__u64 *val = bpf_map_lookup_elem(&rx_count, &key);
	__u64 flow = skb->hash;
	char zero[16] = {};

	if (val)
		__sync_fetch_and_add(val, 1);
	bpf_map_update_elem(&flows, &flow, zero, BPF_NOEXIST);
	bpf_tail_call(skb, &jump_table, 0);
	return 0;
}

char _license[] SEC("license") = "GPL v2";
__u32 _version SEC("version") = 0x050a00;
