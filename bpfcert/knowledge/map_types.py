"""Map types: enum bpf_map_type value, name, first kernel version, and the names other tools use.

Sources: values and names are enum bpf_map_type in include/uapi/linux/bpf.h (this host's header ends at
user_ringbuf = 31; cgrp_storage = 32 is from Linux 6.2, arena = 33 from Linux 6.9). First versions: the
"Map types" table of bcc's docs/kernel-versions.md; cgrp_storage from Linux 6.2 (commit c4bcfb38a95e, "bpf:
Implement cgroup storage available to non-cgroup-attached bpf progs"), arena from Linux 6.9 ("bpf:
Introduce bpf_arena"). Aliases: bpfman's map type names (its io.ebpf.maps label uses the
snake_case of aya's MapType variants: per_cpu_array, ring_buf, dev_map...), and cgroup_storage_deprecated,
the UAPI's name for cgroup_storage since 6.2.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class MapType:
    value: int
    name: str  # enum name lowercased without BPF_MAP_TYPE_, e.g. 'percpu_array'
    since: tuple[int, int]
    aliases: tuple[str, ...] = ()


MAP_TYPES: tuple[MapType, ...] = (
    MapType(1, "hash", (3, 19)),
    MapType(2, "array", (3, 19)),
    MapType(3, "prog_array", (4, 2)),
    MapType(4, "perf_event_array", (4, 3)),
    MapType(5, "percpu_hash", (4, 6), ("per_cpu_hash",)),
    MapType(6, "percpu_array", (4, 6), ("per_cpu_array",)),
    MapType(7, "stack_trace", (4, 6)),
    MapType(8, "cgroup_array", (4, 8)),
    MapType(9, "lru_hash", (4, 10)),
    MapType(10, "lru_percpu_hash", (4, 10), ("lru_per_cpu_hash",)),
    MapType(11, "lpm_trie", (4, 11)),
    MapType(12, "array_of_maps", (4, 12)),
    MapType(13, "hash_of_maps", (4, 12)),
    MapType(14, "devmap", (4, 14), ("dev_map",)),
    MapType(15, "sockmap", (4, 14), ("sock_map",)),
    MapType(16, "cpumap", (4, 15), ("cpu_map",)),
    MapType(17, "xskmap", (4, 18), ("xsk_map",)),
    MapType(18, "sockhash", (4, 18), ("sock_hash",)),
    MapType(19, "cgroup_storage", (4, 19), ("cgroup_storage_deprecated",)),
    MapType(20, "reuseport_sockarray", (4, 19), ("reuse_port_sock_array", "reuseport_sock_array")),
    MapType(21, "percpu_cgroup_storage", (4, 20), ("per_cpu_cgroup_storage",)),
    MapType(22, "queue", (4, 20)),
    MapType(23, "stack", (4, 20)),
    MapType(24, "sk_storage", (5, 2)),
    MapType(25, "devmap_hash", (5, 4), ("dev_map_hash",)),
    MapType(26, "struct_ops", (5, 6)),
    MapType(27, "ringbuf", (5, 8), ("ring_buf",)),
    MapType(28, "inode_storage", (5, 10)),
    MapType(29, "task_storage", (5, 11)),
    MapType(30, "bloom_filter", (5, 16)),
    MapType(31, "user_ringbuf", (6, 1), ("user_ring_buf",)),
    MapType(32, "cgrp_storage", (6, 2)),
    MapType(33, "arena", (6, 9)),
)


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
    return MAP_TYPES[value - 1] if 1 <= value <= len(MAP_TYPES) else None
