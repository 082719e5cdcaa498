// SPDX-License-Identifier: MIT
/* Built without -g: no .BTF, no .BTF.ext. A socket filter and a cgroup program. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

__u64 seen;

static __attribute__((noinline)) int is_small(__u32 len)
{
	return len < 64;
}

SEC("socket")
int keep_small(struct __sk_buff *skb)
{
	seen++;
	return is_small(skb->len) ? skb->len : 0;
}

SEC("cgroup_skb/egress")
int allow_all(struct __sk_buff *skb)
{
	return is_small(skb->len) ? 1 : 1;
}

char _license[] SEC("license") = "MIT";
