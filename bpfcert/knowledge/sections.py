"""libbpf's SEC() naming conventions: which program type and expected attach type a section name implies.

Source: libbpf's section_defs table as documented in the kernel's Documentation/bpf/libbpf/program_types.rst
(libbpf 1.x). Matching follows libbpf 1.x's sec_def_matches(): a definition written "kprobe+" matches the bare
word or "kprobe/<extras>"; one without "+" must match exactly. The "sloppy" prefixes of libbpf 0.x
(SEC("xdp_foo"), SEC("socket1")) are gone since libbpf 1.0 and imply nothing here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass


@dataclass(frozen=True)
class SectionDef:
    pattern: str  # as in libbpf: 'kprobe+' (word or word/extras), 'xdp' (exact)
    prog_type: str
    attach_type: str | None  # enum bpf_attach_type name lowercased without BPF_; None = libbpf passes 0
    sleepable: bool = False
    target_required: bool = False  # SEC_ATTACH_BTF: libbpf needs the target after the '/' to load it


@dataclass(frozen=True)
class SectionInfo:
    section: str
    prog_type: str
    attach_type: str | None
    attach_target: str | None  # what follows the prefix: function, tracepoint, hook, binary:symbol...
    sleepable: bool
    pattern: str


_D = SectionDef
SECTION_DEFS: tuple[SectionDef, ...] = (
    _D("socket", "socket_filter", None),
    _D("sk_reuseport/migrate", "sk_reuseport", "sk_reuseport_select_or_migrate"),
    _D("sk_reuseport", "sk_reuseport", "sk_reuseport_select"),
    _D("kprobe+", "kprobe", None),
    _D("uprobe+", "kprobe", None),
    _D("uprobe.s+", "kprobe", None, sleepable=True),
    _D("kretprobe+", "kprobe", None),
    _D("uretprobe+", "kprobe", None),
    _D("uretprobe.s+", "kprobe", None, sleepable=True),
    _D("kprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _D("kretprobe.multi+", "kprobe", "trace_kprobe_multi"),
    _D("kprobe.session+", "kprobe", "trace_kprobe_session"),
    _D("uprobe.multi+", "kprobe", "trace_uprobe_multi"),
    _D("uretprobe.multi+", "kprobe", "trace_uprobe_multi"),
    _D("uprobe.session+", "kprobe", "trace_uprobe_session"),
    _D("uprobe.multi.s+", "kprobe", "trace_uprobe_multi", sleepable=True),
    _D("uretprobe.multi.s+", "kprobe", "trace_uprobe_multi", sleepable=True),
    _D("uprobe.session.s+", "kprobe", "trace_uprobe_session", sleepable=True),
    _D("ksyscall+", "kprobe", None),
    _D("kretsyscall+", "kprobe", None),
    _D("usdt+", "kprobe", None),
    _D("usdt.s+", "kprobe", None, sleepable=True),
    _D("tc/ingress", "sched_cls", "tcx_ingress"),
    _D("tc/egress", "sched_cls", "tcx_egress"),
    _D("tcx/ingress", "sched_cls", "tcx_ingress"),
    _D("tcx/egress", "sched_cls", "tcx_egress"),
    _D("netkit/primary", "sched_cls", "netkit_primary"),
    _D("netkit/peer", "sched_cls", "netkit_peer"),
    _D("tc", "sched_cls", None),
    _D("classifier", "sched_cls", None),
    _D("action", "sched_act", None),
    _D("tracepoint+", "tracepoint", None),
    _D("tp+", "tracepoint", None),
    _D("raw_tracepoint+", "raw_tracepoint", None),
    _D("raw_tp+", "raw_tracepoint", None),
    _D("raw_tracepoint.w+", "raw_tracepoint_writable", None),
    _D("raw_tp.w+", "raw_tracepoint_writable", None),
    _D("tp_btf+", "tracing", "trace_raw_tp", target_required=True),
    _D("fentry+", "tracing", "trace_fentry", target_required=True),
    _D("fmod_ret+", "tracing", "modify_return", target_required=True),
    _D("fexit+", "tracing", "trace_fexit", target_required=True),
    _D("fentry.s+", "tracing", "trace_fentry", sleepable=True, target_required=True),
    _D("fmod_ret.s+", "tracing", "modify_return", sleepable=True, target_required=True),
    _D("fexit.s+", "tracing", "trace_fexit", sleepable=True, target_required=True),
    _D("freplace+", "ext", None, target_required=True),
    _D("lsm+", "lsm", "lsm_mac", target_required=True),
    _D("lsm.s+", "lsm", "lsm_mac", sleepable=True, target_required=True),
    _D("lsm_cgroup+", "lsm", "lsm_cgroup", target_required=True),
    _D("iter+", "tracing", "trace_iter", target_required=True),
    _D("iter.s+", "tracing", "trace_iter", sleepable=True, target_required=True),
    _D("syscall", "syscall", None, sleepable=True),
    _D("xdp.frags/devmap", "xdp", "xdp_devmap"),
    _D("xdp/devmap", "xdp", "xdp_devmap"),
    _D("xdp.frags/cpumap", "xdp", "xdp_cpumap"),
    _D("xdp/cpumap", "xdp", "xdp_cpumap"),
    _D("xdp.frags", "xdp", "xdp"),
    _D("xdp", "xdp", "xdp"),
    _D("perf_event", "perf_event", None),
    _D("lwt_in", "lwt_in", None),
    _D("lwt_out", "lwt_out", None),
    _D("lwt_xmit", "lwt_xmit", None),
    _D("lwt_seg6local", "lwt_seg6local", None),
    _D("sockops", "sock_ops", "cgroup_sock_ops"),
    _D("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser"),
    _D("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"),
    _D("sk_skb/verdict", "sk_skb", "sk_skb_verdict"),
    _D("sk_skb", "sk_skb", None),
    _D("sk_msg", "sk_msg", "sk_msg_verdict"),
    _D("lirc_mode2", "lirc_mode2", "lirc_mode2"),
    _D("flow_dissector", "flow_dissector", "flow_dissector"),
    _D("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"),
    _D("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress"),
    _D("cgroup/skb", "cgroup_skb", None),
    _D("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
    _D("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release"),
    _D("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"),
    _D("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind"),
    _D("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind"),
    _D("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind"),
    _D("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind"),
    _D("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
    _D("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect"),
    _D("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect"),
    _D("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    _D("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    _D("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg"),
    _D("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    _D("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    _D("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg"),
    _D("cgroup/getpeername4", "cgroup_sock_addr", "cgroup_inet4_getpeername"),
    _D("cgroup/getpeername6", "cgroup_sock_addr", "cgroup_inet6_getpeername"),
    _D("cgroup/getpeername_unix", "cgroup_sock_addr", "cgroup_unix_getpeername"),
    _D("cgroup/getsockname4", "cgroup_sock_addr", "cgroup_inet4_getsockname"),
    _D("cgroup/getsockname6", "cgroup_sock_addr", "cgroup_inet6_getsockname"),
    _D("cgroup/getsockname_unix", "cgroup_sock_addr", "cgroup_unix_getsockname"),
    _D("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    _D("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
    _D("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt"),
    _D("cgroup/dev", "cgroup_device", "cgroup_device"),
    _D("struct_ops+", "struct_ops", None),
    _D("struct_ops.s+", "struct_ops", None, sleepable=True),
    _D("sk_lookup", "sk_lookup", "sk_lookup"),
    _D("netfilter", "netfilter", "netfilter"),
)


def _match(definition: SectionDef, section: str) -> str | None:
    """The extras after the prefix ('' when none) if `section` matches `definition`, else None."""
    pattern = definition.pattern
    if not pattern.endswith("+"):
        return "" if section == pattern else None
    word = pattern[:-1]
    if section == word:
        return ""
    if section.startswith(word + "/"):
        return section[len(word) + 1 :]
    return None


@functools.lru_cache(maxsize=1024)
def classify_section(section: str) -> SectionInfo | None:
    """What libbpf makes of SEC(`section`): program type, attach type, target; None if no convention fits."""
    for definition in SECTION_DEFS:
        extras = _match(definition, section)
        if extras is not None:
            return SectionInfo(
                section=section,
                prog_type=definition.prog_type,
                attach_type=definition.attach_type,
                attach_target=extras or None,
                sleepable=definition.sleepable,
                pattern=definition.pattern,
            )
    return None
