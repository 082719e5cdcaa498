// SPDX-License-Identifier: GPL-2.0-only
/* core-tracing: one ring-buffer record per exec, read from task_struct through CO-RE relocations. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

/* Only the task_struct members read here; CO-RE relocates them against the running kernel's BTF. */
struct task_struct {
	int pid;
	int tgid;
	char comm[TASK_COMM_LEN];
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

/* One ring-buffer record; the service export's record schema mirrors it member by member. */
struct exec_event {
	__u64 timestamp_ns;
	__u32 pid;
	__u32 tgid;
	__u32 ppid;
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} exec_events SEC(".maps");

/* Tunable: report only children of this parent tgid (0 = every exec). */
const volatile __u32 parent_tgid_filter = 0;

/* Not inlined, so struct exec_event appears in the object's BTF (a ring buffer has no value type). */
static __noinline int fill_exec_event(struct exec_event *event, struct task_struct *task)
{
	event->timestamp_ns = bpf_ktime_get_ns();
	event->pid = BPF_CORE_READ(task, pid);
	event->tgid = BPF_CORE_READ(task, tgid);
	event->ppid = BPF_CORE_READ(task, real_parent, tgid);
	BPF_CORE_READ_INTO(&event->comm, task, comm);
	return 0;
}

SEC("tp/sched/sched_process_exec")
int trace_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct exec_event *event;

	if (parent_tgid_filter && BPF_CORE_READ(task, real_parent, tgid) != parent_tgid_filter)
		return 0;
	event = bpf_ringbuf_reserve(&exec_events, sizeof(*event), 0);
	if (!event)
		return 0;
	fill_exec_event(event, task);
	bpf_ringbuf_submit(event, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
