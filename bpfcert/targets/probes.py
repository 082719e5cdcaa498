"""Kernel feature probes, the body of the "probe" op: real loads through bpf(2), each answering available,
unsupported or inconclusive.

A probe counts a feature as present only when the kernel accepted it, and as absent only on the kernel's
own "not supported" answer (an unknown type, an unknown helper, an instruction the verifier rejects);
anything else (EPERM, ENOMEM, a truncated log...) is "inconclusive" with the evidence, never guessed.

This module runs inside the guest agent under TCG: it imports only the stdlib, ctypes and bpfcert's own
stdlib-only modules (tests/test_imports.py checks). The `bpfcert probe` command is bpfcert.probe_cmd.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

from bpfcert import insn
from bpfcert.targets import bpf

AVAILABLE, UNSUPPORTED, INCONCLUSIVE = "available", "unsupported", "inconclusive"
# A helper the kernel has but gives no program of this type (not allowed, or disabled by the kernel's config).
NOT_ALLOWED = "not_allowed"

# Helpers are probed per program type for these types by default (a helper probe costs ~2.5 ms under TCG, so
# each type adds ~0.5 s per guest; `bpfcert probe --package` adds the package's own program types). The JSON
# names the set under helpers.probed_prog_types.
HELPER_PROG_TYPES = ("kprobe", "sched_cls", "xdp")

# Verifier messages: an id past the kernel's helper table ("invalid func"), and a helper the kernel has but gives
# no program of this type ("program of this type cannot use helper" since Linux 6.2, "unknown func" before).
_HELPER_MISSING = "invalid func "
_HELPER_NOT_ALLOWED = ("unknown func ", "program of this type cannot use helper ")

# Program types that must be loaded with a particular expected_attach_type, and (for BTF-attached types) a BTF
# id: type 1 is never a function in vmlinux BTF, so a kernel that knows the type answers from the verifier
# ("attach_btf_id 1 is not a function", "Tracing programs must provide btf_id"...), one that does not answers
# EINVAL before the verifier runs.
_PROG_LOAD_ATTRS: dict[str, tuple[str, int]] = {
    "cgroup_sock": ("cgroup_inet_sock_create", 0),
    "cgroup_sock_addr": ("cgroup_inet4_connect", 0),
    "cgroup_sockopt": ("cgroup_getsockopt", 0),
    "sk_lookup": ("sk_lookup", 0),
    "netfilter": ("netfilter", 0),
    "tracing": ("trace_fentry", 1),
    "lsm": ("lsm_mac", 1),
    "ext": ("cgroup_inet_ingress", 1),
    "struct_ops": ("cgroup_inet_ingress", 1),
}

# Attach types the kernel checks at load time (bpf_prog_load_check_attach), per program type.
ATTACH_TYPES_AT_LOAD: dict[str, tuple[str, ...]] = {
    "cgroup_skb": ("cgroup_inet_ingress", "cgroup_inet_egress"),
    "cgroup_sock": (
        "cgroup_inet_sock_create",
        "cgroup_inet_sock_release",
        "cgroup_inet4_post_bind",
        "cgroup_inet6_post_bind",
    ),
    "cgroup_sock_addr": (
        "cgroup_inet4_bind",
        "cgroup_inet6_bind",
        "cgroup_inet4_connect",
        "cgroup_inet6_connect",
        "cgroup_udp4_sendmsg",
        "cgroup_udp6_sendmsg",
        "cgroup_udp4_recvmsg",
        "cgroup_udp6_recvmsg",
        "cgroup_inet4_getpeername",
        "cgroup_inet6_getpeername",
        "cgroup_inet4_getsockname",
        "cgroup_inet6_getsockname",
        "cgroup_unix_connect",
        "cgroup_unix_sendmsg",
        "cgroup_unix_recvmsg",
        "cgroup_unix_getpeername",
        "cgroup_unix_getsockname",
    ),
    "cgroup_sockopt": ("cgroup_getsockopt", "cgroup_setsockopt"),
}

# bpf_link kinds whose BPF_LINK_CREATE answers a deliberately bad target with an errno of its own, after the
# kernel has accepted the attach type: name -> (program type, attach type, target, errno meaning "known").
# A kernel without the link kind answers EINVAL first. (XDP, netkit and multi-kprobe links answer a bad target
# with EINVAL too, so a probe could not tell them from "unknown"; they are not probed.)
LINK_PROBES: dict[str, tuple[str, str, int, int]] = {
    "cgroup": ("cgroup_skb", "cgroup_inet_ingress", 0xFFFFFFFF, errno.EBADF),  # target fd -1
    "perf_event": ("tracepoint", "perf_event", 0xFFFFFFFF, errno.EBADF),  # perf event fd -1
    "tcx": ("sched_cls", "tcx_ingress", 0, errno.ENODEV),  # ifindex 0
}

BPF_F_NO_PREALLOC = 1
BPF_F_MMAPABLE = 1 << 10
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")  # ring buffers must be a power-of-2 multiple of it


class MapShape(NamedTuple):
    """The attributes one map type accepts at creation (the kernel answers EINVAL both for an unknown type and
    for bad attributes, so each type must be created with attributes it is known to accept)."""

    key_size: int = 4
    value_size: int = 4
    max_entries: int = 1
    flags: int = 0
    needs_btf: bool = False  # local storage maps: key/value types from a loaded BTF
    needs_inner: bool = False  # map-in-map: an inner map fd
    vmlinux_value_type: bool = False  # struct_ops: a vmlinux value type id; ENOTSUPP answers "type known"


_STORAGE = MapShape(max_entries=0, flags=BPF_F_NO_PREALLOC, needs_btf=True)
MAP_SHAPES: dict[str, MapShape] = {
    "stack_trace": MapShape(value_size=8),
    "lpm_trie": MapShape(key_size=8, flags=BPF_F_NO_PREALLOC),
    "array_of_maps": MapShape(needs_inner=True),
    "hash_of_maps": MapShape(needs_inner=True),
    "cgroup_storage": MapShape(key_size=8, max_entries=0),
    "percpu_cgroup_storage": MapShape(key_size=8, max_entries=0),
    "queue": MapShape(key_size=0),
    "stack": MapShape(key_size=0),
    "bloom_filter": MapShape(key_size=0),
    "sk_storage": _STORAGE,
    "inode_storage": _STORAGE,
    "task_storage": _STORAGE,
    "cgrp_storage": _STORAGE,
    "struct_ops": MapShape(vmlinux_value_type=True),
    "ringbuf": MapShape(key_size=0, value_size=0, max_entries=PAGE_SIZE),
    "user_ringbuf": MapShape(key_size=0, value_size=0, max_entries=PAGE_SIZE),
    "arena": MapShape(key_size=0, value_size=0, max_entries=1, flags=BPF_F_MMAPABLE),
}

_BYTEORDER = sys.byteorder
_RETURN_0 = insn.assemble([insn.mov64_imm(0, 0), insn.exit_()], _BYTEORDER)
_HELPER_PROBE_TAIL = insn.assemble([insn.ldx_mem("DW", 0, 10, 0), insn.exit_()], _BYTEORDER)


class Finding(NamedTuple):
    """One probe's answer and its evidence (errno name and the verifier's last line, if any)."""

    status: str
    evidence: str = ""

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "evidence": self.evidence} if self.evidence else {"status": self.status}


def _errno_name(err: int) -> str:
    return "ENOTSUPP" if err == bpf.ENOTSUPP else errno.errorcode.get(err, str(err))


def _evidence(err: int, log: str) -> str:
    reason = bpf.verifier_reason(log)
    return f"{_errno_name(err)}: {reason}" if reason else _errno_name(err)


class Prober:
    """Runs probes on the running kernel, reusing one verifier log buffer and counting loads."""

    def __init__(self) -> None:
        self.log = bpf.LogBuffer(1 << 16)
        self.loads = 0

    def _load(
        self,
        prog_type: str,
        insns: bytes,
        attach: str = "cgroup_inet_ingress",
        btf_id: int = 0,
        log: bool = True,
    ) -> tuple[int, int, str]:
        self.loads += 1
        fd, err = bpf.try_prog_load(
            bpf.PROG_TYPES.index(prog_type),
            insns,
            expected_attach_type=bpf.ATTACH_TYPES.index(attach),
            attach_btf_id=btf_id,
            log=self.log if log else None,
        )
        if fd >= 0:
            bpf.close(fd)
            return fd, 0, ""
        return fd, err, self.log.text() if log else ""

    def probe_prog_type(self, prog_type: str) -> Finding:
        """A program type is known when a minimal program loads, or when the verifier ran on it (a non-empty
        log: the kernel accepted the type and rejected only the missing attach target)."""
        attach, btf_id = _PROG_LOAD_ATTRS.get(prog_type, ("cgroup_inet_ingress", 0))
        fd, err, log = self._load(prog_type, _RETURN_0, attach, btf_id)
        if fd >= 0:
            return Finding(AVAILABLE)
        if log.strip() and err in (errno.EINVAL, errno.EACCES, bpf.ENOTSUPP, errno.ESRCH, errno.ENOENT):
            return Finding(AVAILABLE, "type known to the verifier; " + _evidence(err, log))
        if err in (errno.EINVAL, bpf.ENOTSUPP, errno.EOPNOTSUPP):
            return Finding(UNSUPPORTED, _evidence(err, log))
        return Finding(INCONCLUSIVE, _evidence(err, log))

    def probe_attach_type(self, prog_type: str, attach: str) -> Finding:
        """An attach type checked at load time: EINVAL before the verifier runs means it is unknown."""
        fd, err, log = self._load(prog_type, _RETURN_0, attach)
        if fd >= 0:
            return Finding(AVAILABLE)
        if log.strip() and err in (errno.EINVAL, errno.EACCES):
            return Finding(AVAILABLE, "attach type accepted; " + _evidence(err, log))
        if err == errno.EINVAL:
            return Finding(UNSUPPORTED, _evidence(err, log))
        return Finding(INCONCLUSIVE, _evidence(err, log))

    def probe_helper(self, prog_type: str, helper_id: int) -> Finding:
        """`call helper; r0 = *(u64 *)(r10 + 0); exit`. The verifier either names the helper missing from the
        kernel (unsupported) or not allowed for this program type (not_allowed), or accepts the call and rejects
        a later check: a bad argument or the out-of-frame stack read that ends every helper probe. The probe
        never loads, so no program is JIT-compiled and freed (JIT text patching is what makes loads slow under
        TCG)."""
        code = insn.encode(insn.call(helper_id), _BYTEORDER) + _HELPER_PROBE_TAIL
        attach, btf_id = _PROG_LOAD_ATTRS.get(prog_type, ("cgroup_inet_ingress", 0))
        fd, err, log = self._load(prog_type, code, attach, btf_id)
        if _HELPER_MISSING in log:
            return Finding(UNSUPPORTED, _evidence(err, log))
        if err == bpf.ENOTSUPP or any(marker in log for marker in _HELPER_NOT_ALLOWED):
            return Finding(NOT_ALLOWED, _evidence(err, log))
        if fd >= 0 or (log.strip() and err in (errno.EINVAL, errno.EACCES)):
            return Finding(AVAILABLE)
        return Finding(INCONCLUSIVE, _evidence(err, log))

    def probe_link_type(self, link: str) -> Finding:
        """A bpf_link kind: load a minimal program of its type and create a link to a target that cannot
        exist; the kernel's "no such target" errno shows it knows the kind, EINVAL that it does not."""
        prog_type, attach, target, known = LINK_PROBES[link]
        self.loads += 1
        prog, err = bpf.try_prog_load(bpf.PROG_TYPES.index(prog_type), _RETURN_0)
        if prog < 0:
            return Finding(INCONCLUSIVE, f"{prog_type} program did not load: {_errno_name(err)}")
        try:
            fd, err = bpf.try_link_create(prog, target, bpf.ATTACH_TYPES.index(attach))
        finally:
            bpf.close(prog)
        if fd >= 0:  # cannot happen for these targets; never keep an attachment around
            bpf.close(fd)
            return Finding(AVAILABLE)
        if err == known:
            return Finding(AVAILABLE, f"{_errno_name(err)} for the placeholder target")
        if err == errno.EINVAL:
            return Finding(UNSUPPORTED, "EINVAL")
        return Finding(INCONCLUSIVE, _errno_name(err))

    def helper_count(self) -> int:
        """How many helper ids this kernel has (ids at or past it fail with "invalid func"): a binary search,
        so helpers a kernel is too old to know cost no load per program type."""
        low, high = 1, len(bpf.HELPER_NAMES)  # id `low` is known; find the first unknown id in (low, high]
        while low + 1 < high:
            mid = (low + high) // 2
            code = insn.encode(insn.call(mid), _BYTEORDER) + _HELPER_PROBE_TAIL
            _, _, log = self._load("socket_filter", code)
            if _HELPER_MISSING in log:
                high = mid
            else:
                low = mid
        return high

    def probe_map_type(self, map_type: str, btf_fd: int = -1) -> Finding:
        """Create a one-entry map of the type with attributes that type accepts; EINVAL then means unknown."""
        shape = MAP_SHAPES.get(map_type, MapShape())
        if shape.needs_btf and btf_fd < 0:
            return Finding(INCONCLUSIVE, "no BTF could be loaded for the key/value types")
        inner = bpf.try_map_create(bpf.MAP_TYPES.index("array"), 4, 4, 1)[0] if shape.needs_inner else 0
        try:
            fd, err = bpf.try_map_create(
                bpf.MAP_TYPES.index(map_type),
                shape.key_size,
                shape.value_size,
                shape.max_entries,
                shape.flags,
                inner_map_fd=max(inner, 0),
                btf_fd=btf_fd if shape.needs_btf else 0,
                btf_key_type_id=1 if shape.needs_btf else 0,
                btf_value_type_id=1 if shape.needs_btf else 0,
                btf_vmlinux_value_type_id=1 if shape.vmlinux_value_type else 0,
            )
        finally:
            if inner > 0:
                bpf.close(inner)
        if fd >= 0:
            bpf.close(fd)
            return Finding(AVAILABLE)
        if shape.vmlinux_value_type and err == bpf.ENOTSUPP:
            return Finding(AVAILABLE, "type known; ENOTSUPP for the placeholder value type")
        if err in (errno.EINVAL, errno.EOPNOTSUPP, bpf.ENOTSUPP):
            return Finding(UNSUPPORTED, _errno_name(err))
        return Finding(INCONCLUSIVE, _errno_name(err))

    def probe_isa(self) -> dict[str, Finding]:
        """ISA versions v1-v4 (LLVM -mcpu): socket filters that use each version's new instructions."""
        mov0 = insn.mov64_imm(0, 0)
        programs = {
            "v1": [mov0, insn.jmp_imm("jeq", 0, 0, 0), insn.exit_()],
            "v2": [mov0, insn.jmp_imm("jlt", 0, 1, 0), insn.exit_()],
            "v3": [mov0, insn.jmp32_imm("jlt", 0, 1, 0), insn.exit_()],
            "v4": [
                mov0,
                insn.Insn(0, 0xBF, 0, 0, 8, 0),  # r0 = (s8) r0          (movsx)
                insn.Insn(0, 0x37, 0, 0, 1, 1),  # r0 s/= 1              (sdiv)
                insn.Insn(0, 0xD7, 0, 0, 0, 16),  # r0 = bswap16 r0      (bswap)
                insn.Insn(0, 0x06, 0, 0, 0, 0),  # gotol +0              (ja with a 32-bit offset)
                insn.exit_(),
            ],
        }
        out: dict[str, Finding] = {}
        for version, program in programs.items():
            fd, err, log = self._load("socket_filter", insn.assemble(program, _BYTEORDER))
            out[version] = self._program_finding(fd, err, log)
        return out

    def probe_extended_atomics(self) -> Finding:
        """The atomics beyond the v1 add (fetch, and/or/xor, xchg, cmpxchg; Linux 5.12): a fetch-and-add on the
        stack."""
        program = [
            insn.st_mem("DW", 10, -8, 0),
            insn.mov64_imm(0, 1),
            insn.atomic("DW", "fetch_add", 10, 0, -8),
            insn.exit_(),
        ]
        fd, err, log = self._load("socket_filter", insn.assemble(program, _BYTEORDER))
        return self._program_finding(fd, err, log)

    def probe_bounded_loops(self) -> Finding:
        """A loop with a back-edge the verifier can bound (Linux 5.3)."""
        program = [
            insn.mov64_imm(0, 0),
            insn.alu64_imm("add", 0, 1),
            insn.jmp_imm("jlt", 0, 4, -2),
            insn.mov64_imm(0, 0),
            insn.exit_(),
        ]
        fd, err, log = self._load("socket_filter", insn.assemble(program, _BYTEORDER))
        return self._program_finding(fd, err, log)

    def probe_large_programs(self) -> Finding:
        """More than 4096 instructions (BPF_MAXINSNS) for a privileged loader (Linux 5.2); E2BIG before."""
        code = insn.assemble([insn.mov64_imm(0, 0)] * 4097 + [insn.exit_()], _BYTEORDER)
        fd, err, _ = self._load("socket_filter", code, log=False)
        if fd >= 0:
            return Finding(AVAILABLE)
        if err == errno.E2BIG:
            return Finding(UNSUPPORTED, "E2BIG")
        return Finding(INCONCLUSIVE, _errno_name(err))

    @staticmethod
    def _program_finding(fd: int, err: int, log: str) -> Finding:
        """For a program that is valid wherever its feature exists: a verifier rejection means unsupported."""
        if fd >= 0:
            return Finding(AVAILABLE)
        if log.strip() and err in (errno.EINVAL, errno.EACCES):
            return Finding(UNSUPPORTED, _evidence(err, log))
        return Finding(INCONCLUSIVE, _evidence(err, log))


