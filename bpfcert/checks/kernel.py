"""Kernel checks, once per target: KRN-BOOT-001 (the target opens and its agent answers) and KRN-SPLAT-001
(the kernel printed no splat). They take a target, not a package, so they are not in the package registry."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from bpfcert.errors import TargetError
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.targets.target import Target


def krn_boot_001(name: str, opened: Target | TargetError) -> Result:
    """KRN-BOOT-001: `opened` is what opening target `name` gave: the target, or the error that stopped it."""
    row = partial(Result.of, "KRN-BOOT-001", target=name)
    if isinstance(opened, TargetError):
        evidence = {"kind": opened.kind, "console_tail": opened.console.splitlines()}
        return row(Status.FAIL, str(opened), evidence=evidence)
    info = opened.info()
    evidence = info.to_json()
    try:
        release = opened.call("hello")["release"]
    except TargetError as exc:
        return row(Status.FAIL, f"booted but its agent does not answer: {exc}", evidence=evidence)
    if release != info.release:
        return row(Status.FAIL, f"answers as {release}, expected {info.release}", evidence=evidence)
    how = f" in {info.boot_seconds:.2f} s ({info.accel})" if info.boot_seconds else ""
    return row(Status.PASS, f"{release} answers{how}", evidence=evidence)


def krn_splat_001(target: Target) -> Result:
    """KRN-SPLAT-001: no BUG, WARNING, Oops, KASAN or Call Trace line on the target's kernel so far."""
    row = partial(Result.of, "KRN-SPLAT-001", target=target.name)
    splats = target.splats()
    if splats:
        message = f"the kernel printed {len(splats)} splat line(s), first: {splats[0]}"
        return row(Status.FAIL, message, evidence={"splat_lines": splats})
    return row(Status.PASS, "no kernel splat")
