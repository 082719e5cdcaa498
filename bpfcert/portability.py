"""Portability prediction: does a package's `requires` hold on a target, given its probe findings?

Each unmet requirement becomes a reason naming the feature and the probe's evidence; a requirement the
findings cannot decide (an inconclusive probe, helpers of a program type that was not probed, no readable
kconfig) goes to "unknown" and never counts as met or unmet.
"""

from __future__ import annotations

import re
from typing import Any

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_COMPARATOR = re.compile(r"\s*(>=|<=|==|=|>|<)?\s*(\d+(?:\.\d+){0,2})\s*")


def kernel_version(release: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a kernel release such as "6.1.0-56-cloud-amd64" or "6.12.118+deb13-cloud"."""
    m = _VERSION.match(release)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)


def kernel_range_reason(spec: str, release: str) -> str | None:
    """Why `release` is outside the range `spec` (">=5.10", ">=5.10, <7.0"), or None when inside it.

    Each bound compares at its own precision; ValueError when `spec` or `release` cannot be read."""
    version = kernel_version(release)
    if version is None:
        raise ValueError(f"kernel release {release!r} has no version number")
    compact = re.sub(r"(>=|<=|==|=|>|<)\s+", r"\1", spec.strip())
    for part in (p for p in re.split(r"[,\s]+", compact) if p):
        m = _COMPARATOR.fullmatch(part)
        if m is None:
            raise ValueError(f"requires.kernel {spec!r} is not a version range")
        op, bound_text = m.group(1) or ">=", m.group(2)
        # Compare at the bound's precision: "<=6.1" admits 6.1.90, "=6.1" means the 6.1 series.
        bound = tuple(int(x) for x in bound_text.split("."))
        have = version[: len(bound)]
        ok = {
            ">=": have >= bound,
            "<=": have <= bound,
            ">": have > bound,
            "<": have < bound,
            "==": have == bound,
            "=": have == bound,
        }[op]
        if not ok:
            return f"kernel {release} is outside requires.kernel {spec!r} (fails {op}{bound_text})"
    return None


def _status(group: dict[str, Any], name: str) -> tuple[str, str]:
    entry = group.get(name)
    if not isinstance(entry, dict):
        return "inconclusive", "not probed"
    return str(entry.get("status")), str(entry.get("evidence", ""))


def _check_types(
    kind: str, wanted: list[str], found: dict[str, Any], reasons: list[str], unknown: list[str]
) -> None:
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


def predict(manifest: dict[str, Any], findings: dict[str, Any], target: str | None = None) -> dict[str, Any]:
    """{"target", "meets", "reasons", "unknown"}: whether `manifest`'s requires hold on the probed kernel."""
    system = findings.get("system") or {}
    release = str(system.get("release", ""))
    requires = manifest.get("requires") or {}
    reasons: list[str] = []
    unknown: list[str] = []

    kernel = requires.get("kernel")
    if isinstance(kernel, str):
        try:
            why = kernel_range_reason(kernel, release)
        except ValueError as exc:
            unknown.append(str(exc))
        else:
            if why:
                reasons.append(why)
    if requires.get("btf") is True and not system.get("btf"):
        reasons.append("requires.btf is true but the kernel has no /sys/kernel/btf/vmlinux")

    prog_types = [str(t) for t in requires.get("prog_types") or []]
    program_types = [
        str(p["type"]) for p in manifest.get("programs") or [] if isinstance(p, dict) and "type" in p
    ]
    _check_types("program type", prog_types, findings.get("prog_types") or {}, reasons, unknown)
    _check_types(
        "map type",
        [str(t) for t in requires.get("map_types") or []],
        findings.get("map_types") or {},
        reasons,
        unknown,
    )
    _check_helpers(
        [str(h) for h in requires.get("helpers") or []],
        program_types or prog_types,
        findings,
        reasons,
        unknown,
    )

    kfuncs = [str(k) for k in requires.get("kfuncs") or []]
    _check_types("kfunc", kfuncs, findings.get("kfuncs") or {}, reasons, unknown)

    kconfig = requires.get("kconfig") or {}
    config = findings.get("kconfig") or {}
    if kconfig and not config.get("source"):
        unknown.append("kconfig: the kernel's configuration is not readable on this target")
    elif kconfig:
        values = config.get("values") or {}
        for key, required in kconfig.items():
            actual = values.get(key)
            if not _kconfig_satisfied(str(required), actual):
                reasons.append(f"{key}={required} required, kernel has {key}={actual or 'not set'}")

    return {"target": target or release, "meets": not reasons, "reasons": reasons, "unknown": unknown}
