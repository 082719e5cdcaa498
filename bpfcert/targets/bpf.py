"""The bpf(2) system call through ctypes: the one way bpfcert loads and runs programs on a kernel.

Stdlib + ctypes only: this module runs inside the guest agent. Attributes follow `union bpf_attr` (native
byte order) in <linux/bpf.h>; every field not passed is zero, which every kernel since 5.10 accepts.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import NamedTuple

from bpfcert.errors import BpfcertError

# bpf(2) syscall number per machine (uname -m).
SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "s390x": 351}

# enum bpf_cmd values used here.
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_LOAD = 18
BPF_LINK_CREATE = 28


def _enum(names: str) -> tuple[str, ...]:
    return tuple(names.split())


# enum bpf_prog_type, lowercased without BPF_PROG_TYPE_ (index = value); netfilter since 6.4.
PROG_TYPES = _enum(
    "unspec socket_filter kprobe sched_cls sched_act tracepoint xdp perf_event cgroup_skb cgroup_sock lwt_in "
    "lwt_out lwt_xmit sock_ops sk_skb cgroup_device sk_msg raw_tracepoint cgroup_sock_addr lwt_seg6local "
    "lirc_mode2 sk_reuseport flow_dissector cgroup_sysctl raw_tracepoint_writable cgroup_sockopt tracing "
    "struct_ops ext lsm sk_lookup syscall netfilter"
)
# enum bpf_map_type, lowercased without BPF_MAP_TYPE_ (index = value); cgrp_storage 6.2, arena 6.9.
MAP_TYPES = _enum(
    "unspec hash array prog_array perf_event_array percpu_hash percpu_array stack_trace cgroup_array "
    "lru_hash lru_percpu_hash lpm_trie array_of_maps hash_of_maps devmap sockmap cpumap xskmap sockhash "
    "cgroup_storage "
    "reuseport_sockarray percpu_cgroup_storage queue stack sk_storage devmap_hash struct_ops ringbuf "
    "inode_storage task_storage bloom_filter user_ringbuf cgrp_storage arena"
)
# enum bpf_attach_type, lowercased without BPF_ (index = value), through Linux 6.10.
ATTACH_TYPES = _enum(
    "cgroup_inet_ingress cgroup_inet_egress cgroup_inet_sock_create cgroup_sock_ops sk_skb_stream_parser "
    "sk_skb_stream_verdict cgroup_device sk_msg_verdict cgroup_inet4_bind cgroup_inet6_bind "
    "cgroup_inet4_connect cgroup_inet6_connect cgroup_inet4_post_bind cgroup_inet6_post_bind "
    "cgroup_udp4_sendmsg cgroup_udp6_sendmsg "
    "lirc_mode2 flow_dissector cgroup_sysctl cgroup_udp4_recvmsg cgroup_udp6_recvmsg cgroup_getsockopt "
    "cgroup_setsockopt trace_raw_tp trace_fentry trace_fexit modify_return lsm_mac trace_iter "
    "cgroup_inet4_getpeername cgroup_inet6_getpeername cgroup_inet4_getsockname cgroup_inet6_getsockname "
    "xdp_devmap cgroup_inet_sock_release xdp_cpumap sk_lookup xdp sk_skb_verdict sk_reuseport_select "
    "sk_reuseport_select_or_migrate perf_event trace_kprobe_multi lsm_cgroup struct_ops netfilter "
    "tcx_ingress tcx_egress trace_uprobe_multi cgroup_unix_connect cgroup_unix_sendmsg cgroup_unix_recvmsg "
    "cgroup_unix_getpeername cgroup_unix_getsockname netkit_primary netkit_peer"
)
# BPF_FUNC_* in enum order (index = helper id), from the UAPI __BPF_FUNC_MAPPER (through Linux 6.2).
HELPER_NAMES = _enum(
    "unspec map_lookup_elem map_update_elem map_delete_elem probe_read ktime_get_ns trace_printk "
    "get_prandom_u32 get_smp_processor_id skb_store_bytes l3_csum_replace l4_csum_replace tail_call "
    "clone_redirect get_current_pid_tgid get_current_uid_gid get_current_comm get_cgroup_classid "
    "skb_vlan_push skb_vlan_pop skb_get_tunnel_key skb_set_tunnel_key perf_event_read redirect "
    "get_route_realm perf_event_output skb_load_bytes get_stackid csum_diff skb_get_tunnel_opt "
    "skb_set_tunnel_opt skb_change_proto skb_change_type skb_under_cgroup get_hash_recalc "
    "get_current_task probe_write_user current_task_under_cgroup skb_change_tail skb_pull_data "
    "csum_update set_hash_invalid get_numa_node_id skb_change_head xdp_adjust_head probe_read_str "
    "get_socket_cookie get_socket_uid set_hash setsockopt skb_adjust_room redirect_map sk_redirect_map "
    "sock_map_update xdp_adjust_meta perf_event_read_value perf_prog_read_value getsockopt "
    "override_return sock_ops_cb_flags_set msg_redirect_map msg_apply_bytes msg_cork_bytes msg_pull_data "
    "bind xdp_adjust_tail skb_get_xfrm_state get_stack skb_load_bytes_relative fib_lookup "
    "sock_hash_update msg_redirect_hash sk_redirect_hash lwt_push_encap lwt_seg6_store_bytes "
    "lwt_seg6_adjust_srh lwt_seg6_action rc_repeat rc_keydown skb_cgroup_id get_current_cgroup_id "
    "get_local_storage sk_select_reuseport skb_ancestor_cgroup_id sk_lookup_tcp sk_lookup_udp sk_release "
    "map_push_elem map_pop_elem map_peek_elem msg_push_data msg_pop_data rc_pointer_rel spin_lock "
    "spin_unlock sk_fullsock tcp_sock skb_ecn_set_ce get_listener_sock skc_lookup_tcp tcp_check_syncookie "
    "sysctl_get_name sysctl_get_current_value sysctl_get_new_value sysctl_set_new_value strtol strtoul "
    "sk_storage_get sk_storage_delete send_signal tcp_gen_syncookie skb_output probe_read_user "
    "probe_read_kernel probe_read_user_str probe_read_kernel_str tcp_send_ack send_signal_thread "
    "jiffies64 read_branch_records get_ns_current_pid_tgid xdp_output get_netns_cookie "
    "get_current_ancestor_cgroup_id sk_assign ktime_get_boot_ns seq_printf seq_write sk_cgroup_id "
    "sk_ancestor_cgroup_id ringbuf_output ringbuf_reserve ringbuf_submit ringbuf_discard ringbuf_query "
    "csum_level skc_to_tcp6_sock skc_to_tcp_sock skc_to_tcp_timewait_sock skc_to_tcp_request_sock "
    "skc_to_udp6_sock get_task_stack load_hdr_opt store_hdr_opt reserve_hdr_opt inode_storage_get "
    "inode_storage_delete d_path copy_from_user snprintf_btf seq_printf_btf skb_cgroup_classid "
    "redirect_neigh per_cpu_ptr this_cpu_ptr redirect_peer task_storage_get task_storage_delete "
    "get_current_task_btf bprm_opts_set ktime_get_coarse_ns ima_inode_hash sock_from_file check_mtu "
    "for_each_map_elem snprintf sys_bpf btf_find_by_name_kind sys_close timer_init timer_set_callback "
    "timer_start timer_cancel get_func_ip get_attach_cookie task_pt_regs get_branch_snapshot "
    "trace_vprintk skc_to_unix_sock kallsyms_lookup_name find_vma loop strncmp get_func_arg get_func_ret "
    "get_func_arg_cnt get_retval set_retval xdp_get_buff_len xdp_load_bytes xdp_store_bytes "
    "copy_from_user_task skb_set_tstamp ima_file_hash kptr_xchg map_lookup_percpu_elem skc_to_mptcp_sock "
    "dynptr_from_mem ringbuf_reserve_dynptr ringbuf_submit_dynptr ringbuf_discard_dynptr dynptr_read "
    "dynptr_write dynptr_data tcp_raw_gen_syncookie_ipv4 tcp_raw_gen_syncookie_ipv6 "
    "tcp_raw_check_syncookie_ipv4 tcp_raw_check_syncookie_ipv6 ktime_get_tai_ns user_ringbuf_drain "
    "cgrp_storage_get cgrp_storage_delete "
)

ENOTSUPP = 524  # the kernel-internal "operation not supported" errno that bpf(2) can leak to user space
DEFAULT_LOG_SIZE = 1 << 20


_LOG_TRAILERS = ("processed ", "verification time", "stack depth", "mark_read")


def verifier_reason(log: str) -> str:
    """The verifier's reason for a rejection: the last log line that is not a statistics trailer."""
    for line in reversed(log.strip().splitlines()):
        if line.strip() and not line.startswith(_LOG_TRAILERS):
            return line.strip()
    return ""


