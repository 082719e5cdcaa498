"""Portability prediction: does a package run on a target, given that target's probe findings?

The verdict comes from the code (`code_needs`: what the package's objects use, per bpfcert.usage) and the
kconfig the manifest declares (which no code shows); `predict` says what the manifest's `requires` alone would
predict, and `manifest_disagreements` where `requires` and the code differ. Each unmet need becomes a reason
naming the feature (and its first kernel where known); a need the findings cannot decide (an inconclusive
probe, helpers of a program type that was not probed, no readable kconfig) goes to "unknown" and never counts
as met or unmet. Host side only: never imported by the guest agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bpfcert.knowledge.kernel import (
    KernelVersion,
    KernelVersionError,
    format_version,
    parse_requirement,
    parse_version,
    satisfies,
)

if TYPE_CHECKING:
    from bpfcert.package import Package

# Program types whose programs attach through the kernel's BTF (fentry/fexit/fmod_ret/tp_btf/iter, LSM, struct_ops).
BTF_PROG_TYPES = ("tracing", "lsm", "struct_ops")
# Linux architectures (`uname -m`) that run big-endian: their kernels take bpfeb objects, the others bpfel. libbpf
# refuses an object of the other byte order (LIBBPF_ERRNO__ENDIAN).
BIG_ENDIAN_MACHINES = frozenset({"s390x", "s390", "ppc64", "ppc", "mips", "mips64", "sparc64", "parisc", "m68k"})


def byte_order_reason(arches: list[str], machine: str) -> str | None:
    """Why objects of byte orders `arches` ("bpfel", "bpfeb") cannot load on a kernel of `machine`, or None (also
    when the machine is not known)."""
    if not machine:
        return None
    wanted = "bpfeb" if machine in BIG_ENDIAN_MACHINES else "bpfel"
    wrong = sorted(set(arches) - {wanted})
    if not wrong:
        return None
    return f"{'/'.join(wrong)} objects do not load on a {machine} kernel, which takes {wanted}"


def _status(group: dict[str, Any], name: str) -> tuple[str, str]:
    entry = group.get(name)
    if not isinstance(entry, dict):
        return "inconclusive", "not probed"
    return str(entry.get("status")), str(entry.get("evidence", ""))


def _check_types(kind: str, wanted: list[str], found: dict[str, Any], reasons: list[str], unknown: list[str]) -> None:
    for name in wanted:
        status, evidence = _status(found, name)
        detail = f" ({evidence})" if evidence else ""
        if status == "unsupported":
            reasons.append(f"{kind} {name} is not supported by this kernel{detail}")
        elif status != "available":
            unknown.append(f"{kind} {name}: {status}{detail}")


def _helper_findings(findings: dict[str, Any]) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """(helpers missing from the kernel, {program type: its helper groups}) from any JSON."""
    helpers = _object(findings.get("helpers"))
    by_type = {t: g for t, g in _object(helpers.get("by_prog_type")).items() if isinstance(g, dict)}
    return set(_names(helpers.get("missing"))), by_type


def _helper_status(group: dict[str, Any], name: str) -> tuple[str, str]:
    """available, not_allowed or inconclusive (with evidence) for one program type's helper groups."""
    if name in _names(group.get("available")):
        return "available", ""
    if name in _names(group.get("not_allowed")):
        return "not_allowed", ""
    return "inconclusive", str(_object(group.get("inconclusive")).get(name, "not probed"))


def _check_helpers(
    helpers: list[str],
    prog_types: list[str],
    findings: dict[str, Any],
    reasons: list[str],
    unknown: list[str],
) -> None:
    """The manifest does not say which program calls which helper: one program type that has it is enough."""
    missing, by_type = _helper_findings(findings)
    probed = [t for t in dict.fromkeys(prog_types) if t in by_type]
    for helper in helpers:
        if helper in missing:
            reasons.append(f"helper {helper} is missing from this kernel")
            continue
        if not probed:
            unknown.append(f"helper {helper}: none of the program types {prog_types} had its helpers probed")
            continue
        statuses = {t: _helper_status(by_type[t], helper)[0] for t in probed}
        if all(s == "not_allowed" for s in statuses.values()):
            reasons.append(f"helper {helper} is not allowed for program type(s) {', '.join(probed)}")
        elif "available" not in statuses.values():
            unknown.append(f"helper {helper}: not probed as available for {', '.join(probed)}")


