"""Kernel checks, once per target: KRN-BOOT-001 (the target opens and its agent answers) and KRN-SPLAT-001
(the kernel printed no splat). They take a target, not a package, so they are not in the package registry."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpfcert.checks.registry import result
from bpfcert.errors import TargetError
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.targets import Target


def krn_boot_001(name: str, opened: Target | TargetError) -> Result:
    """KRN-BOOT-001: `opened` is what opening target `name` gave: the target, or the error that stopped it."""
    if isinstance(opened, TargetError):
        evidence = {"kind": opened.kind, "console_tail": opened.console.splitlines()}
        return result("KRN-BOOT-001", Status.FAIL, str(opened), target=name, evidence=evidence)
    info = opened.info()
    evidence = info.to_json()
    try:
        release = opened.call("hello")["release"]
    except TargetError as exc:
        message = f"booted but its agent does not answer: {exc}"
        return result("KRN-BOOT-001", Status.FAIL, message, target=name, evidence=evidence)
    if release != info.release:
        message = f"answers as {release}, expected {info.release}"
        return result("KRN-BOOT-001", Status.FAIL, message, target=name, evidence=evidence)
    how = f" in {info.boot_seconds:.2f} s ({info.accel})" if info.boot_seconds else ""
    return result("KRN-BOOT-001", Status.PASS, f"{release} answers{how}", target=name, evidence=evidence)


def krn_splat_001(target: Target) -> Result:
    """KRN-SPLAT-001: no BUG, WARNING, Oops, KASAN or Call Trace line on the target's kernel so far."""
    splats = target.splats()
    if splats:
        message = f"the kernel printed {len(splats)} splat line(s), first: {splats[0]}"
        return result("KRN-SPLAT-001", Status.FAIL, message, target=target.name, evidence={"splat_lines": splats})
    return result("KRN-SPLAT-001", Status.PASS, "no kernel splat", target=target.name)
