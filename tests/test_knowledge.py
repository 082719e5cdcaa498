"""Knowledge tables: helpers against a live kernel, prog/map types, SEC() names, versions (the enum values
themselves are bpfcert.uapi, checked against the UAPI header in test_uapi)."""

from __future__ import annotations

import ctypes
import json
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfcert import insn as bi
from bpfcert.errors import BpfcertError
from bpfcert.knowledge import features, kernel
from bpfcert.knowledge.helpers import HELPERS, LAST_ID, helper_by_id, helper_by_name
from bpfcert.knowledge.map_types import MAP_TYPES, map_type_by_name, map_type_by_value
from bpfcert.knowledge.prog_types import PROG_TYPES, prog_type_by_name, prog_type_by_value
from bpfcert.knowledge.sections import SECTION_DEFS, classify_section

SCHEMA = Path(__file__).resolve().parent.parent / "spec" / "package.schema.json"


def schema_enum(definition: str) -> list[str]:
    enum: list[str] = json.loads(SCHEMA.read_text())["$defs"][definition]["enum"]
    return enum


# ---- helpers -------------------------------------------------------------------------------------


def test_helper_ids_are_contiguous_and_end_at_cgrp_storage() -> None:
    assert [h.id for h in HELPERS] == list(range(1, LAST_ID + 1))
    assert LAST_ID == 211
    assert [h.name for h in HELPERS[-2:]] == ["bpf_cgrp_storage_get", "bpf_cgrp_storage_delete"]


def test_helper_versions_never_go_back_as_ids_grow() -> None:
    """Ids are appended as helpers merge, so a helper cannot be older than one with a smaller id."""
    newest = (0, 0)
    for h in HELPERS:
        assert (3, 19) <= h.since <= (6, 2), h
        assert h.since >= newest, f"{h.name} ({h.since}) predates an earlier id ({newest})"
        newest = h.since


def test_helper_lookups() -> None:
    assert helper_by_id(1) == helper_by_name("bpf_map_lookup_elem") == helper_by_name("map_lookup_elem")
    assert helper_by_id(0) is None and helper_by_id(LAST_ID + 1) is None and helper_by_id(-1) is None
    assert helper_by_name("bpf_no_such_helper") is None
    ringbuf_output = helper_by_name("bpf_ringbuf_output")
    assert ringbuf_output is not None and ringbuf_output.since == (5, 8) and not ringbuf_output.gpl_only
    probe_read_kernel = helper_by_name("bpf_probe_read_kernel")
    assert probe_read_kernel is not None and probe_read_kernel.gpl_only
    assert {h.gpl_source for h in HELPERS} == {"P", "S"}


# The probe behind the gpl_only column: call the helper from a tiny program under a non-GPL licence and read
# the verifier log. (prog_type, expected_attach_type) pairs tried in turn until one offers the helper.
PROBE_TYPES = [(1, 0), (2, 0), (3, 0), (6, 0), (5, 0), (7, 0), (17, 0), (8, 0), (9, 2), (10, 0), (12, 0),
               (13, 0), (14, 0), (16, 0), (18, 10), (19, 0), (21, 0), (22, 0), (23, 0), (25, 21), (15, 0),
               (30, 36)]  # fmt: skip
BPF_PROG_LOAD, NR_BPF_X86_64 = 5, 321


def load_program(prog_type: int, attach_type: int, code: bytes, license: str) -> tuple[int, str]:
    """BPF_PROG_LOAD through the raw syscall: (fd or -1, verifier log)."""
    libc = ctypes.CDLL(None, use_errno=True)
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(1 << 16)
    attr = bytearray(128)
    struct.pack_into(
        "<IIQQIIQ", attr, 0, prog_type, len(code) // 8, ctypes.addressof(insns), ctypes.addressof(lic), 1,
        len(log), ctypes.addressof(log),
    )  # fmt: skip
    struct.pack_into("<I", attr, 68, attach_type)
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    fd = libc.syscall(NR_BPF_X86_64, BPF_PROG_LOAD, buf, len(attr))
    if fd >= 0:
        os.close(fd)
    return fd, log.value.decode(errors="replace")


