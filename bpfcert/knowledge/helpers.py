"""BPF helper functions: id, name, first kernel version, and whether only GPL programs may call them.

Sources, per column:
- id and name: bpfcert.uapi's HELPER_NAMES, the order of `__BPF_FUNC_MAPPER` (frozen since Linux 6.2's
  cgrp_storage_get/delete, ids 210-211: new helpers are kfuncs).
- since: the "Helpers" table of bcc's docs/kernel-versions.md (iovisor/bcc), corrected where it breaks
  the id order (ids are appended as helpers merge, so no helper predates one with a smaller id): rows
  marked "# bcc: X" follow the merge date of the helper's commit instead (e.g. bpf_csum_level and
  bpf_seq_printf landed with the 5.8 merge window, after bpf_ktime_get_boot_ns, id 125, 5.8).
- gpl_only, method "P": probed on Linux 6.18 (this project's host) by loading, as root, a program that
  calls the helper under the license "Proprietary" and reading the verifier log for "cannot call
  GPL-restricted function from non-GPL compatible program" (re-checked by tests/test_knowledge.py).
  Method "S": helpers no probe program type could load here (lockdown, lirc, tracing/LSM attach); the
  flag is the `.gpl_only` of the helper's bpf_func_proto in the kernel sources.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bpfcert import uapi


@dataclass(frozen=True)
class Helper:
    id: int
    name: str  # the full C name, e.g. 'bpf_map_lookup_elem'
    since: tuple[int, int]  # first kernel (major, minor)
    gpl_only: bool
    gpl_source: str  # 'P' probed on a live kernel, 'S' from the kernel sources


# (name without the bpf_ prefix, since, gpl_only, gpl_source), one row per id, in id order
_TABLE: tuple[tuple[str, tuple[int, int], bool, str], ...] = (
    ("map_lookup_elem", (3, 19), False, "P"),
    ("map_update_elem", (3, 19), False, "P"),
    ("map_delete_elem", (3, 19), False, "P"),
    ("probe_read", (4, 1), True, "P"),
    ("ktime_get_ns", (4, 1), False, "P"),
    ("trace_printk", (4, 1), True, "P"),
    ("get_prandom_u32", (4, 1), False, "P"),
    ("get_smp_processor_id", (4, 1), False, "P"),
    ("skb_store_bytes", (4, 1), False, "P"),
    ("l3_csum_replace", (4, 1), False, "P"),
    ("l4_csum_replace", (4, 1), False, "P"),
    ("tail_call", (4, 2), False, "P"),
    ("clone_redirect", (4, 2), False, "P"),
    ("get_current_pid_tgid", (4, 2), False, "P"),
    ("get_current_uid_gid", (4, 2), False, "P"),
    ("get_current_comm", (4, 2), False, "P"),
    ("get_cgroup_classid", (4, 3), False, "P"),
    ("skb_vlan_push", (4, 3), False, "P"),
    ("skb_vlan_pop", (4, 3), False, "P"),
    ("skb_get_tunnel_key", (4, 3), False, "P"),
    ("skb_set_tunnel_key", (4, 3), False, "P"),
    ("perf_event_read", (4, 3), True, "P"),
    ("redirect", (4, 4), False, "P"),
    ("get_route_realm", (4, 4), False, "P"),
    ("perf_event_output", (4, 4), True, "P"),
    ("skb_load_bytes", (4, 5), False, "P"),
    ("get_stackid", (4, 6), True, "P"),
    ("csum_diff", (4, 6), False, "P"),
    ("skb_get_tunnel_opt", (4, 6), False, "P"),
    ("skb_set_tunnel_opt", (4, 6), False, "P"),
    ("skb_change_proto", (4, 8), False, "P"),
    ("skb_change_type", (4, 8), False, "P"),
    ("skb_under_cgroup", (4, 8), False, "P"),
    ("get_hash_recalc", (4, 8), False, "P"),
    ("get_current_task", (4, 8), True, "P"),
    ("probe_write_user", (4, 8), True, "S"),
    ("current_task_under_cgroup", (4, 9), False, "P"),
    ("skb_change_tail", (4, 9), False, "P"),
    ("skb_pull_data", (4, 9), False, "P"),
    ("csum_update", (4, 9), False, "P"),
    ("set_hash_invalid", (4, 9), False, "P"),
    ("get_numa_node_id", (4, 10), False, "P"),
    ("skb_change_head", (4, 10), False, "P"),
    ("xdp_adjust_head", (4, 10), False, "P"),
    ("probe_read_str", (4, 11), True, "P"),
    ("get_socket_cookie", (4, 12), False, "P"),
    ("get_socket_uid", (4, 12), False, "P"),
    ("set_hash", (4, 13), False, "P"),
    ("setsockopt", (4, 13), False, "P"),
    ("skb_adjust_room", (4, 13), False, "P"),
    ("redirect_map", (4, 14), False, "P"),
    ("sk_redirect_map", (4, 14), False, "P"),
    ("sock_map_update", (4, 14), False, "P"),
    ("xdp_adjust_meta", (4, 15), False, "P"),
    ("perf_event_read_value", (4, 15), True, "P"),
    ("perf_prog_read_value", (4, 15), True, "P"),
    ("getsockopt", (4, 15), False, "P"),
    ("override_return", (4, 16), True, "S"),
    ("sock_ops_cb_flags_set", (4, 16), False, "P"),
    ("msg_redirect_map", (4, 17), False, "P"),
    ("msg_apply_bytes", (4, 17), False, "P"),
    ("msg_cork_bytes", (4, 17), False, "P"),
    ("msg_pull_data", (4, 17), False, "P"),
    ("bind", (4, 17), False, "P"),
    ("xdp_adjust_tail", (4, 18), False, "P"),
    ("skb_get_xfrm_state", (4, 18), False, "P"),
    ("get_stack", (4, 18), True, "P"),
    ("skb_load_bytes_relative", (4, 18), False, "P"),
    ("fib_lookup", (4, 18), True, "P"),
    ("sock_hash_update", (4, 18), False, "P"),
    ("msg_redirect_hash", (4, 18), False, "P"),
    ("sk_redirect_hash", (4, 18), False, "P"),
    ("lwt_push_encap", (4, 18), False, "P"),
    ("lwt_seg6_store_bytes", (4, 18), False, "P"),
    ("lwt_seg6_adjust_srh", (4, 18), False, "P"),
    ("lwt_seg6_action", (4, 18), False, "P"),
    ("rc_repeat", (4, 18), True, "S"),
    ("rc_keydown", (4, 18), True, "S"),
    ("skb_cgroup_id", (4, 18), False, "P"),
    ("get_current_cgroup_id", (4, 18), False, "P"),
    ("get_local_storage", (4, 19), False, "P"),
    ("sk_select_reuseport", (4, 19), False, "P"),
    ("skb_ancestor_cgroup_id", (4, 19), False, "P"),
    ("sk_lookup_tcp", (4, 20), False, "P"),
    ("sk_lookup_udp", (4, 20), False, "P"),
    ("sk_release", (4, 20), False, "P"),
    ("map_push_elem", (4, 20), False, "P"),
    ("map_pop_elem", (4, 20), False, "P"),
    ("map_peek_elem", (4, 20), False, "P"),
    ("msg_push_data", (4, 20), False, "P"),
    ("msg_pop_data", (5, 0), False, "P"),
    ("rc_pointer_rel", (5, 0), True, "S"),
    ("spin_lock", (5, 1), False, "P"),
    ("spin_unlock", (5, 1), False, "P"),
    ("sk_fullsock", (5, 1), False, "P"),
    ("tcp_sock", (5, 1), False, "P"),
    ("skb_ecn_set_ce", (5, 1), False, "P"),
    ("get_listener_sock", (5, 1), False, "P"),
    ("skc_lookup_tcp", (5, 2), False, "P"),
    ("tcp_check_syncookie", (5, 2), True, "P"),
    ("sysctl_get_name", (5, 2), False, "P"),
    ("sysctl_get_current_value", (5, 2), False, "P"),
    ("sysctl_get_new_value", (5, 2), False, "P"),
    ("sysctl_set_new_value", (5, 2), False, "P"),
    ("strtol", (5, 2), False, "P"),
    ("strtoul", (5, 2), False, "P"),
    ("sk_storage_get", (5, 2), False, "P"),
    ("sk_storage_delete", (5, 2), False, "P"),
    ("send_signal", (5, 3), False, "P"),
    ("tcp_gen_syncookie", (5, 3), True, "P"),
    ("skb_output", (5, 5), True, "P"),
    ("probe_read_user", (5, 5), True, "P"),
    ("probe_read_kernel", (5, 5), True, "P"),
    ("probe_read_user_str", (5, 5), True, "P"),
    ("probe_read_kernel_str", (5, 5), True, "P"),
    ("tcp_send_ack", (5, 5), False, "S"),
    ("send_signal_thread", (5, 5), False, "P"),
    ("jiffies64", (5, 5), False, "P"),
    ("read_branch_records", (5, 6), True, "P"),
    ("get_ns_current_pid_tgid", (5, 6), False, "P"),  # bcc: 5.7
    ("xdp_output", (5, 6), True, "P"),
    ("get_netns_cookie", (5, 7), False, "P"),
    ("get_current_ancestor_cgroup_id", (5, 7), False, "P"),  # bcc: 5.6
    ("sk_assign", (5, 7), False, "P"),  # bcc: 5.6
    ("ktime_get_boot_ns", (5, 8), False, "P"),
    ("seq_printf", (5, 8), True, "S"),  # bcc: 5.7
    ("seq_write", (5, 8), True, "S"),  # bcc: 5.7
    ("sk_cgroup_id", (5, 8), False, "P"),  # bcc: 5.7
    ("sk_ancestor_cgroup_id", (5, 8), False, "P"),  # bcc: 5.7
    ("ringbuf_output", (5, 8), False, "P"),
    ("ringbuf_reserve", (5, 8), False, "P"),
    ("ringbuf_submit", (5, 8), False, "P"),
    ("ringbuf_discard", (5, 8), False, "P"),
    ("ringbuf_query", (5, 8), False, "P"),
    ("csum_level", (5, 8), False, "P"),  # bcc: 5.7
    ("skc_to_tcp6_sock", (5, 9), False, "P"),
    ("skc_to_tcp_sock", (5, 9), False, "P"),
    ("skc_to_tcp_timewait_sock", (5, 9), False, "P"),
    ("skc_to_tcp_request_sock", (5, 9), False, "P"),
    ("skc_to_udp6_sock", (5, 9), False, "P"),
    ("get_task_stack", (5, 9), False, "P"),
    ("load_hdr_opt", (5, 10), False, "P"),
    ("store_hdr_opt", (5, 10), False, "P"),
    ("reserve_hdr_opt", (5, 10), False, "P"),
    ("inode_storage_get", (5, 10), False, "S"),
    ("inode_storage_delete", (5, 10), False, "S"),
    ("d_path", (5, 10), False, "P"),
    ("copy_from_user", (5, 10), False, "P"),
    ("snprintf_btf", (5, 10), False, "P"),
    ("seq_printf_btf", (5, 10), False, "S"),
    ("skb_cgroup_classid", (5, 10), False, "P"),
    ("redirect_neigh", (5, 10), False, "P"),
    ("per_cpu_ptr", (5, 10), False, "P"),
    ("this_cpu_ptr", (5, 10), False, "P"),
    ("redirect_peer", (5, 10), False, "P"),
    ("task_storage_get", (5, 11), False, "P"),
    ("task_storage_delete", (5, 11), False, "P"),
    ("get_current_task_btf", (5, 11), True, "P"),
    ("bprm_opts_set", (5, 11), False, "S"),
    ("ktime_get_coarse_ns", (5, 11), False, "P"),
    ("ima_inode_hash", (5, 11), False, "S"),
    ("sock_from_file", (5, 11), False, "P"),
    ("check_mtu", (5, 12), True, "P"),
    ("for_each_map_elem", (5, 13), False, "P"),
    ("snprintf", (5, 13), True, "P"),
    ("sys_bpf", (5, 14), False, "P"),
    ("btf_find_by_name_kind", (5, 14), False, "P"),
    ("sys_close", (5, 14), False, "P"),
    ("timer_init", (5, 15), True, "P"),
    ("timer_set_callback", (5, 15), True, "P"),
    ("timer_start", (5, 15), True, "P"),
    ("timer_cancel", (5, 15), True, "P"),
    ("get_func_ip", (5, 15), True, "P"),
    ("get_attach_cookie", (5, 15), False, "P"),
    ("task_pt_regs", (5, 15), True, "P"),
    ("get_branch_snapshot", (5, 16), True, "P"),
    ("trace_vprintk", (5, 16), True, "P"),
    ("skc_to_unix_sock", (5, 16), False, "P"),
    ("kallsyms_lookup_name", (5, 16), False, "P"),
    ("find_vma", (5, 17), False, "P"),
    ("loop", (5, 17), False, "P"),
    ("strncmp", (5, 17), False, "P"),
    ("get_func_arg", (5, 17), False, "S"),
    ("get_func_ret", (5, 17), False, "S"),
    ("get_func_arg_cnt", (5, 17), False, "S"),
    ("get_retval", (5, 18), False, "P"),
    ("set_retval", (5, 18), False, "P"),
    ("xdp_get_buff_len", (5, 18), False, "P"),
    ("xdp_load_bytes", (5, 18), False, "P"),
    ("xdp_store_bytes", (5, 18), False, "P"),
    ("copy_from_user_task", (5, 18), True, "P"),
    ("skb_set_tstamp", (5, 18), False, "P"),
    ("ima_file_hash", (5, 18), False, "S"),
    ("kptr_xchg", (5, 19), False, "P"),
    ("map_lookup_percpu_elem", (5, 19), False, "P"),
    ("skc_to_mptcp_sock", (5, 19), False, "P"),
    ("dynptr_from_mem", (5, 19), False, "P"),
    ("ringbuf_reserve_dynptr", (5, 19), False, "P"),
    ("ringbuf_submit_dynptr", (5, 19), False, "P"),
    ("ringbuf_discard_dynptr", (5, 19), False, "P"),
    ("dynptr_read", (5, 19), False, "P"),
    ("dynptr_write", (5, 19), False, "P"),
    ("dynptr_data", (5, 19), False, "P"),
    ("tcp_raw_gen_syncookie_ipv4", (6, 0), True, "P"),
    ("tcp_raw_gen_syncookie_ipv6", (6, 0), True, "P"),
    ("tcp_raw_check_syncookie_ipv4", (6, 0), True, "P"),
    ("tcp_raw_check_syncookie_ipv6", (6, 0), True, "P"),
    ("ktime_get_tai_ns", (6, 1), False, "P"),
    ("user_ringbuf_drain", (6, 1), False, "P"),
    ("cgrp_storage_get", (6, 2), False, "P"),
    ("cgrp_storage_delete", (6, 2), False, "P"),
)

_IDS = {name: helper_id for helper_id, name in enumerate(uapi.HELPER_NAMES)}
# KeyError: a name bpfcert.uapi does not know
HELPERS: tuple[Helper, ...] = tuple(Helper(_IDS[n], "bpf_" + n, v, g, s) for n, v, g, s in _TABLE)
LAST_ID = HELPERS[-1].id


@functools.cache
def _by_name() -> dict[str, Helper]:
    return {h.name: h for h in HELPERS}


def helper_by_id(helper_id: int) -> Helper | None:
    """The helper with this id, None for 0 (unspec), negative or unknown ids."""
    return _by_name().get("bpf_" + uapi.HELPER_NAMES[helper_id]) if 0 < helper_id < len(uapi.HELPER_NAMES) else None


def helper_by_name(name: str) -> Helper | None:
    """Look up by C name, with or without the bpf_ prefix ('bpf_map_lookup_elem' or 'map_lookup_elem')."""
    return _by_name().get(name if name.startswith("bpf_") else "bpf_" + name)
