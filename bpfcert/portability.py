"""Portability prediction: does a package's `requires` hold on a target, given its probe findings?

Each unmet requirement becomes a reason naming the feature and the probe's evidence; a requirement the
findings cannot decide (an inconclusive probe, helpers of a program type that was not probed, no readable
kconfig) goes to "unknown" and never counts as met or unmet.
"""

from __future__ import annotations

from typing import Any

from bpfcert.knowledge.kernel import KernelVersionError, parse_version, satisfies


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


def _check_helpers(
    helpers: list[str],
    prog_types: list[str],
    findings: dict[str, Any],
    reasons: list[str],
    unknown: list[str],
) -> None:
    by_type = (findings.get("helpers") or {}).get("by_prog_type") or {}
    probed = [t for t in dict.fromkeys(prog_types) if t in by_type]
    if helpers and not probed:
        unknown.append(f"helpers: none of the program types {prog_types} had its helpers probed")
        return
    for helper in helpers:
        short = helper.removeprefix("bpf_")
        statuses = {t: _helper_status(by_type[t], short) for t in probed}
        if statuses and all(s == "unsupported" for s in statuses.values()):
            reasons.append(f"helper {helper} is not available to program type(s) {', '.join(probed)}")
        elif not any(s == "available" for s in statuses.values()):
            unknown.append(f"helper {helper}: not probed as available for {', '.join(probed)}")


def _helper_status(group: dict[str, Any], name: str) -> str:
    if name in group.get("available", ()):
        return "available"
    if name in group.get("unsupported", ()):
        return "unsupported"
    return "inconclusive"


def _kconfig_satisfied(required: str, actual: str | None) -> bool:
    if required == "n":
        return actual in (None, "n")
    return actual == required or (required == "m" and actual == "y")


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

    kconfig = _object(requires.get("kconfig"))
    config = _object(findings.get("kconfig"))
    if kconfig and not config.get("source"):
        unknown.append("kconfig: the kernel's configuration is not readable on this target")
    elif kconfig:
        values = _object(config.get("values"))
        for key, required in kconfig.items():
            actual = values.get(key)
            if not _kconfig_satisfied(str(required), actual):
                reasons.append(f"{key}={required} required, kernel has {key}={actual or 'not set'}")

    return {"target": target or release, "meets": not reasons, "reasons": reasons, "unknown": unknown}
