"""First kernel versions of attach types and bpf_link kinds, for those bpfcert probes.

Sources, per row: the kernel commit that added each one (by subject) and the release it merged in.
- cgroup_inet_ingress/egress 4.10 ("bpf: add new prog type for cgroup socket filtering"),
  cgroup_inet_sock_create 4.10 ("bpf: Add new cgroup attach type to enable sock modifications"),
  cgroup_inet_sock_release 5.9 ("bpf: Add BPF_CGROUP_INET_SOCK_RELEASE hook").
- cgroup_inet4/6_bind 4.17 ("bpf: Hooks for sys_bind"), cgroup_inet4/6_connect 4.17 ("bpf: Hooks for
  sys_connect"), cgroup_inet4/6_post_bind 4.17 ("bpf: Post-hooks for sys_bind"), cgroup_udp4/6_sendmsg 4.18
  ("bpf: Hooks for sys_sendmsg"), cgroup_udp4/6_recvmsg 5.2 ("bpf: fix unconnected udp hooks"),
  cgroup_inet4/6_getpeername/getsockname 5.8 ("bpf: Add get{peer,sock}name attach types for sock_addr"),
  cgroup_unix_* 6.7 ("bpf: Implement cgroup sockaddr hooks for unix sockets").
- cgroup_getsockopt/setsockopt 5.3 ("bpf: implement getsockopt and setsockopt hooks").
- links: cgroup 5.7 ("bpf: Implement bpf_link-based cgroup BPF program attachment"), perf_event 5.15 ("bpf:
  Implement minimal BPF perf link"), tcx 6.6 ("bpf: Add fd-based tcx multi-prog infra with link support").
"""

from __future__ import annotations

_SOCK_ADDR = {
    **dict.fromkeys(
        ("cgroup_inet4_bind", "cgroup_inet6_bind", "cgroup_inet4_connect", "cgroup_inet6_connect"), (4, 17)
    ),
    **dict.fromkeys(("cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg"), (4, 18)),
    **dict.fromkeys(("cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg"), (5, 2)),
    **dict.fromkeys(
        (
            "cgroup_inet4_getpeername",
            "cgroup_inet6_getpeername",
            "cgroup_inet4_getsockname",
            "cgroup_inet6_getsockname",
        ),
        (5, 8),
    ),
    **dict.fromkeys(
        (
            "cgroup_unix_connect",
            "cgroup_unix_sendmsg",
            "cgroup_unix_recvmsg",
            "cgroup_unix_getpeername",
            "cgroup_unix_getsockname",
        ),
        (6, 7),
    ),
}

# attach type (bpfcert.uapi.ATTACH_TYPES name) -> first (major, minor)
ATTACH_TYPES_SINCE: dict[str, tuple[int, int]] = {
    "cgroup_inet_ingress": (4, 10),
    "cgroup_inet_egress": (4, 10),
    "cgroup_inet_sock_create": (4, 10),
    "cgroup_inet_sock_release": (5, 9),
    "cgroup_inet4_post_bind": (4, 17),
    "cgroup_inet6_post_bind": (4, 17),
    **_SOCK_ADDR,
    "cgroup_getsockopt": (5, 3),
    "cgroup_setsockopt": (5, 3),
}

# bpf_link kind -> first (major, minor)
LINK_TYPES_SINCE: dict[str, tuple[int, int]] = {"cgroup": (5, 7), "perf_event": (5, 15), "tcx": (6, 6)}