def probe_gpl_only(helper_id: int) -> bool | None:
    """True/False when some program type offers the helper, None when none does here."""
    code = bi.assemble(
        [*(bi.mov64_imm(r, 0) for r in range(1, 6)), bi.call(helper_id), bi.mov64_imm(0, 0), bi.exit_()]
    )
    for prog_type, attach_type in PROBE_TYPES:
        fd, log = load_program(prog_type, attach_type, code, "Proprietary")
        if "cannot call GPL-restricted function" in log:
            return True
        if fd >= 0 or (log and "cannot use helper" not in log and "unknown func" not in log):
            return False
    return None


def bpf_usable() -> bool:
    if os.uname().machine != "x86_64" or os.geteuid() != 0:
        return False
    return load_program(1, 0, bi.assemble([bi.mov64_imm(0, 0), bi.exit_()]), "GPL")[0] >= 0


@pytest.mark.skipif(not bpf_usable(), reason="needs root, x86_64 and a working bpf() syscall")
def test_gpl_only_flags_match_the_live_kernel() -> None:
    conclusive = 0
    for h in HELPERS:
        verdict = probe_gpl_only(h.id)
        if verdict is not None:
            conclusive += 1
            assert verdict == h.gpl_only, f"{h.name}: kernel says gpl_only={verdict}, table {h.gpl_only}"
    probed = sum(h.gpl_source == "P" for h in HELPERS)
    assert conclusive >= probed * 0.9  # a kernel older than the table may lack a few helpers


# ---- program and map types -----------------------------------------------------------------------


def test_prog_types_are_contiguous_monotone_and_in_the_schema() -> None:
    assert [p.value for p in PROG_TYPES] == list(range(1, len(PROG_TYPES) + 1))
    assert [p.since for p in PROG_TYPES] == sorted(p.since for p in PROG_TYPES)
    assert [p.name for p in PROG_TYPES] == schema_enum("progType")


def test_map_types_are_contiguous_monotone_and_in_the_schema() -> None:
    assert [m.value for m in MAP_TYPES] == list(range(1, len(MAP_TYPES) + 1))
    assert [m.since for m in MAP_TYPES] == sorted(m.since for m in MAP_TYPES)
    assert [m.name for m in MAP_TYPES] == schema_enum("mapType")


@pytest.mark.parametrize(
    ("alias", "name"),
    [("per_cpu_array", "percpu_array"), ("ring_buf", "ringbuf"), ("BPF_MAP_TYPE_LRU_HASH", "lru_hash"),
     ("dev_map", "devmap"), ("cgroup_storage_deprecated", "cgroup_storage")],
)  # fmt: skip
def test_map_type_aliases(alias: str, name: str) -> None:
    found = map_type_by_name(alias)
    assert found is not None and found.name == name


@pytest.mark.parametrize(
    ("alias", "name"),
    [("tc", "sched_cls"), ("BPF_PROG_TYPE_SCHED_CLS", "sched_cls"), ("fentry", "tracing"),
     ("uprobe", "kprobe"), ("socket", "socket_filter")],
)  # fmt: skip
def test_prog_type_aliases(alias: str, name: str) -> None:
    found = prog_type_by_name(alias)
    assert found is not None and found.name == name


def test_lookup_by_value() -> None:
    assert prog_type_by_value(6) == prog_type_by_name("xdp")
    assert map_type_by_value(27) == map_type_by_name("ringbuf")
    assert prog_type_by_value(0) is None and map_type_by_value(10_000) is None
    assert prog_type_by_name("nonsense") is None


# ---- SEC() names ---------------------------------------------------------------------------------

