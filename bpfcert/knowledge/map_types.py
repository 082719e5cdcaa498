"""Map types: enum bpf_map_type value, name, first kernel version, and the names other tools use.

Sources: values and names are bpfcert.uapi's enum bpf_map_type. First versions: the "Map types" table of
bcc's docs/kernel-versions.md; cgrp_storage from Linux 6.2 (commit c4bcfb38a95e, "bpf: Implement cgroup
storage available to non-cgroup-attached bpf progs"), arena from Linux 6.9 ("bpf: Introduce bpf_arena").
Aliases: bpfman's map type names (its io.ebpf.maps label uses the snake_case of aya's MapType variants:
per_cpu_array, ring_buf, dev_map...), and cgroup_storage_deprecated, the UAPI's name for cgroup_storage
since 6.2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from bpfcert import uapi


@dataclass(frozen=True)
class MapType:
    value: int
    name: str  # enum name lowercased without BPF_MAP_TYPE_, e.g. 'percpu_array'
    since: tuple[int, int]
    aliases: tuple[str, ...] = ()


_VALUES = {name: value for value, name in enumerate(uapi.MAP_TYPES)}


def _row(name: str, since: tuple[int, int], aliases: tuple[str, ...] = ()) -> MapType:
    return MapType(_VALUES[name], name, since, aliases)  # KeyError: a name bpfcert.uapi does not know


# One row per enum value, in enum order.
MAP_TYPES: tuple[MapType, ...] = (
    _row("hash", (3, 19)),
    _row("array", (3, 19)),
    _row("prog_array", (4, 2)),
    _row("perf_event_array", (4, 3)),
    _row("percpu_hash", (4, 6), ("per_cpu_hash",)),
    _row("percpu_array", (4, 6), ("per_cpu_array",)),
    _row("stack_trace", (4, 6)),
    _row("cgroup_array", (4, 8)),
    _row("lru_hash", (4, 10)),
    _row("lru_percpu_hash", (4, 10), ("lru_per_cpu_hash",)),
    _row("lpm_trie", (4, 11)),
    _row("array_of_maps", (4, 12)),
    _row("hash_of_maps", (4, 12)),
    _row("devmap", (4, 14), ("dev_map",)),
    _row("sockmap", (4, 14), ("sock_map",)),
    _row("cpumap", (4, 15), ("cpu_map",)),
    _row("xskmap", (4, 18), ("xsk_map",)),
    _row("sockhash", (4, 18), ("sock_hash",)),
    _row("cgroup_storage", (4, 19), ("cgroup_storage_deprecated",)),
    _row("reuseport_sockarray", (4, 19), ("reuse_port_sock_array", "reuseport_sock_array")),
    _row("percpu_cgroup_storage", (4, 20), ("per_cpu_cgroup_storage",)),
    _row("queue", (4, 20)),
    _row("stack", (4, 20)),
    _row("sk_storage", (5, 2)),
    _row("devmap_hash", (5, 4), ("dev_map_hash",)),
    _row("struct_ops", (5, 6)),
    _row("ringbuf", (5, 8), ("ring_buf",)),
    _row("inode_storage", (5, 10)),
    _row("task_storage", (5, 11)),
    _row("bloom_filter", (5, 16)),
    _row("user_ringbuf", (6, 1), ("user_ring_buf",)),
    _row("cgrp_storage", (6, 2)),
    _row("arena", (6, 9)),
)


# Map types a kernel has only when built with this option, whatever its version (inode_storage is defined by
# kernel/bpf/bpf_inode_storage.c, built for CONFIG_BPF_LSM).
KCONFIG: dict[str, str] = {"inode_storage": "CONFIG_BPF_LSM"}
# Map types whose values are typed by the kernel's own BTF (struct_ops: btf_vmlinux_value_type_id), refused by a
# kernel without it.
NEEDS_KERNEL_BTF = frozenset({"struct_ops"})
# Map types whose values are trampolines the JIT builds (struct_ops), refused by a kernel without a BPF JIT.
NEEDS_JIT = frozenset({"struct_ops"})


@functools.cache
def _by_name() -> dict[str, MapType]:
    table = {m.name: m for m in MAP_TYPES}
    for m in MAP_TYPES:
        for alias in m.aliases:
            table.setdefault(alias, m)
    return table


def map_type_by_name(name: str) -> MapType | None:
    """By canonical name, alias, or kernel enum name ('percpu_array', 'per_cpu_array', 'BPF_MAP_TYPE_...')."""
    key = name.lower().removeprefix("bpf_map_type_")
    return _by_name().get(key)


def map_type_by_value(value: int) -> MapType | None:
    return _by_name().get(uapi.MAP_TYPES[value]) if 0 < value < len(uapi.MAP_TYPES) else None
