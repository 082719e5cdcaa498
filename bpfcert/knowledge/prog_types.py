"""Program types: enum bpf_prog_type value, name, first kernel version, and the names other tools use.

Sources: values and names are enum bpf_prog_type in include/uapi/linux/bpf.h (this host's header ends at
syscall = 31; netfilter = 32 is from Linux 6.4). First versions: the "Program types" table of bcc's
docs/kernel-versions.md; netfilter from the Linux 6.4 release ("bpf: minimal support for programs hooked
into netfilter framework"). Aliases: bpfman's program type names (tc, tcx, uprobe, fentry...) and the
SEC() words libbpf users write for them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgType:
    value: int
    name: str  # enum name lowercased without BPF_PROG_TYPE_, e.g. 'sched_cls'
    since: tuple[int, int]
    aliases: tuple[str, ...] = ()


PROG_TYPES: tuple[ProgType, ...] = (
    ProgType(1, "socket_filter", (3, 19), ("socket",)),
    ProgType(2, "kprobe", (4, 1), ("kretprobe", "uprobe", "uretprobe", "usdt")),
    ProgType(3, "sched_cls", (4, 1), ("tc", "tcx", "classifier")),
    ProgType(4, "sched_act", (4, 1), ("action",)),
    ProgType(5, "tracepoint", (4, 7), ("tp",)),
    ProgType(6, "xdp", (4, 8)),
    ProgType(7, "perf_event", (4, 9)),
    ProgType(8, "cgroup_skb", (4, 10)),
    ProgType(9, "cgroup_sock", (4, 10)),
    ProgType(10, "lwt_in", (4, 10)),
    ProgType(11, "lwt_out", (4, 10)),
    ProgType(12, "lwt_xmit", (4, 10)),
    ProgType(13, "sock_ops", (4, 13), ("sockops",)),
    ProgType(14, "sk_skb", (4, 14)),
    ProgType(15, "cgroup_device", (4, 15)),
    ProgType(16, "sk_msg", (4, 17)),
    ProgType(17, "raw_tracepoint", (4, 17), ("raw_tp",)),
    ProgType(18, "cgroup_sock_addr", (4, 17)),
    ProgType(19, "lwt_seg6local", (4, 18)),
    ProgType(20, "lirc_mode2", (4, 18)),
    ProgType(21, "sk_reuseport", (4, 19)),
    ProgType(22, "flow_dissector", (4, 20)),
    ProgType(23, "cgroup_sysctl", (5, 2)),
    ProgType(24, "raw_tracepoint_writable", (5, 2), ("raw_tp.w",)),
    ProgType(25, "cgroup_sockopt", (5, 3)),
    ProgType(26, "tracing", (5, 5), ("fentry", "fexit", "fmod_ret", "tp_btf", "iter")),
    ProgType(27, "struct_ops", (5, 6)),
    ProgType(28, "ext", (5, 6), ("freplace",)),
    ProgType(29, "lsm", (5, 7)),
    ProgType(30, "sk_lookup", (5, 9)),
    ProgType(31, "syscall", (5, 15)),
    ProgType(32, "netfilter", (6, 4)),
)


@functools.cache
def _by_name() -> dict[str, ProgType]:
    table = {p.name: p for p in PROG_TYPES}
    for p in PROG_TYPES:
        for alias in p.aliases:
            table.setdefault(alias, p)
    return table


def prog_type_by_name(name: str) -> ProgType | None:
    """By canonical name, alias, or kernel enum name ('sched_cls', 'tc', 'BPF_PROG_TYPE_SCHED_CLS')."""
    key = name.lower().removeprefix("bpf_prog_type_")
    return _by_name().get(key)


def prog_type_by_value(value: int) -> ProgType | None:
    return PROG_TYPES[value - 1] if 1 <= value <= len(PROG_TYPES) else None