SECTIONS = [
    ("xdp", "xdp", "xdp", None, False),
    ("xdp.frags", "xdp", "xdp", None, False),
    ("xdp/devmap", "xdp", "xdp_devmap", None, False),
    ("tc", "sched_cls", None, None, False),
    ("classifier", "sched_cls", None, None, False),
    ("tcx/ingress", "sched_cls", "tcx_ingress", None, False),
    ("socket", "socket_filter", None, None, False),
    ("kprobe/do_unlinkat", "kprobe", None, "do_unlinkat", False),
    ("kretprobe/tcp_v4_connect", "kprobe", None, "tcp_v4_connect", False),
    ("kprobe", "kprobe", None, None, False),
    ("kprobe.multi/tcp_*", "kprobe", "trace_kprobe_multi", "tcp_*", False),
    ("uprobe//usr/lib/libc.so.6:malloc", "kprobe", None, "/usr/lib/libc.so.6:malloc", False),
    ("uprobe.s//bin/bash:readline", "kprobe", None, "/bin/bash:readline", True),
    ("usdt/libc:setjmp", "kprobe", None, "libc:setjmp", False),
    ("tp/syscalls/sys_enter_openat", "tracepoint", None, "syscalls/sys_enter_openat", False),
    ("tracepoint/sched/sched_switch", "tracepoint", None, "sched/sched_switch", False),
    ("raw_tp/sys_enter", "raw_tracepoint", None, "sys_enter", False),
    ("tp_btf/sched_switch", "tracing", "trace_raw_tp", "sched_switch", False),
    ("fentry/do_exit", "tracing", "trace_fentry", "do_exit", False),
    ("fexit.s/do_sys_open", "tracing", "trace_fexit", "do_sys_open", True),
    ("fmod_ret/security_x", "tracing", "modify_return", "security_x", False),
    ("iter/task", "tracing", "trace_iter", "task", False),
    ("lsm/file_open", "lsm", "lsm_mac", "file_open", False),
    ("lsm.s/bprm_committed_creds", "lsm", "lsm_mac", "bprm_committed_creds", True),
    ("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", None, False),
    ("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", None, False),
    ("cgroup/dev", "cgroup_device", "cgroup_device", None, False),
    ("sockops", "sock_ops", "cgroup_sock_ops", None, False),
    ("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", None, False),
    ("sk_lookup", "sk_lookup", "sk_lookup", None, False),
    ("struct_ops/tcp_ca_init", "struct_ops", None, "tcp_ca_init", False),
    ("syscall", "syscall", None, None, True),
    ("freplace/handler", "ext", None, "handler", False),
    ("netfilter", "netfilter", "netfilter", None, False),
]


@pytest.mark.parametrize(
    ("section", "prog_type", "attach", "target", "sleepable"), SECTIONS, ids=[s[0] for s in SECTIONS]
)
def test_classify_section(
    section: str, prog_type: str, attach: str | None, target: str | None, sleepable: bool
) -> None:
    info = classify_section(section)
    assert info is not None
    assert (info.prog_type, info.attach_type, info.attach_target, info.sleepable) == (
        prog_type,
        attach,
        target,
        sleepable,
    )


@pytest.mark.parametrize(
    "section",
    ["xdp_prog", "socket1", "kprobe__do_exit", "kprobe.multix/foo", "tcx", "maps", ".text", "xdpx", ""],
)
def test_sections_outside_libbpf_conventions(section: str) -> None:
    assert classify_section(section) is None


def test_section_table_uses_known_types() -> None:
    attach_types = set(schema_enum("attachType"))
    for d in SECTION_DEFS:
        assert (
            prog_type_by_name(d.prog_type) is not None and prog_type_by_name(d.prog_type).name == d.prog_type
        )  # type: ignore[union-attr]
        assert d.attach_type is None or d.attach_type in attach_types, d
    assert len({d.pattern for d in SECTION_DEFS}) == len(SECTION_DEFS)


@given(st.text(max_size=40))
def test_classify_never_raises_and_matches_on_word_boundaries(section: str) -> None:
    info = classify_section(section)
    if info is not None:
        word = info.pattern.removesuffix("+")
        assert section == word or (info.pattern.endswith("+") and section.startswith(word + "/"))


