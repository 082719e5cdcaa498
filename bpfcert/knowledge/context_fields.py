"""Fields of the program context structs of include/uapi/linux/bpf.h, with the first kernel that lets a program
read or write them: the verifier refuses an access at an offset it does not know yet ("invalid bpf_context
access"), so a field newer than its program type raises the kernel a program needs.

Sources: offsets and sizes are those of include/uapi/linux/bpf.h (tests/test_knowledge.py re-checks every row
against the installed header with offsetof/sizeof). `since` is the first release whose include/uapi/linux/bpf.h
has the field; `source` names the commit that added it where its subject is known, else that header.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class ContextField:
    struct: str
    field: str
    offset: int
    size: int  # bytes; an array field covers every element
    since: tuple[int, int]
    source: str

    @property
    def name(self) -> str:
        return f"{self.struct}.{self.field}"


# The context struct a program of each type receives in r1.
CONTEXT_STRUCTS: dict[str, str] = {
    **dict.fromkeys(
        (
            "socket_filter", "sched_cls", "sched_act", "cgroup_skb", "lwt_in", "lwt_out", "lwt_xmit",
            "lwt_seg6local", "sk_skb", "flow_dissector",
        ),
        "__sk_buff",
    ),
    "xdp": "xdp_md",
    "cgroup_sock": "bpf_sock",
    "cgroup_sock_addr": "bpf_sock_addr",
    "sk_msg": "sk_msg_md",
    "cgroup_sockopt": "bpf_sockopt",
}  # fmt: skip

_HEADER = "include/uapi/linux/bpf.h of the release in `since`"
_SKB_FIELDS = "bpf: allow extended BPF programs access skb fields"
_SKB_VLAN = "bpf: allow BPF programs access 'protocol' and 'vlan_tci' fields"
_SOCKMAP = "bpf: sockmap with sk redirect support"
_META = "bpf: add meta pointer for direct access"
_RXQ = "xdp: base API for new XDP rx-queue info concept"
_SOCK_CREATE = "bpf: Add new cgroup attach type to enable sock modifications"
_SOCK_MARK = "bpf: Add mark and priority to sock options that can be set"
_POST_BIND = "bpf: Post-hooks for sys_bind"
_SOCK_STATE = "bpf: Add state, dst_ip4, dst_ip6 and dst_port to bpf_sock"
_BIND_HOOKS = "bpf: Hooks for sys_bind"
_SENDMSG = "bpf: Hooks for sys_sendmsg"
_SK_MSG_SOCK = "bpf: allow sk_msg programs to read sock fields"
_SOCKOPT = "bpf: implement getsockopt and setsockopt hooks"

_F = ContextField
CONTEXT_FIELDS: tuple[ContextField, ...] = (
    _F("__sk_buff", "len", 0, 4, (4, 1), _SKB_FIELDS),
    _F("__sk_buff", "pkt_type", 4, 4, (4, 1), _SKB_FIELDS),
    _F("__sk_buff", "mark", 8, 4, (4, 1), _SKB_FIELDS),
    _F("__sk_buff", "queue_mapping", 12, 4, (4, 1), _SKB_FIELDS),
    _F("__sk_buff", "protocol", 16, 4, (4, 1), _SKB_VLAN),
    _F("__sk_buff", "vlan_present", 20, 4, (4, 1), _SKB_VLAN),
    _F("__sk_buff", "vlan_tci", 24, 4, (4, 1), _SKB_VLAN),
    _F("__sk_buff", "vlan_proto", 28, 4, (4, 1), _HEADER),
    _F("__sk_buff", "priority", 32, 4, (4, 1), _HEADER),
    _F("__sk_buff", "ingress_ifindex", 36, 4, (4, 2), _HEADER),
    _F("__sk_buff", "ifindex", 40, 4, (4, 2), _HEADER),
    _F("__sk_buff", "tc_index", 44, 4, (4, 2), _HEADER),
    _F("__sk_buff", "cb", 48, 20, (4, 2), _HEADER),
    _F("__sk_buff", "hash", 68, 4, (4, 3), _HEADER),
    _F("__sk_buff", "tc_classid", 72, 4, (4, 4), _HEADER),
    _F("__sk_buff", "data", 76, 4, (4, 7), "bpf: direct packet access"),
    _F("__sk_buff", "data_end", 80, 4, (4, 7), "bpf: direct packet access"),
    _F("__sk_buff", "napi_id", 84, 4, (4, 12), _HEADER),
    _F("__sk_buff", "family", 88, 4, (4, 14), _SOCKMAP),
    _F("__sk_buff", "remote_ip4", 92, 4, (4, 14), _SOCKMAP),
    _F("__sk_buff", "local_ip4", 96, 4, (4, 14), _SOCKMAP),
    _F("__sk_buff", "remote_ip6", 100, 16, (4, 14), _SOCKMAP),
    _F("__sk_buff", "local_ip6", 116, 16, (4, 14), _SOCKMAP),
    _F("__sk_buff", "remote_port", 132, 4, (4, 14), _SOCKMAP),
    _F("__sk_buff", "local_port", 136, 4, (4, 14), _SOCKMAP),
    _F("__sk_buff", "data_meta", 140, 4, (4, 15), _META),
    _F("__sk_buff", "flow_keys", 144, 8, (4, 20), "flow_dissector: implements flow dissector BPF hook"),
    _F("__sk_buff", "tstamp", 152, 8, (5, 0), "bpf: add skb->tstamp r/w access from tc clsact and cg skb progs"),
    _F("__sk_buff", "wire_len", 160, 4, (5, 0), _HEADER),
    _F("__sk_buff", "gso_segs", 164, 4, (5, 1), _HEADER),
    _F("__sk_buff", "sk", 168, 8, (5, 1), _HEADER),
    _F("__sk_buff", "gso_size", 176, 4, (5, 7), _HEADER),
    _F("__sk_buff", "tstamp_type", 180, 1, (5, 18), _HEADER),
    _F("__sk_buff", "hwtstamp", 184, 8, (5, 16), _HEADER),
    _F("xdp_md", "data", 0, 4, (4, 8), "bpf: add XDP prog type for early driver filter"),
    _F("xdp_md", "data_end", 4, 4, (4, 8), "bpf: add XDP prog type for early driver filter"),
    _F("xdp_md", "data_meta", 8, 4, (4, 15), _META),
    _F("xdp_md", "ingress_ifindex", 12, 4, (4, 16), _RXQ),
    _F("xdp_md", "rx_queue_index", 16, 4, (4, 16), _RXQ),
    _F("xdp_md", "egress_ifindex", 20, 4, (5, 8), "xdp: Add xdp_txq_info to xdp_buff"),
    _F("bpf_sock", "bound_dev_if", 0, 4, (4, 10), _SOCK_CREATE),
    _F("bpf_sock", "family", 4, 4, (4, 10), _HEADER),
    _F("bpf_sock", "type", 8, 4, (4, 10), _HEADER),
    _F("bpf_sock", "protocol", 12, 4, (4, 10), _HEADER),
    _F("bpf_sock", "mark", 16, 4, (4, 14), _SOCK_MARK),
    _F("bpf_sock", "priority", 20, 4, (4, 14), _SOCK_MARK),
    _F("bpf_sock", "src_ip4", 24, 4, (4, 17), _POST_BIND),
    _F("bpf_sock", "src_ip6", 28, 16, (4, 17), _POST_BIND),
    _F("bpf_sock", "src_port", 44, 4, (4, 17), _POST_BIND),
    _F("bpf_sock", "dst_port", 48, 2, (5, 1), _SOCK_STATE),
    _F("bpf_sock", "dst_ip4", 52, 4, (5, 1), _SOCK_STATE),
    _F("bpf_sock", "dst_ip6", 56, 16, (5, 1), _SOCK_STATE),
    _F("bpf_sock", "state", 72, 4, (5, 1), _SOCK_STATE),
    _F("bpf_sock", "rx_queue_mapping", 76, 4, (5, 9), "bpf: Add rx_queue_mapping to bpf_sock"),
    _F("bpf_sock_addr", "user_family", 0, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "user_ip4", 4, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "user_ip6", 8, 16, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "user_port", 24, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "family", 28, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "type", 32, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "protocol", 36, 4, (4, 17), _BIND_HOOKS),
    _F("bpf_sock_addr", "msg_src_ip4", 40, 4, (4, 18), _SENDMSG),
    _F("bpf_sock_addr", "msg_src_ip6", 44, 16, (4, 18), _SENDMSG),
    _F("bpf_sock_addr", "sk", 64, 8, (5, 3), _HEADER),
    _F("sk_msg_md", "data", 0, 8, (4, 17), _HEADER),
    _F("sk_msg_md", "data_end", 8, 8, (4, 17), _HEADER),
    _F("sk_msg_md", "family", 16, 4, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "remote_ip4", 20, 4, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "local_ip4", 24, 4, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "remote_ip6", 28, 16, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "local_ip6", 44, 16, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "remote_port", 60, 4, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "local_port", 64, 4, (4, 18), _SK_MSG_SOCK),
    _F("sk_msg_md", "size", 68, 4, (4, 20), _HEADER),
    _F("sk_msg_md", "sk", 72, 8, (5, 8), _HEADER),
    _F("bpf_sockopt", "sk", 0, 8, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "optval", 8, 8, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "optval_end", 16, 8, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "level", 24, 4, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "optname", 28, 4, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "optlen", 32, 4, (5, 3), _SOCKOPT),
    _F("bpf_sockopt", "retval", 36, 4, (5, 3), _SOCKOPT),
)


@functools.cache
def _by_struct() -> dict[str, tuple[ContextField, ...]]:
    table: dict[str, list[ContextField]] = {}
    for f in CONTEXT_FIELDS:
        table.setdefault(f.struct, []).append(f)
    return {k: tuple(v) for k, v in table.items()}


def context_field(prog_type: str | None, offset: int) -> ContextField | None:
    """The field of `prog_type`'s context struct that covers byte `offset` (narrow loads included), if any."""
    struct = CONTEXT_STRUCTS.get(prog_type or "")
    for f in _by_struct().get(struct or "", ()):
        if f.offset <= offset < f.offset + f.size:
            return f
    return None
