"""C sources of small BPF programs that several tests compile (each test adds its own includes and licence)."""

# A tracepoint that only counts into a map: it reads no kernel struct, so it needs no CO-RE relocation.
TRACEPOINT_COUNTER = r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); }
    hits SEC(".maps");
SEC("tp/syscalls/sys_enter_openat") int count(void *ctx) {
    __u32 key = 0; __u64 *v = bpf_map_lookup_elem(&hits, &key);
    if (v) __sync_fetch_and_add(v, 1);
    return 0;
}
"""
