"""bpfcert.feature_since: every probed feature has a first version in bpfcert.knowledge, and a kernel's version
contradicts a feature missing at or after it, or present before it (the VM test runs this on each kernel)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from bpfcert.feature_since import contradictions, features_of
from bpfcert.knowledge.kernel import parse_version
from bpfcert.knowledge.prog_types import KCONFIG
from bpfcert.targets import bpf, probes


def consistent(release: str) -> dict[str, Any]:
    """Findings of every probe for a kernel that has exactly what bpfcert.knowledge says it has."""
    version = parse_version(release)
    by_since = {f.name: f.since for f in features_of(_everything("available"))}

    def status(name: str) -> str:
        return "available" if by_since[name] <= version else "unsupported"

    findings = _everything("available")
    for kind in ("prog_types", "map_types", "link_types", "isa"):
        findings[kind] = {n: {"status": status(f"{kind}.{n}")} for n in findings[kind]}
    findings["attach_types"] = {
        p: {a: status(f"attach_types.{p}.{a}") for a in attaches} for p, attaches in findings["attach_types"].items()
    }
    findings["helpers"]["missing"] = [
        f"bpf_{n}" for n in bpf.HELPER_NAMES[1:] if status(f"helpers.bpf_{n}") != "available"
    ]
    findings["system"]["release"] = release
    return findings


def _everything(status: str) -> dict[str, Any]:
    return {
        "system": {"release": "7.2.0"},
        "prog_types": {n: {"status": status} for n in bpf.PROG_TYPES[1:]},
        "map_types": {n: {"status": status} for n in bpf.MAP_TYPES[1:]},
        "attach_types": {p: dict.fromkeys(a, status) for p, a in probes.ATTACH_TYPES_AT_LOAD.items()},
        "link_types": {n: {"status": status} for n in probes.LINK_PROBES},
        "helpers": {"missing": []},
        "isa": {v: {"status": status} for v in ("v1", "v2", "v3", "v4")},
        "bounded_loops": {"status": status},
        "large_programs": {"status": status},
        "kconfig": {"source": None, "values": {}},
    }


def test_every_probed_feature_has_a_first_version() -> None:
    names = {f.name for f in features_of(_everything("available"))}
    assert len(names) == (
        len(bpf.PROG_TYPES)
        - 1
        + len(bpf.MAP_TYPES)
        - 1
        + sum(map(len, probes.ATTACH_TYPES_AT_LOAD.values()))
        + len(probes.LINK_PROBES)
        + len(bpf.HELPER_NAMES)
        - 1
        + 4
        + 2
    )
    assert {"map_types.arena", "helpers.bpf_loop", "isa.v4", "link_types.tcx", "bounded_loops"} <= names
    assert "attach_types.cgroup_sock_addr.cgroup_unix_connect" in names


def test_a_probe_without_a_first_version_is_an_error() -> None:
    findings = _everything("available")
    findings["link_types"]["netkit"] = {"status": "available"}
    with pytest.raises(KeyError, match="netkit"):
        features_of(findings)


@pytest.mark.parametrize("release", ["5.10.0-46-cloud-amd64", "6.1.0", "6.12.118+deb13", "7.2.13"])
def test_findings_that_follow_the_knowledge_tables_contradict_nothing(release: str) -> None:
    assert contradictions(consistent(release)) == []


def test_a_feature_missing_at_or_after_its_version_is_a_false_skip() -> None:
    findings = consistent("6.1.0-57-cloud-amd64")
    findings["map_types"]["bloom_filter"] = {"status": "unsupported", "evidence": "EINVAL"}
    findings["attach_types"]["cgroup_sockopt"]["cgroup_getsockopt"] = "unsupported"
    findings["prog_types"]["lsm"] = {"status": "inconclusive", "evidence": "EPERM"}  # says nothing of the version
    findings["helpers"]["missing"].append("bpf_loop")
    assert contradictions(findings) == [
        "map_types.bloom_filter: unsupported on 6.1.0-57-cloud-amd64, though it arrived in 5.16 (EINVAL)",
        "attach_types.cgroup_sockopt.cgroup_getsockopt: unsupported on 6.1.0-57-cloud-amd64, though it arrived in 5.3",
        "helpers.bpf_loop: unsupported on 6.1.0-57-cloud-amd64, though it arrived in 5.17",
    ]


def test_a_feature_present_before_its_version_is_a_finding() -> None:
    findings = consistent("5.10.0")
    findings["isa"]["v4"] = {"status": "available"}
    findings["link_types"]["perf_event"] = {"status": "available"}
    findings["helpers"]["missing"].remove("bpf_loop")
    assert contradictions(findings) == [
        "link_types.perf_event: available on 5.10.0, before 5.15, its first version in knowledge/",
        "helpers.bpf_loop: available on 5.10.0, before 5.17, its first version in knowledge/",
        "isa.v4: available on 5.10.0, before 6.6, its first version in knowledge/",
    ]


def test_a_type_behind_a_kernel_option_is_missing_only_where_the_option_is_on() -> None:
    findings = consistent("6.12.0")
    findings["prog_types"]["lirc_mode2"] = {"status": "unsupported", "evidence": "EINVAL"}
    assert contradictions(findings) == []  # the config is unknown
    findings["kconfig"] = {"source": "/boot/config-6.12.0", "values": {"CONFIG_BPF_LIRC_MODE2": None}}
    assert contradictions(findings) == []
    findings["kconfig"]["values"]["CONFIG_BPF_LIRC_MODE2"] = "y"
    assert contradictions(findings) == [
        "prog_types.lirc_mode2: unsupported on 6.12.0, though it arrived in 4.18 (EINVAL)"
    ]


def test_a_type_needing_the_kernels_btf_is_missing_only_where_the_kernel_has_btf() -> None:
    """Debian's s390x 6.1 has no vmlinux BTF: it refuses tracing programs and struct_ops maps, and has no
    inode_storage maps without CONFIG_BPF_LSM (which needs a JIT it lacks)."""
    findings = consistent("6.1.0")
    for kind, name in (("prog_types", "tracing"), ("map_types", "struct_ops"), ("map_types", "inode_storage")):
        findings[kind][name] = {"status": "unsupported", "evidence": "EINVAL"}
    findings["kconfig"] = {"source": "/boot/config-6.1.0", "values": {"CONFIG_BPF_LSM": None}}
    findings["system"]["btf"] = False
    assert contradictions(findings) == []
    findings["system"]["btf"] = True
    findings["kconfig"]["values"]["CONFIG_BPF_LSM"] = "y"
    assert contradictions(findings) == [
        "prog_types.tracing: unsupported on 6.1.0, though it arrived in 5.5 (EINVAL)",
        "map_types.struct_ops: unsupported on 6.1.0, though it arrived in 5.6 (EINVAL)",
        "map_types.inode_storage: unsupported on 6.1.0, though it arrived in 5.10 (EINVAL)",
    ]


def test_a_type_needing_a_jit_is_missing_only_where_the_kernel_has_one() -> None:
    """Debian's s390x kernels have no JIT (no net.core.bpf_jit_enable): no extension programs, no struct_ops."""
    findings = consistent("6.12.0")
    for kind, name in (("prog_types", "ext"), ("prog_types", "struct_ops"), ("map_types", "struct_ops")):
        findings[kind][name] = {"status": "unsupported", "evidence": "EINVAL"}
    findings["system"] |= {"btf": True, "bpf_jit_enable": None}
    assert contradictions(findings) == []
    findings["system"]["bpf_jit_enable"] = 1
    assert [line.split(":")[0] for line in contradictions(findings)] == [
        "prog_types.struct_ops",
        "prog_types.ext",
        "map_types.struct_ops",
    ]


@pytest.mark.skipif(os.geteuid() != 0, reason="feature probes load programs: they need root")
def test_the_host_kernel_contradicts_nothing() -> None:
    findings = probes.probe_kernel(kconfig=sorted(KCONFIG.values()))
    assert contradictions(findings) == []