def _kconfig_satisfied(required: str, actual: str | None) -> bool:
    if required == "n":
        return actual in (None, "n")
    return actual == required or (required == "m" and actual == "y")


def _check_kconfig(kconfig: dict[str, Any], findings: dict[str, Any], reasons: list[str], unknown: list[str]) -> None:
    config = _object(findings.get("kconfig"))
    if kconfig and not config.get("source"):
        unknown.append("kconfig: the kernel's configuration is not readable on this target")
    elif kconfig:
        values = _object(config.get("values"))
        for key, required in kconfig.items():
            actual = values.get(key)
            if not _kconfig_satisfied(str(required), actual):
                reasons.append(f"{key}={required} required, kernel has {key}={actual or 'not set'}")


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def predict(manifest: dict[str, Any], findings: dict[str, Any], target: str | None = None) -> dict[str, Any]:
    """{"target", "meets", "reasons", "unknown"}: whether `manifest`'s requires hold on the probed kernel.

    Works on any JSON: fields of the wrong type (which schema validation reports) are treated as absent."""
    system = _object(findings.get("system"))
    release = str(system.get("release", ""))
    requires = _object(manifest.get("requires"))
    reasons: list[str] = []
    unknown: list[str] = []

    kernel = requires.get("kernel")
    if isinstance(kernel, str):
        try:
            inside = satisfies(parse_version(release), kernel)
        except KernelVersionError as exc:
            unknown.append(f"requires.kernel: {exc}")
        else:
            if not inside:
                reasons.append(f"kernel {release} is outside requires.kernel {kernel!r}")
    if requires.get("btf") is True and not system.get("btf"):
        reasons.append("requires.btf is true but the kernel has no /sys/kernel/btf/vmlinux")

    prog_types = _names(requires.get("prog_types"))
    programs = manifest.get("programs")
    program_types = _names([_object(p).get("type") for p in programs] if isinstance(programs, list) else [])
    _check_types("program type", prog_types, _object(findings.get("prog_types")), reasons, unknown)
    _check_types("map type", _names(requires.get("map_types")), _object(findings.get("map_types")), reasons, unknown)
    _check_helpers(_names(requires.get("helpers")), program_types or prog_types, findings, reasons, unknown)
    _check_types("kfunc", _names(requires.get("kfuncs")), _object(findings.get("kfuncs")), reasons, unknown)
    _check_kconfig(_object(requires.get("kconfig")), findings, reasons, unknown)
    artifacts = manifest.get("artifacts")
    elf = [_object(a) for a in artifacts if _object(a).get("kind") == "elf"] if isinstance(artifacts, list) else []
    wrong_order = byte_order_reason([str(a.get("arch", "bpfel")) for a in elf], str(system.get("machine", "")))
    if wrong_order:
        reasons.append(wrong_order)
    return {"target": target or release, "meets": not reasons, "reasons": reasons, "unknown": unknown}


@dataclass(frozen=True)
class CodeNeeds:
    """What a package's objects use, as bpfcert.usage finds it: the input of `predict_code`."""

    source: str  # the package as the user named it
    name: str | None
    version: str | None
    prog_types: tuple[str, ...]
    map_types: tuple[str, ...]
    helpers: dict[str, tuple[str, ...]]  # helper -> the program types whose programs call it
    kfuncs: tuple[str, ...]
    btf: tuple[str, ...]  # why the code needs the kernel's BTF (empty: it does not)
    min_kernel: tuple[int, int]
    min_kernel_reasons: tuple[str, ...]
    arches: tuple[str, ...] = ("bpfel",)  # the objects' byte orders

    def to_json(self) -> dict[str, Any]:
        return {
            "prog_types": list(self.prog_types),
            "map_types": list(self.map_types),
            "helpers": {h: list(types) for h, types in self.helpers.items()},
            "kfuncs": list(self.kfuncs),
            "btf": list(self.btf),
            "min_kernel": format_version(self.min_kernel),
            "min_kernel_reasons": list(self.min_kernel_reasons),
        }