class BpfSyscallError(BpfcertError):
    """A bpf(2) command that failed: `errno` from the kernel and, for loads, the verifier log."""

    def __init__(self, command: str, errno: int, log: str = "") -> None:
        reason = os.strerror(errno) if errno != ENOTSUPP else "Operation not supported (ENOTSUPP)"
        last = verifier_reason(log)
        super().__init__(f"{command} failed: {reason}" + (f": {last}" if last else ""))
        self.command = command
        self.errno = errno
        self.log = log


class TestRun(NamedTuple):
    """The outcome of BPF_PROG_TEST_RUN."""

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_uint]
_NR = SYSCALL_NR.get(os.uname().machine, -1)


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


_memlock_raised = False


def _raise_memlock_limit() -> None:
    """Kernels before 5.11 charge BPF objects to RLIMIT_MEMLOCK (64 KiB by default in a bare guest), so loads
    fail with EPERM once a few maps exist; lift it once, as libbpf does. Failure to lift is not fatal."""
    global _memlock_raised
    _memlock_raised = True
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _call(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> tuple[int, int]:
    """Issue bpf(cmd, attr); returns (result, errno) with errno 0 on success."""
    if _NR < 0:
        return -1, 38  # ENOSYS: no known bpf(2) number on this machine
    if not _memlock_raised:
        _raise_memlock_limit()
    ret = _syscall(_NR, cmd, attr, len(attr))
    return ret, (ctypes.get_errno() if ret < 0 else 0)


def close(fd: int) -> None:
    """Close a program, map, BTF or link file descriptor."""
    os.close(fd)


class LogBuffer:
    """A verifier log buffer reused across loads (allocating 1 MiB per probe would dominate probe time)."""

    def __init__(self, size: int = DEFAULT_LOG_SIZE) -> None:
        self.buffer = ctypes.create_string_buffer(size)

    def reset(self) -> None:
        self.buffer[0] = b"\0"

    def text(self) -> str:
        return self.buffer.value.decode("utf-8", "replace")


def try_prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
    log: LogBuffer | None = None,
    log_level: int = 1,
) -> tuple[int, int]:
    """BPF_PROG_LOAD without raising: (fd, 0) or (-1, errno); the verifier log, if any, is left in `log`."""
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    if log is not None:
        log.reset()
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIQQIIQII16sIIIIQIIQIIII",
            prog_type,
            len(insns) // 8,
            _addr(insn_buf),
            _addr(lic),
            log_level if log is not None else 0,
            len(log.buffer) if log is not None else 0,
            _addr(log.buffer) if log is not None else 0,
            0,
            prog_flags,
            b"",
            0,
            expected_attach_type,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            attach_btf_id,
            0,
            0,
        ),
        120,
    )
    return _call(BPF_PROG_LOAD, attr)


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
) -> int:
    """Load a program and return its fd; on failure reload with a verifier log and raise BpfSyscallError."""
    opts = {"expected_attach_type": expected_attach_type, "attach_btf_id": attach_btf_id}
    fd, err = try_prog_load(prog_type, insns, license, prog_flags=prog_flags, log=None, **opts)
    if fd >= 0:
        return fd
    log = LogBuffer()
    fd, err2 = try_prog_load(prog_type, insns, license, prog_flags=prog_flags, log=log, **opts)
    if fd >= 0:  # loads with a log but not without: keep it, it is a valid program
        return fd
    raise BpfSyscallError("BPF_PROG_LOAD", err2 or err, log.text())


