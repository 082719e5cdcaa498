"""The first kernel version of every feature the probes answer for, from bpfcert.knowledge, and the findings
a kernel's own version contradicts (as cilium/ebpf's feature tests do).

The probes run stdlib-only in the guest, so versions are attached here, on the host, when the findings come
back. Only conclusive answers count: a feature reported unsupported on a kernel at or after its first version
is a false skip (a probe that fails to see what is there); one reported available before it means the
knowledge table is wrong; an inconclusive answer (EPERM under lockdown...) says nothing about the version. A
program or map type that also needs a kernel option (bpfcert.knowledge's KCONFIG) counts as missing only
where the findings' kconfig shows that option on, one that needs the kernel's own BTF (NEEDS_KERNEL_BTF) only
where the kernel has it, and one that needs a JIT (NEEDS_JIT) only where the kernel has one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from bpfcert.knowledge import attach, features, map_types, prog_types
from bpfcert.knowledge.helpers import HELPERS
from bpfcert.knowledge.kernel import KernelVersion, format_version, parse_version
from bpfcert.knowledge.map_types import map_type_by_name
from bpfcert.knowledge.prog_types import KCONFIG, prog_type_by_name
from bpfcert.targets.probes import AVAILABLE, UNSUPPORTED


class Feature(NamedTuple):
    """One probed feature: its path in the findings ("map_types.arena"), first version, status, evidence, the
    kernel option it also needs, if any, and whether it needs the kernel's own BTF, or a JIT."""

    name: str
    since: KernelVersion
    status: str
    evidence: str = ""
    kconfig: str = ""
    needs_btf: bool = False
    needs_jit: bool = False


def _since(found: Any, what: str) -> KernelVersion:
    if found is None:
        raise KeyError(f"bpfcert.knowledge has no first version for {what}")
    since: KernelVersion = found.since
    return since


def features_of(findings: dict[str, Any]) -> list[Feature]:
    """Every feature in a probe's findings with its first version; KeyError for one bpfcert.knowledge lacks."""
    out: list[Feature] = []
    for name, found in findings["prog_types"].items():
        since = _since(prog_type_by_name(name), f"program type {name}")
        kconfig, needs_btf = KCONFIG.get(name, ""), name in prog_types.NEEDS_KERNEL_BTF
        evidence, jit = found.get("evidence", ""), name in prog_types.NEEDS_JIT
        out.append(Feature(f"prog_types.{name}", since, found["status"], evidence, kconfig, needs_btf, jit))
    for name, found in findings["map_types"].items():
        since = _since(map_type_by_name(name), f"map type {name}")
        kconfig, needs_btf = map_types.KCONFIG.get(name, ""), name in map_types.NEEDS_KERNEL_BTF
        evidence, jit = found.get("evidence", ""), name in map_types.NEEDS_JIT
        out.append(Feature(f"map_types.{name}", since, found["status"], evidence, kconfig, needs_btf, jit))
    for prog_type, statuses in findings["attach_types"].items():
        for name, status in statuses.items():
            out.append(Feature(f"attach_types.{prog_type}.{name}", attach.ATTACH_TYPES_SINCE[name], status))
    for name, found in findings["link_types"].items():
        out.append(
            Feature(f"link_types.{name}", attach.LINK_TYPES_SINCE[name], found["status"], found.get("evidence", ""))
        )
    missing = set(findings["helpers"]["missing"])
    for helper in HELPERS:
        status = UNSUPPORTED if helper.name in missing else AVAILABLE
        out.append(Feature(f"helpers.{helper.name}", helper.since, status))
    for version, found in findings["isa"].items():
        since = features.CPU_VERSION_SINCE[int(version.removeprefix("v"))]
        out.append(Feature(f"isa.{version}", since, found["status"], found.get("evidence", "")))
    for name, since in (("bounded_loops", features.BOUNDED_LOOPS), ("large_programs", features.LARGE_PROGRAMS)):
        found = findings[name]
        out.append(Feature(name, since, found["status"], found.get("evidence", "")))
    return out


def contradictions(findings: dict[str, Any]) -> list[str]:
    """The features whose status the kernel's version contradicts, one line each (empty: none)."""
    release = findings["system"]["release"]
    version = parse_version(release)
    kconfig = (findings.get("kconfig") or {}).get("values") or {}
    system = findings["system"]
    no_btf = system.get("btf") is False
    no_jit = "bpf_jit_enable" in system and system["bpf_jit_enable"] is None  # no net.core.bpf_jit_enable
    out: list[str] = []
    for feature in features_of(findings):
        since = format_version(feature.since)
        evidence = f" ({feature.evidence})" if feature.evidence else ""
        if feature.status == AVAILABLE and version < feature.since:
            out.append(f"{feature.name}: available on {release}, before {since}, its first version in knowledge/")
        elif feature.status == UNSUPPORTED and version >= feature.since:
            if feature.kconfig and kconfig.get(feature.kconfig) not in ("y", "m"):
                continue  # the option may be off: the kernel may lack the feature
            if feature.needs_btf and no_btf:
                continue  # refused for want of the kernel's BTF, which it lacks
            if feature.needs_jit and no_jit:
                continue  # refused for want of a JIT, which the kernel lacks
            out.append(f"{feature.name}: {feature.status} on {release}, though it arrived in {since}{evidence}")
    return out