def code_needs(pkg: Package) -> CodeNeeds:
    """What the package's declared artifacts use; PackageError when there is no code to predict from (no
    artifact listed, or one that does not load: `bpfcert check` says why)."""
    from bpfcert.checks.artifacts import load_artifacts
    from bpfcert.errors import PackageError

    manifest = _object(pkg.manifest)
    listed = manifest.get("artifacts")
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    if not entries:
        raise PackageError(f"{pkg.source}: the manifest lists no artifacts, so there is no code to predict from")
    if any(not isinstance(e.get("path"), str) for e in entries):
        raise PackageError(f"{pkg.source}: an artifact has no path (run `bpfcert check` for details)")
    artifacts = load_artifacts(pkg, {"artifacts": entries})
    for art in artifacts:
        if art.failure is not None:
            req_id, why = art.failure
            raise PackageError(f"cannot predict from the code of {art.name}: {why} ({req_id})")
    helpers: dict[str, set[str]] = {}
    prog_types: set[str] = set()
    map_types: set[str] = set()
    kfuncs: set[str] = set()
    btf: set[str] = set()
    floors: list[tuple[tuple[int, int], tuple[str, ...]]] = []
    arches: set[str] = set()
    for art in artifacts:
        usage, obj = art.usage, art.obj
        assert obj is not None
        arches.add(obj.arch)
        prog_types |= usage.prog_types
        map_types |= usage.map_types
        kfuncs |= usage.kfuncs
        for prog in usage.programs:
            for helper in prog.helpers:
                helpers.setdefault(helper, set()).add(prog.prog_type or "unknown")
            if prog.prog_type in BTF_PROG_TYPES:
                btf.add(f"program type {prog.prog_type} ({prog.section})")
        if usage.kfuncs:
            btf.add("kfunc calls")
        if obj.btf_ext is not None and any(obj.btf_ext.core_relos.values()):
            btf.add("CO-RE relocations")
        floors.append((usage.min_kernel, tuple(usage.min_kernel_reasons)))
    min_kernel = max(v for v, _ in floors)
    reasons = sorted({r for v, rs in floors if v == min_kernel for r in rs})
    return CodeNeeds(
        source=str(pkg.source),
        name=manifest.get("name") if isinstance(manifest.get("name"), str) else None,
        version=manifest.get("version") if isinstance(manifest.get("version"), str) else None,
        prog_types=tuple(sorted(prog_types)),
        map_types=tuple(sorted(map_types)),
        helpers={h: tuple(sorted(types)) for h, types in sorted(helpers.items())},
        kfuncs=tuple(sorted(kfuncs)),
        btf=tuple(sorted(btf)),
        min_kernel=min_kernel,
        min_kernel_reasons=tuple(reasons),
        arches=tuple(sorted(arches)),
    )


def _since(kind: str, name: str) -> tuple[int, int] | None:
    """The first kernel of a program type, map type or helper, from bpfcert.knowledge."""
    from bpfcert.knowledge.helpers import helper_by_name
    from bpfcert.knowledge.map_types import map_type_by_name
    from bpfcert.knowledge.prog_types import prog_type_by_name

    lookup = {"program type": prog_type_by_name, "map type": map_type_by_name, "helper": helper_by_name}[kind]
    known = lookup(name)
    return known.since if known is not None else None


def _named(kind: str, name: str, since: tuple[int, int] | None) -> str:
    return f"{kind} {name} ({format_version(since)})" if since else f"{kind} {name}"