def try_map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    map_flags: int = 0,
    *,
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
) -> tuple[int, int]:
    """BPF_MAP_CREATE without raising: (fd, 0) or (-1, errno)."""
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIIIIII16sIIIIIQ",
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags,
            inner_map_fd,
            0,
            b"",
            0,
            btf_fd,
            btf_key_type_id,
            btf_value_type_id,
            btf_vmlinux_value_type_id,
            map_extra,
        ),
        72,
    )
    return _call(BPF_MAP_CREATE, attr)


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0) -> int:
    """Create a map and return its fd; BpfSyscallError on failure."""
    fd, err = try_map_create(map_type, key_size, value_size, max_entries, map_flags)
    if fd < 0:
        raise BpfSyscallError("BPF_MAP_CREATE", err)
    return fd


def _elem_attr(
    fd: int, key: ctypes.Array[ctypes.c_char], value: ctypes.Array[ctypes.c_char], flags: int
) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(struct.pack("=IIQQQ", fd, 0, _addr(key), _addr(value), flags), 32)


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM (flags: 0 any, 1 noexist, 2 exist)."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    ret, err = _call(BPF_MAP_UPDATE_ELEM, _elem_attr(fd, k, v, flags))
    if ret < 0:
        raise BpfSyscallError("BPF_MAP_UPDATE_ELEM", err)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """BPF_MAP_LOOKUP_ELEM: the value, or None when the key is absent."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value_size)
    ret, err = _call(BPF_MAP_LOOKUP_ELEM, _elem_attr(fd, k, v, 0))
    if ret < 0:
        if err == 2:  # ENOENT
            return None
        raise BpfSyscallError("BPF_MAP_LOOKUP_ELEM", err)
    return v.raw


def prog_test_run(
    fd: int,
    data: bytes = b"",
    *,
    ctx: bytes | None = None,
    ctx_out_size: int = 0,
    repeat: int = 1,
    data_out_size: int | None = None,
) -> TestRun:
    """BPF_PROG_TEST_RUN: run a loaded program on `data` (and `ctx`), `repeat` times."""
    data_in = ctypes.create_string_buffer(data, len(data))
    out_size = len(data) + 256 if data_out_size is None else data_out_size
    data_out = ctypes.create_string_buffer(out_size) if out_size else None
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    ctx_out = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIIIQQIIIIQQIIII",
            fd,
            0,
            len(data),
            out_size,
            _addr(data_in) if data else 0,
            _addr(data_out),
            repeat,
            0,
            len(ctx) if ctx else 0,
            ctx_out_size,
            _addr(ctx_in),
            _addr(ctx_out),
            0,
            0,
            0,
            0,
        ),
        80,
    )
    ret, err = _call(BPF_PROG_TEST_RUN, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_PROG_TEST_RUN", err)
    retval, _, data_len = struct.unpack_from("=III", attr, 4)
    duration, _, ctx_len = struct.unpack_from("=III", attr, 36)
    return TestRun(
        retval=retval,
        duration_ns=duration,
        data_out=data_out.raw[: min(data_len, out_size)] if data_out is not None else b"",
        ctx_out=ctx_out.raw[: min(ctx_len, ctx_out_size)] if ctx_out is not None else b"",
    )


def obj_get_info_by_fd(fd: int, info_size: int = 256) -> bytes:
    """BPF_OBJ_GET_INFO_BY_FD: the raw bpf_{prog,map,btf,link}_info bytes the kernel filled in."""
    info = ctypes.create_string_buffer(info_size)
    attr = ctypes.create_string_buffer(struct.pack("=IIQ", fd, info_size, _addr(info)), 16)
    ret, err = _call(BPF_OBJ_GET_INFO_BY_FD, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_OBJ_GET_INFO_BY_FD", err)
    (info_len,) = struct.unpack_from("=I", attr, 4)
    return info.raw[: min(info_len, info_size)]


def btf_load(btf: bytes) -> int:
    """BPF_BTF_LOAD: load raw BTF and return its fd; BpfSyscallError with the kernel's BTF log on failure."""
    data = ctypes.create_string_buffer(btf, len(btf))
    log = LogBuffer(1 << 16)
    log.reset()
    attr = ctypes.create_string_buffer(
        struct.pack("=QQIII", _addr(data), _addr(log.buffer), len(btf), len(log.buffer), 1), 32
    )
    ret, err = _call(BPF_BTF_LOAD, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_BTF_LOAD", err, log.text())
    return ret


def try_link_create(prog_fd: int, target: int, attach_type: int, flags: int = 0) -> tuple[int, int]:
    """BPF_LINK_CREATE without raising: (link fd, 0) or (-1, errno). `target` is a target fd or an ifindex,
    as the attach type defines; the type-specific union is left zero."""
    attr = ctypes.create_string_buffer(struct.pack("=IIII", prog_fd, target, attach_type, flags), 64)
    return _call(BPF_LINK_CREATE, attr)
