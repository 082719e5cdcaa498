// SPDX-License-Identifier: GPL-2.0
/* A kfunc call from a tp_btf program and CO-RE field accesses on hand-declared kernel structs. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[16];
} __attribute__((preserve_access_index));

struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, int);
	__type(value, int);
} parents SEC(".maps");

SEC("tp_btf/task_newtask")
int BPF_PROG(on_newtask, struct task_struct *task, __u64 clone_flags)
{
	struct task_struct *acquired = bpf_task_acquire(task);
	int pid, ppid;

	if (!acquired)
		return 0;
	pid = BPF_CORE_READ(acquired, pid);
	ppid = BPF_CORE_READ(acquired, real_parent, tgid);
	bpf_map_update_elem(&parents, &pid, &ppid, BPF_ANY);
	bpf_task_release(acquired);
	return 0;
}

SEC("fentry/do_exit")
int BPF_PROG(on_exit, long code)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	int pid = task->pid;

	if (bpf_core_field_exists(task->comm))
		bpf_map_delete_elem(&parents, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
