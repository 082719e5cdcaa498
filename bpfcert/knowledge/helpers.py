"""BPF helper functions: id, name, first kernel version, and whether only GPL programs may call them.

Sources, per column:
- id and name: the position in `__BPF_FUNC_MAPPER` of include/uapi/linux/bpf.h. Ids 1-209 match this
  host's /usr/include/linux/bpf.h (Linux 6.1 UAPI, last id 209 user_ringbuf_drain); 210-211
  (cgrp_storage_get/delete) come from Linux 6.2's header; the list is frozen since (new ones are kfuncs).
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


@dataclass(frozen=True)
class Helper:
    id: int
    name: str  # the full C name, e.g. 'bpf_map_lookup_elem'
    since: tuple[int, int]  # first kernel (major, minor)
    gpl_only: bool
    gpl_source: str  # 'P' probed on a live kernel, 'S' from the kernel sources


# (id, name without the bpf_ prefix, since, gpl_only, gpl_source)
_TABLE: tuple[tuple[int, str, tuple[int, int], bool, str], ...] = (
    (1, "map_lookup_elem", (3, 19), False, "P"),
    (2, "map_update_elem", (3, 19), False, "P"),
    (3, "map_delete_elem", (3, 19), False, "P"),
    (4, "probe_read", (4, 1), True, "P"),
    (5, "ktime_get_ns", (4, 1), False, "P"),
    (6, "trace_printk", (4, 1), True, "P"),
    (7, "get_prandom_u32", (4, 1), False, "P"),
    (8, "get_smp_processor_id", (4, 1), False, "P"),
    (9, "skb_store_bytes", (4, 1), False, "P"),
    (10, "l3_csum_replace", (4, 1), False, "P"),
    (11, "l4_csum_replace", (4, 1), False, "P"),
    (12, "tail_call", (4, 2), False, "P"),
    (13, "clone_redirect", (4, 2), False, "P"),
    (14, "get_current_pid_tgid", (4, 2), False, "P"),
    (15, "get_current_uid_gid", (4, 2), False, "P"),
    (16, "get_current_comm", (4, 2), False, "P"),
    (17, "get_cgroup_classid", (4, 3), False, "P"),
    (18, "skb_vlan_push", (4, 3), False, "P"),
    (19, "skb_vlan_pop", (4, 3), False, "P"),
    (20, "skb_get_tunnel_key", (4, 3), False, "P"),
    (21, "skb_set_tunnel_key", (4, 3), False, "P"),
    (22, "perf_event_read", (4, 3), True, "P"),
    (23, "redirect", (4, 4), False, "P"),
    (24, "get_route_realm", (4, 4), False, "P"),
    (25, "perf_event_output", (4, 4), True, "P"),
    (26, "skb_load_bytes", (4, 5), False, "P"),
    (27, "get_stackid", (4, 6), True, "P"),
    (28, "csum_diff", (4, 6), False, "P"),
    (29, "skb_get_tunnel_opt", (4, 6), False, "P"),
    (30, "skb_set_tunnel_opt", (4, 6), False, "P"),
    (31, "skb_change_proto", (4, 8), False, "P"),
    (32, "skb_change_type", (4, 8), False, "P"),
    (33, "skb_under_cgroup", (4, 8), False, "P"),
    (34, "get_hash_recalc", (4, 8), False, "P"),
    (35, "get_current_task", (4, 8), True, "P"),
    (36, "probe_write_user", (4, 8), True, "S"),
    (37, "current_task_under_cgroup", (4, 9), False, "P"),
    (38, "skb_change_tail", (4, 9), False, "P"),
    (39, "skb_pull_data", (4, 9), False, "P"),
    (40, "csum_update", (4, 9), False, "P"),
    (41, "set_hash_invalid", (4, 9), False, "P"),
    (42, "get_numa_node_id", (4, 10), False, "P"),
    (43, "skb_change_head", (4, 10), False, "P"),
    (44, "xdp_adjust_head", (4, 10), False, "P"),
    (45, "probe_read_str", (4, 11), True, "P"),
    (46, "get_socket_cookie", (4, 12), False, "P"),
    (47, "get_socket_uid", (4, 12), False, "P"),
    (48, "set_hash", (4, 13), False, "P"),
    (49, "setsockopt", (4, 13), False, "P"),
    (50, "skb_adjust_room", (4, 13), False, "P"),
    (51, "redirect_map", (4, 14), False, "P"),
    (52, "sk_redirect_map", (4, 14), False, "P"),
    (53, "sock_map_update", (4, 14), False, "P"),
    (54, "xdp_adjust_meta", (4, 15), False, "P"),
    (55, "perf_event_read_value", (4, 15), True, "P"),
    (56, "perf_prog_read_value", (4, 15), True, "P"),
    (57, "getsockopt", (4, 15), False, "P"),
    (58, "override_return", (4, 16), True, "S"),
    (59, "sock_ops_cb_flags_set", (4, 16), False, "P"),
    (60, "msg_redirect_map", (4, 17), False, "P"),
    (61, "msg_apply_bytes", (4, 17), False, "P"),
    (62, "msg_cork_bytes", (4, 17), False, "P"),
    (63, "msg_pull_data", (4, 17), False, "P"),
    (64, "bind", (4, 17), False, "P"),
    (65, "xdp_adjust_tail", (4, 18), False, "P"),
    (66, "skb_get_xfrm_state", (4, 18), False, "P"),
    (67, "get_stack", (4, 18), True, "P"),
    (68, "skb_load_bytes_relative", (4, 18), False, "P"),
    (69, "fib_lookup", (4, 18), True, "P"),
    (70, "sock_hash_update", (4, 18), False, "P"),
    (71, "msg_redirect_hash", (4, 18), False, "P"),
    (72, "sk_redirect_hash", (4, 18), False, "P"),
    (73, "lwt_push_encap", (4, 18), False, "P"),
    (74, "lwt_seg6_store_bytes", (4, 18), False, "P"),
    (75, "lwt_seg6_adjust_srh", (4, 18), False, "P"),
    (76, "lwt_seg6_action", (4, 18), False, "P"),
    (77, "rc_repeat", (4, 18), True, "S"),
    (78, "rc_keydown", (4, 18), True, "S"),
    (79, "skb_cgroup_id", (4, 18), False, "P"),
    (80, "get_current_cgroup_id", (4, 18), False, "P"),
    (81, "get_local_storage", (4, 19), False, "P"),
    (82, "sk_select_reuseport", (4, 19), False, "P"),
    (83, "skb_ancestor_cgroup_id", (4, 19), False, "P"),
    (84, "sk_lookup_tcp", (4, 20), False, "P"),
    (85, "sk_lookup_udp", (4, 20), False, "P"),
    (86, "sk_release", (4, 20), False, "P"),
    (87, "map_push_elem", (4, 20), False, "P"),
    (88, "map_pop_elem", (4, 20), False, "P"),
    (89, "map_peek_elem", (4, 20), False, "P"),
    (90, "msg_push_data", (4, 20), False, "P"),
    (91, "msg_pop_data", (5, 0), False, "P"),
    (92, "rc_pointer_rel", (5, 0), True, "S"),
    (93, "spin_lock", (5, 1), False, "P"),
    (94, "spin_unlock", (5, 1), False, "P"),
    (95, "sk_fullsock", (5, 1), False, "P"),
    (96, "tcp_sock", (5, 1), False, "P"),
    (97, "skb_ecn_set_ce", (5, 1), False, "P"),
    (98, "get_listener_sock", (5, 1), False, "P"),
    (99, "skc_lookup_tcp", (5, 2), False, "P"),
    (100, "tcp_check_syncookie", (5, 2), True, "P"),
    (101, "sysctl_get_name", (5, 2), False, "P"),
    (102, "sysctl_get_current_value", (5, 2), False, "P"),
    (103, "sysctl_get_new_value", (5, 2), False, "P"),
    (104, "sysctl_set_new_value", (5, 2), False, "P"),
    (105, "strtol", (5, 2), False, "P"),
    (106, "strtoul", (5, 2), False, "P"),
    (107, "sk_storage_get", (5, 2), False, "P"),
    (108, "sk_storage_delete", (5, 2), False, "P"),
    (109, "send_signal", (5, 3), False, "P"),
    (110, "tcp_gen_syncookie", (5, 3), True, "P"),
    (111, "skb_output", (5, 5), True, "P"),
    (112, "probe_read_user", (5, 5), True, "P"),
    (113, "probe_read_kernel", (5, 5), True, "P"),
    (114, "probe_read_user_str", (5, 5), True, "P"),
    (115, "probe_read_kernel_str", (5, 5), True, "P"),
    (116, "tcp_send_ack", (5, 5), False, "S"),
    (117, "send_signal_thread", (5, 5), False, "P"),
    (118, "jiffies64", (5, 5), False, "P"),
    (119, "read_branch_records", (5, 6), True, "P"),
    (120, "get_ns_current_pid_tgid", (5, 6), False, "P"),  # bcc: 5.7
    (121, "xdp_output", (5, 6), True, "P"),
    (122, "get_netns_cookie", (5, 7), False, "P"),
    (123, "get_current_ancestor_cgroup_id", (5, 7), False, "P"),  # bcc: 5.6
    (124, "sk_assign", (5, 7), False, "P"),  # bcc: 5.6
    (125, "ktime_get_boot_ns", (5, 8), False, "P"),
    (126, "seq_printf", (5, 8), True, "S"),  # bcc: 5.7
    (127, "seq_write", (5, 8), True, "S"),  # bcc: 5.7
    (128, "sk_cgroup_id", (5, 8), False, "P"),  # bcc: 5.7
    (129, "sk_ancestor_cgroup_id", (5, 8), False, "P"),  # bcc: 5.7
    (130, "ringbuf_output", (5, 8), False, "P"),
    (131, "ringbuf_reserve", (5, 8), False, "P"),
    (132, "ringbuf_submit", (5, 8), False, "P"),
    (133, "ringbuf_discard", (5, 8), False, "P"),
    (134, "ringbuf_query", (5, 8), False, "P"),
    (135, "csum_level", (5, 8), False, "P"),  # bcc: 5.7
    (136, "skc_to_tcp6_sock", (5, 9), False, "P"),
    (137, "skc_to_tcp_sock", (5, 9), False, "P"),
    (138, "skc_to_tcp_timewait_sock", (5, 9), False, "P"),
    (139, "skc_to_tcp_request_sock", (5, 9), False, "P"),
    (140, "skc_to_udp6_sock", (5, 9), False, "P"),
    (141, "get_task_stack", (5, 9), False, "P"),
    (142, "load_hdr_opt", (5, 10), False, "P"),
    (143, "store_hdr_opt", (5, 10), False, "P"),
    (144, "reserve_hdr_opt", (5, 10), False, "P"),
    (145, "inode_storage_get", (5, 10), False, "S"),
    (146, "inode_storage_delete", (5, 10), False, "S"),
    (147, "d_path", (5, 10), False, "P"),
    (148, "copy_from_user", (5, 10), False, "P"),
    (149, "snprintf_btf", (5, 10), False, "P"),
    (150, "seq_printf_btf", (5, 10), False, "S"),
    (151, "skb_cgroup_classid", (5, 10), False, "P"),
    (152, "redirect_neigh", (5, 10), False, "P"),
    (153, "per_cpu_ptr", (5, 10), False, "P"),
    (154, "this_cpu_ptr", (5, 10), False, "P"),
    (155, "redirect_peer", (5, 10), False, "P"),
    (156, "task_storage_get", (5, 11), False, "P"),
    (157, "task_storage_delete", (5, 11), False, "P"),
    (158, "get_current_task_btf", (5, 11), True, "P"),
    (159, "bprm_opts_set", (5, 11), False, "S"),
    (160, "ktime_get_coarse_ns", (5, 11), False, "P"),
    (161, "ima_inode_hash", (5, 11), False, "S"),
    (162, "sock_from_file", (5, 11), False, "P"),
    (163, "check_mtu", (5, 12), True, "P"),
    (164, "for_each_map_elem", (5, 13), False, "P"),
    (165, "snprintf", (5, 13), True, "P"),
    (166, "sys_bpf", (5, 14), False, "P"),
    (167, "btf_find_by_name_kind", (5, 14), False, "P"),
    (168, "sys_close", (5, 14), False, "P"),
    (169, "timer_init", (5, 15), True, "P"),
    (170, "timer_set_callback", (5, 15), True, "P"),
    (171, "timer_start", (5, 15), True, "P"),
    (172, "timer_cancel", (5, 15), True, "P"),
    (173, "get_func_ip", (5, 15), True, "P"),
    (174, "get_attach_cookie", (5, 15), False, "P"),
    (175, "task_pt_regs", (5, 15), True, "P"),
    (176, "get_branch_snapshot", (5, 16), True, "P"),
    (177, "trace_vprintk", (5, 16), True, "P"),
    (178, "skc_to_unix_sock", (5, 16), False, "P"),
    (179, "kallsyms_lookup_name", (5, 16), False, "P"),
    (180, "find_vma", (5, 17), False, "P"),
    (181, "loop", (5, 17), False, "P"),
    (182, "strncmp", (5, 17), False, "P"),
    (183, "get_func_arg", (5, 17), False, "S"),
    (184, "get_func_ret", (5, 17), False, "S"),
    (185, "get_func_arg_cnt", (5, 17), False, "S"),
    (186, "get_retval", (5, 18), False, "P"),
    (187, "set_retval", (5, 18), False, "P"),
    (188, "xdp_get_buff_len", (5, 18), False, "P"),
    (189, "xdp_load_bytes", (5, 18), False, "P"),
    (190, "xdp_store_bytes", (5, 18), False, "P"),
    (191, "copy_from_user_task", (5, 18), True, "P"),
    (192, "skb_set_tstamp", (5, 18), False, "P"),
    (193, "ima_file_hash", (5, 18), False, "S"),
    (194, "kptr_xchg", (5, 19), False, "P"),
    (195, "map_lookup_percpu_elem", (5, 19), False, "P"),
    (196, "skc_to_mptcp_sock", (5, 19), False, "P"),
    (197, "dynptr_from_mem", (5, 19), False, "P"),
    (198, "ringbuf_reserve_dynptr", (5, 19), False, "P"),
    (199, "ringbuf_submit_dynptr", (5, 19), False, "P"),
    (200, "ringbuf_discard_dynptr", (5, 19), False, "P"),
    (201, "dynptr_read", (5, 19), False, "P"),
    (202, "dynptr_write", (5, 19), False, "P"),
    (203, "dynptr_data", (5, 19), False, "P"),
    (204, "tcp_raw_gen_syncookie_ipv4", (6, 0), True, "P"),
    (205, "tcp_raw_gen_syncookie_ipv6", (6, 0), True, "P"),
    (206, "tcp_raw_check_syncookie_ipv4", (6, 0), True, "P"),
    (207, "tcp_raw_check_syncookie_ipv6", (6, 0), True, "P"),
    (208, "ktime_get_tai_ns", (6, 1), False, "P"),
    (209, "user_ringbuf_drain", (6, 1), False, "P"),
    (210, "cgrp_storage_get", (6, 2), False, "P"),
    (211, "cgrp_storage_delete", (6, 2), False, "P"),
)

HELPERS: tuple[Helper, ...] = tuple(Helper(i, "bpf_" + n, v, g, s) for i, n, v, g, s in _TABLE)
LAST_ID = HELPERS[-1].id


@functools.cache
def _by_name() -> dict[str, Helper]:
    return {h.name: h for h in HELPERS}


def helper_by_id(helper_id: int) -> Helper | None:
    """The helper with this id, None for 0 (unspec), negative or unknown ids."""
    return HELPERS[helper_id - 1] if 1 <= helper_id <= LAST_ID else None


def helper_by_name(name: str) -> Helper | None:
    """Look up by C name, with or without the bpf_ prefix ('bpf_map_lookup_elem' or 'map_lookup_elem')."""
    return _by_name().get(name if name.startswith("bpf_") else "bpf_" + name)
