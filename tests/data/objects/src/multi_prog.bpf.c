// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Many entry programs sharing subprograms in .text, BTF-defined maps of several types,
 * .rodata/.data/.bss globals and .kconfig/.ksyms externs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__type(key, __u32);
	__type(value, struct event);
} pid_table SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__uint(key_size, sizeof(__u64));
	__uint(value_size, sizeof(__u32));
} lru_sizes SEC(".maps");

const volatile __u32 target_pid = 0;
const char banner[] = "multi_prog";
__u64 packets_seen = 1;
__u64 drops;
__u32 scratch[16];

extern int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_JIT __kconfig __weak;
extern const void bpf_prog_active __ksym;

__noinline int bump(__u32 slot)
{
	__u64 *val = bpf_map_lookup_elem(&counters, &slot);

	if (!val)
		return 0;
	*val += 1;
	return 1;
}

static __noinline int emit(__u32 pid, __u64 value)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return -1;
	e->pid = pid;
	e->value = value;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	packets_seen++;
	bump(0);
	if (ctx->data_end - ctx->data < 14) {
		drops++;
		return XDP_DROP;
	}
	return XDP_PASS;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	bump(1);
	scratch[skb->len & 15] = skb->protocol;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int trace_execve(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct event e = {.pid = pid, .value = LINUX_KERNEL_VERSION};

	if (target_pid && pid != target_pid)
		return 0;
	bpf_map_update_elem(&pid_table, &pid, &e, BPF_ANY);
	emit(pid, (__u64)&bpf_prog_active);
	bpf_printk("%s", banner);
	return bump(2);
}

SEC("kprobe/do_unlinkat")
int kprobe_unlink(void *ctx)
{
	__u64 key = bpf_ktime_get_ns();
	__u32 one = CONFIG_BPF_JIT ? 1 : 2;
	char name[16];

	bpf_probe_read_kernel_str(name, sizeof(name), "do_unlinkat");
	bpf_map_update_elem(&lru_sizes, &key, &one, BPF_ANY);
	return emit(bpf_get_current_pid_tgid() >> 32, key);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