def _minimal_btf() -> bytes:
    """Raw BTF with one type, `int` (id 1): the key and value type of the local-storage map probes."""
    strings = b"\0int\0"
    types = struct.pack("=IIII", 1, 1 << 24, 4, (1 << 24) | 32)  # INT "int", size 4, signed, 32 bits
    header = struct.pack("=HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return header + types + strings


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_kconfig(release: str, paths: Iterable[str] = ()) -> tuple[str | None, dict[str, str]]:
    """A kernel's configuration: (source path or None, {CONFIG_X: value}) from the first readable of `paths`,
    /proc/config.gz and /boot/config-<release>."""
    for path in (*paths, "/proc/config.gz", f"/boot/config-{release}"):
        try:
            if path.endswith(".gz"):
                import gzip  # only when asked for kconfig: its import costs ~0.1 s under TCG

                with gzip.open(path, "rt") as gz:
                    text = gz.read()
            else:
                with open(path) as f:
                    text = f.read()
        except OSError:
            continue
        values = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.startswith("CONFIG_"):
                values[key] = value.strip('"')
        return path, values
    return None, {}


def system_facts() -> dict[str, Any]:
    """Release, machine, BTF presence, JIT state and the unprivileged-BPF setting."""
    uname = os.uname()
    return {
        "release": uname.release,
        "machine": uname.machine,
        "btf": os.path.exists("/sys/kernel/btf/vmlinux"),
        "bpf_jit_enable": _read_int("/proc/sys/net/core/bpf_jit_enable"),
        "unprivileged_bpf_disabled": _read_int("/proc/sys/kernel/unprivileged_bpf_disabled"),
    }


# Bytes that follow the 12-byte btf_type header, per kind (kind -> (fixed, per vlen entry)).
_BTF_EXTRA = {
    1: (4, 0),
    3: (12, 0),
    4: (0, 12),
    5: (0, 12),
    6: (0, 8),
    13: (0, 8),
    14: (4, 0),
    15: (0, 12),
    17: (4, 0),
    19: (0, 12),
}
_BTF_FUNC, _BTF_DECL_TAG = 12, 17


def probe_kfuncs(names: Iterable[str], path: str = "/sys/kernel/btf/vmlinux") -> dict[str, Finding]:
    """kfunc presence from the kernel's BTF: a FUNC of that name tagged "bpf_kfunc" is available; no FUNC of
    that name is unsupported; an untagged FUNC is inconclusive unless the kernel tags its kfuncs at all."""
    wanted = list(names)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {n: Finding(INCONCLUSIVE, f"no readable kernel BTF at {path}") for n in wanted}
    order = {b"\x9f\xeb": "<", b"\xeb\x9f": ">"}.get(data[:2])
    if order is None or len(data) < 24:
        return {n: Finding(INCONCLUSIVE, f"{path} is not BTF") for n in wanted}
    hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(order + "IIIII", data, 4)
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    offsets: dict[int, str] = {}
    for name in [*wanted, "bpf_kfunc"]:
        at = strings.find(b"\0" + name.encode() + b"\0")
        if at >= 0:
            offsets[at + 1] = name
    funcs: dict[int, str] = {}  # type id -> wanted name
    tagged: set[int] = set()
    pos, end, type_id = hdr_len + type_off, hdr_len + type_off + type_len, 1
    try:
        while pos < end:
            name_off, info, size_or_type = struct.unpack_from(order + "III", data, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind == _BTF_FUNC and name_off in offsets:
                funcs[type_id] = offsets[name_off]
            elif kind == _BTF_DECL_TAG and offsets.get(name_off) == "bpf_kfunc":
                tagged.add(size_or_type)
            fixed, per = _BTF_EXTRA.get(kind, (0, 0))
            pos += 12 + fixed + per * vlen
            type_id += 1
    except struct.error:
        return {n: Finding(INCONCLUSIVE, f"{path}: truncated BTF") for n in wanted}
    out: dict[str, Finding] = {}
    for name in wanted:
        ids = [i for i, n in funcs.items() if n == name]
        if any(i in tagged for i in ids):
            out[name] = Finding(AVAILABLE)
        elif not ids:
            out[name] = Finding(UNSUPPORTED, "no function of this name in the kernel's BTF")
        elif tagged:
            out[name] = Finding(UNSUPPORTED, "a kernel function, but not tagged bpf_kfunc")
        else:
            out[name] = Finding(INCONCLUSIVE, "a kernel function; this kernel's BTF does not tag kfuncs")
    return out


def _split(findings: dict[str, Finding]) -> dict[str, Any]:
    """One program type's helper findings: available and not-allowed name lists, evidence for the rest (an
    id inside the kernel's table that the verifier calls missing contradicts helper_count: inconclusive)."""
    return {
        AVAILABLE: sorted(n for n, f in findings.items() if f.status == AVAILABLE),
        NOT_ALLOWED: sorted(n for n, f in findings.items() if f.status == NOT_ALLOWED),
        INCONCLUSIVE: {n: f.evidence for n, f in findings.items() if f.status in (INCONCLUSIVE, UNSUPPORTED)},
    }


_UNKNOWN = Finding(UNSUPPORTED, "not a program type bpfcert knows")


class _Stopwatch:
    """Seconds spent per probe section, for probe_stats."""

    def __init__(self) -> None:
        self.started = self.last = time.monotonic()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.last, 3)
        self.last = now

    def total(self) -> float:
        return round(time.monotonic() - self.started, 3)


def probe_kernel(
    helper_prog_types: Iterable[str] = HELPER_PROG_TYPES,
    kconfig: Iterable[str] = (),
    kfuncs: Iterable[str] = (),
) -> dict[str, Any]:
    """Every probe on the running kernel, as JSON. `kconfig` names CONFIG_ keys to report; `kfuncs` names
    kfuncs to look up in the kernel's BTF (a scan that costs too much to do unasked under TCG)."""
    clock = _Stopwatch()
    prober = Prober()
    facts = system_facts()
    prog_types = {name: prober.probe_prog_type(name) for name in bpf.PROG_TYPES[1:]}
    clock.lap("prog_types")
    map_types = _probe_map_types(prober)
    clock.lap("map_types")
    attach_types = _probe_attach_types(prober, prog_types)
    link_types = {name: prober.probe_link_type(name).to_json() for name in LINK_PROBES}
    helpers = _probe_helpers(prober, prog_types, helper_prog_types)
    clock.lap("helpers")
    out: dict[str, Any] = {
        "system": facts,
        "prog_types": {k: v.to_json() for k, v in prog_types.items()},
        "map_types": {k: v.to_json() for k, v in map_types.items()},
        "attach_types": attach_types,
        "link_types": link_types,
        "helpers": helpers,
        "isa": {k: v.to_json() for k, v in prober.probe_isa().items()},
        "bounded_loops": prober.probe_bounded_loops().to_json(),
        "large_programs": prober.probe_large_programs().to_json(),
        "kconfig": _kconfig_values(facts["release"], list(kconfig)),
    }
    clock.lap("isa_and_limits")
    names = list(kfuncs)
    if names:
        out["kfuncs"] = {k: v.to_json() for k, v in probe_kfuncs(names).items()}
        clock.lap("kfuncs")
    out["probe_stats"] = {"loads": prober.loads, "seconds": clock.total(), "sections": clock.laps}
    return out


def _probe_map_types(prober: Prober) -> dict[str, Finding]:
    """Every map type, with a minimal BTF loaded for the types that need one (none if the kernel refuses it)."""
    try:
        btf_fd = bpf.btf_load(_minimal_btf())
    except bpf.BpfSyscallError:
        btf_fd = -1
    try:
        return {name: prober.probe_map_type(name, btf_fd) for name in bpf.MAP_TYPES[1:]}
    finally:
        if btf_fd >= 0:
            bpf.close(btf_fd)


def _probe_attach_types(prober: Prober, prog_types: dict[str, Finding]) -> dict[str, dict[str, str]]:
    """The load-time attach types of each available program type that has them."""
    return {
        prog_type: {a: prober.probe_attach_type(prog_type, a).status for a in attaches}
        for prog_type, attaches in ATTACH_TYPES_AT_LOAD.items()
        if prog_types[prog_type].status == AVAILABLE
    }


def _probe_helpers(prober: Prober, prog_types: dict[str, Finding], wanted: Iterable[str]) -> dict[str, Any]:
    """Every helper of the kernel's table for each `wanted` program type it has, why the others were skipped,
    and the helpers bpfcert knows past the end of the kernel's table."""
    findings = {t: prog_types.get(t, _UNKNOWN) for t in dict.fromkeys(wanted)}
    probed = [t for t, f in findings.items() if f.status == AVAILABLE]
    skipped = {
        t: ": ".join(filter(None, [f"program type {f.status}", f.evidence]))
        for t, f in findings.items()
        if f.status != AVAILABLE
    }
    known = prober.helper_count()
    return {
        "probed_prog_types": probed,
        "skipped_prog_types": skipped,
        "missing": [f"bpf_{name}" for name in bpf.HELPER_NAMES[known:]],
        "by_prog_type": {
            t: _split({f"bpf_{bpf.HELPER_NAMES[i]}": prober.probe_helper(t, i) for i in range(1, known)})
            for t in probed
        },
    }


def _kconfig_values(release: str, keys: list[str]) -> dict[str, Any]:
    """The asked-for CONFIG_ keys from the running kernel's config, and where it was read (nothing read if none)."""
    source, config = read_kconfig(release) if keys else (None, {})
    return {"source": source, "values": {k: config.get(k) for k in keys}}