_NONE: KernelVersion = (0, 0)  # the first kernel of an unmet need that has none (it sorts last)


def predict_code(
    needs: CodeNeeds, findings: dict[str, Any], target: str | None = None, kconfig: dict[str, Any] | None = None
) -> dict[str, Any]:
    """{"target", "meets", "limiting", "reasons", "unknown"}: whether the code (and the declared `kconfig`)
    runs on the probed kernel. Reasons come newest feature first; `limiting` is the first.

    The probes decide for what they probe (a helper a distribution backported counts as there); the code's
    kernel floor decides only when it is set by something no probe sees (instructions, context fields...).
    Works on any JSON findings."""
    system = _object(findings.get("system"))
    release = str(system.get("release", ""))
    unmet: list[tuple[KernelVersion, str]] = []  # (first kernel or (0, 0), reason), for the order
    unknown: list[str] = []
    _unmet_types(needs, findings, unmet, unknown)
    _unmet_helpers(needs, findings, unmet, unknown)
    _unmet_kfuncs(needs, findings, unmet, unknown)
    if needs.btf and system.get("btf") is False:
        unmet.append((_NONE, f"kernel BTF (/sys/kernel/btf/vmlinux) missing, needed for {', '.join(needs.btf)}"))
    _unmet_floor(needs, release, unmet, unknown)
    wrong_order = byte_order_reason(list(needs.arches), str(system.get("machine", "")))
    if wrong_order:
        unmet.append((_NONE, wrong_order))
    kconfig_reasons: list[str] = []
    _check_kconfig(_object(kconfig), findings, kconfig_reasons, unknown)
    unmet.extend((_NONE, text) for text in kconfig_reasons)
    ordered = [text for _, text in sorted(unmet, key=lambda r: r[0], reverse=True)]
    return {
        "target": target or release,
        "meets": not ordered,
        "limiting": ordered[0] if ordered else None,
        "reasons": ordered,
        "unknown": unknown,
    }


def _unmet_types(
    needs: CodeNeeds, findings: dict[str, Any], unmet: list[tuple[KernelVersion, str]], unknown: list[str]
) -> None:
    """The program and map types the code uses that the kernel lacks, or that the findings leave open."""
    for kind, names, key in (
        ("program type", needs.prog_types, "prog_types"),
        ("map type", needs.map_types, "map_types"),
    ):
        for name in names:
            status, evidence = _status(_object(findings.get(key)), name)
            detail = f" ({evidence})" if evidence else ""
            since = _since(kind, name)
            if status == "unsupported":
                unmet.append((since or _NONE, f"{_named(kind, name, since)} missing from this kernel{detail}"))
            elif status != "available":
                unknown.append(f"{kind} {name}: {status}{detail}")


def _unmet_helpers(
    needs: CodeNeeds, findings: dict[str, Any], unmet: list[tuple[KernelVersion, str]], unknown: list[str]
) -> None:
    """Helpers missing from the kernel, or not allowed for a program type whose programs call them."""
    missing, by_type = _helper_findings(findings)
    for helper, types in needs.helpers.items():
        since = _since("helper", helper)
        if helper in missing:
            unmet.append((since or _NONE, f"{_named('helper', helper, since)} missing from this kernel"))
            continue
        for prog_type in types:
            status, evidence = _helper_status(by_type.get(prog_type, {}), helper)
            if prog_type not in by_type:
                unknown.append(f"helper {helper}: not probed for program type {prog_type}")
            elif status == "not_allowed":
                unmet.append((_NONE, f"helper {helper} not allowed for program type {prog_type}"))
            elif status != "available":
                unknown.append(f"helper {helper} for program type {prog_type}: inconclusive ({evidence})")


