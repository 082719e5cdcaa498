"""Program types: enum bpf_prog_type value, name, first kernel version, and the names other tools use.

Sources: values and names are bpfcert.uapi's enum bpf_prog_type. First versions: the "Program types" table
of bcc's docs/kernel-versions.md; netfilter from the Linux 6.4 release ("bpf: minimal support for programs
hooked into netfilter framework"). Aliases: bpfman's program type names (tc, tcx, uprobe, fentry...) and the
SEC() words libbpf users write for them. Build options: include/linux/bpf_types.h registers these types
only under an #ifdef.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bpfcert import uapi


@dataclass(frozen=True)
class ProgType:
    value: int
    name: str  # enum name lowercased without BPF_PROG_TYPE_, e.g. 'sched_cls'
    since: tuple[int, int]
    aliases: tuple[str, ...] = ()


_VALUES = {name: value for value, name in enumerate(uapi.PROG_TYPES)}


def _row(name: str, since: tuple[int, int], aliases: tuple[str, ...] = ()) -> ProgType:
    return ProgType(_VALUES[name], name, since, aliases)  # KeyError: a name bpfcert.uapi does not know


# One row per enum value, in enum order.
PROG_TYPES: tuple[ProgType, ...] = (
    _row("socket_filter", (3, 19), ("socket",)),
    _row("kprobe", (4, 1), ("kretprobe", "uprobe", "uretprobe", "usdt")),
    _row("sched_cls", (4, 1), ("tc", "tcx", "classifier")),
    _row("sched_act", (4, 1), ("action",)),
    _row("tracepoint", (4, 7), ("tp",)),
    _row("xdp", (4, 8)),
    _row("perf_event", (4, 9)),
    _row("cgroup_skb", (4, 10)),
    _row("cgroup_sock", (4, 10)),
    _row("lwt_in", (4, 10)),
    _row("lwt_out", (4, 10)),
    _row("lwt_xmit", (4, 10)),
    _row("sock_ops", (4, 13), ("sockops",)),
    _row("sk_skb", (4, 14)),
    _row("cgroup_device", (4, 15)),
    _row("sk_msg", (4, 17)),
    _row("raw_tracepoint", (4, 17), ("raw_tp",)),
    _row("cgroup_sock_addr", (4, 17)),
    _row("lwt_seg6local", (4, 18)),
    _row("lirc_mode2", (4, 18)),
    _row("sk_reuseport", (4, 19)),
    _row("flow_dissector", (4, 20)),
    _row("cgroup_sysctl", (5, 2)),
    _row("raw_tracepoint_writable", (5, 2), ("raw_tp.w",)),
    _row("cgroup_sockopt", (5, 3)),
    _row("tracing", (5, 5), ("fentry", "fexit", "fmod_ret", "tp_btf", "iter")),
    _row("struct_ops", (5, 6)),
    _row("ext", (5, 6), ("freplace",)),
    _row("lsm", (5, 7)),
    _row("sk_lookup", (5, 9)),
    _row("syscall", (5, 15)),
    _row("netfilter", (6, 4)),
)

# Program types a kernel has only when built with this option, whatever its version.
KCONFIG: dict[str, str] = {
    "lirc_mode2": "CONFIG_BPF_LIRC_MODE2",
    "lsm": "CONFIG_BPF_LSM",
    "netfilter": "CONFIG_NETFILTER_BPF_LINK",
}

# Program types whose loads (not attached to another program's fd) resolve their target in the kernel's own BTF,
# so a kernel without /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF unset, as Debian's s390x 6.1) refuses them
# with EINVAL (kernel/bpf/syscall.c, bpf_prog_load: attach_btf = bpf_get_btf_vmlinux()).
NEEDS_KERNEL_BTF = frozenset({"tracing", "lsm", "struct_ops", "ext"})
# Program types a kernel without a BPF JIT (CONFIG_BPF_JIT unset, as Debian's s390x kernels: the interpreter runs
# everything) refuses with EINVAL: extensions must be JIT-compiled (kernel/bpf/verifier.c, "Extension programs
# should be JITed"), struct_ops programs are called through trampolines the JIT builds.
NEEDS_JIT = frozenset({"struct_ops", "ext"})


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
    return _by_name().get(uapi.PROG_TYPES[value]) if 0 < value < len(uapi.PROG_TYPES) else None