# ---- kernel versions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("release", "version"),
    [("5.10.0-30-cloud-amd64", (5, 10)), ("6.1", (6, 1)), ("6.12.9+deb13-amd64", (6, 12)), ("7.2.0", (7, 2)),
     ("v4.19.306", (4, 19)), ("6.18.0-rc3", (6, 18))],
)  # fmt: skip
def test_parse_version(release: str, version: tuple[int, int]) -> None:
    assert kernel.parse_version(release) == version


@pytest.mark.parametrize("bad", ["", "linux", "5", "5.x", "five.ten", "5.10 extra words"])
def test_bad_versions_raise_a_typed_error(bad: str) -> None:
    with pytest.raises(kernel.KernelVersionError, match="not a kernel version"):
        kernel.parse_version(bad)
    assert issubclass(kernel.KernelVersionError, BpfcertError)


def test_requirements() -> None:
    assert kernel.parse_requirement(">=5.10") == (5, 10)
    assert kernel.parse_requirement(">= 5.8, <7") == (5, 8)
    assert kernel.parse_requirement("<7") == (0, 0)
    assert kernel.satisfies((6, 1), ">=5.10,<7") and not kernel.satisfies((7, 2), ">=5.10,<7")
    assert not kernel.satisfies((5, 4), ">=5.10")
    for bad in ["5.10", "=>5.10", ">=5.10,", "~5"]:
        with pytest.raises(kernel.KernelVersionError):
            kernel.parse_requirement(bad)


@given(st.integers(0, 99), st.integers(0, 99))
def test_format_round_trips(major: int, minor: int) -> None:
    assert kernel.parse_version(kernel.format_version((major, minor))) == (major, minor)
    assert kernel.parse_requirement(kernel.format_requirement((major, minor))) == (major, minor)


def test_feature_versions_are_ordered() -> None:
    cpu = features.CPU_VERSION_SINCE
    assert cpu[1] < cpu[2] < cpu[3] < features.EXTENDED_ATOMICS < cpu[4]
    assert features.BPF_SYSCALL < features.BPF_TO_BPF_CALLS < features.GLOBAL_DATA < features.KFUNC_CALLS


# ---- context fields ---------------------------------------------------------------------------------------------


def test_context_field_offsets_and_sizes_match_the_uapi_header() -> None:
    """Every row against /usr/include/linux/bpf.h, through offsetof/sizeof in static assertions clang checks."""
    import shutil
    import subprocess

    from bpfcert.knowledge.context_fields import CONTEXT_FIELDS

    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    lines = ["#include <stddef.h>", "#include <linux/bpf.h>"]
    for f in CONTEXT_FIELDS:
        lines.append(f'_Static_assert(offsetof(struct {f.struct}, {f.field}) == {f.offset}, "{f.name} offset");')
        lines.append(f'_Static_assert(sizeof(((struct {f.struct} *)0)->{f.field}) == {f.size}, "{f.name} size");')
    cmd = ["clang", "-fsyntax-only", "-x", "c", "-I", "/usr/include/x86_64-linux-gnu", "-"]
    done = subprocess.run(cmd, input="\n".join(lines), text=True, capture_output=True)
    assert done.returncode == 0, done.stderr


def test_context_fields_are_known_types_and_never_older_than_their_struct() -> None:
    from bpfcert.knowledge.context_fields import CONTEXT_FIELDS, CONTEXT_STRUCTS, context_field

    for prog_type, ctx_struct in CONTEXT_STRUCTS.items():
        pt = prog_type_by_name(prog_type)
        assert pt is not None and pt.name == prog_type
        assert any(f.struct == ctx_struct for f in CONTEXT_FIELDS)
    first = {}
    for f in CONTEXT_FIELDS:
        first.setdefault(f.struct, f.since)
        assert f.since >= first[f.struct], f  # the first field of each struct came with it
        assert f.source
    egress = context_field("xdp", 21)  # a narrow load inside the field
    assert egress is not None and (egress.name, egress.since) == ("xdp_md.egress_ifindex", (5, 8))
    assert context_field("xdp", 24) is None and context_field("kprobe", 0) is None
    cb = context_field("sched_cls", 52)  # cb[1]
    assert cb is not None and cb.name == "__sk_buff.cb"