def _unmet_kfuncs(
    needs: CodeNeeds, findings: dict[str, Any], unmet: list[tuple[KernelVersion, str]], unknown: list[str]
) -> None:
    for kfunc in needs.kfuncs:
        status, evidence = _status(_object(findings.get("kfuncs")), kfunc)
        if status == "unsupported":
            unmet.append((_NONE, f"kfunc {kfunc} missing from this kernel" + (f" ({evidence})" if evidence else "")))
        elif status != "available":
            unknown.append(f"kfunc {kfunc}: {evidence or status}")


def _unmet_floor(needs: CodeNeeds, release: str, unmet: list[tuple[KernelVersion, str]], unknown: list[str]) -> None:
    """The code's kernel floor against the release, when something no probe sees sets that floor."""
    probed_floor = max(
        (s for kind, names in _probed_features(needs) for n in names if (s := _since(kind, n)) is not None),
        default=_NONE,
    )
    if needs.min_kernel <= probed_floor:
        return
    try:
        version = parse_version(release)
    except KernelVersionError as exc:
        unknown.append(f"kernel floor {format_version(needs.min_kernel)}: {exc}")
        return
    if version < needs.min_kernel:
        floor = format_version(needs.min_kernel)
        why = "; ".join(needs.min_kernel_reasons)
        unmet.append((needs.min_kernel, f"kernel {format_version(version)} is older than {floor}: {why}"))


def _probed_features(needs: CodeNeeds) -> list[tuple[str, tuple[str, ...]]]:
    return [("program type", needs.prog_types), ("map type", needs.map_types), ("helper", tuple(needs.helpers))]


def manifest_disagreements(needs: CodeNeeds, manifest: dict[str, Any]) -> list[str]:
    """Where the manifest's `requires` says something else than the code: names it leaves out, names the code
    does not use, a kernel floor below the code's, btf not true for code that needs it. Works on any JSON."""
    requires = _object(manifest.get("requires"))
    used = {
        "prog_types": ("program type", set(needs.prog_types)),
        "map_types": ("map type", set(needs.map_types)),
        "helpers": ("helper", set(needs.helpers)),
        "kfuncs": ("kfunc", {k for k in needs.kfuncs if not k.startswith("btf_id:")}),
    }
    out: list[str] = []
    for key, (kind, names) in used.items():
        unlisted = sorted(names - set(_names(requires.get(key))))
        if unlisted:
            out.append(f"the code uses {kind} {', '.join(unlisted)}, which requires.{key} does not list")
    for key, (_, names) in used.items():
        unused = sorted(set(_names(requires.get(key))) - names)
        if unused:
            out.append(f"requires.{key} lists {', '.join(unused)}, which the code does not use")
    kernel, floor = requires.get("kernel"), format_version(needs.min_kernel)
    if not isinstance(kernel, str):
        out.append(f"requires.kernel is missing; the code needs >={floor}")
    else:
        try:
            declared = parse_requirement(kernel)
        except KernelVersionError as exc:
            out.append(f"requires.kernel {kernel!r}: {exc}")
        else:
            if declared < needs.min_kernel:
                why = "; ".join(needs.min_kernel_reasons)
                out.append(
                    f"requires.kernel {kernel!r} admits {format_version(declared)}, older than the {floor} the code "
                    f"needs ({why})"
                )
    if needs.btf and requires.get("btf") is not True:
        out.append(f"requires.btf is not true, but the code needs the kernel's BTF ({', '.join(needs.btf)})")
    return out


def table(rows: list[tuple[str, dict[str, str]]], targets: list[str]) -> list[str]:
    """A package x target table: one row per package (label, {target: cell}), columns padded to fit."""
    header = ["package", *targets]
    lines = [header, *([label, *(cells.get(t, "-") for t in targets)] for label, cells in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]


def cell(prediction: dict[str, Any]) -> str:
    """A table cell: "yes", "yes (2 unknown)", or "no — <limiting feature>" (with how many more reasons)."""
    if prediction["meets"]:
        count = len(prediction["unknown"])
        return f"yes ({count} unknown)" if count else "yes"
    more = len(prediction["reasons"]) - 1
    return f"no — {prediction['limiting']}" + (f" (+{more} more)" if more else "")
