"""Kernel checks, once per target: KRN-BOOT-001 (the target opens and its agent answers) and KRN-SPLAT-001
(the kernel printed no splat). They take a target, not a package, so they are not in the package registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.errors import TargetError
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.targets import Target

CONSOLE_EVIDENCE_LINES = 20


def _result(req_id: str, name: str, status: Status, message: str, evidence: dict[str, Any]) -> Result:
    return Result(req_id, status, message, level=spec.requirement(req_id).level, target=name, evidence=evidence)


def krn_boot_001(name: str, opened: Target | TargetError) -> Result:
    """KRN-BOOT-001: `opened` is what opening target `name` gave: the target, or the error that stopped it."""
    if isinstance(opened, TargetError):
        tail = opened.console.splitlines()[-CONSOLE_EVIDENCE_LINES:]
        evidence = {"kind": opened.kind, "console_tail": tail}
        return _result("KRN-BOOT-001", name, Status.FAIL, str(opened), evidence)
    info = opened.info()
    try:
        release = opened.call("hello")["release"]
    except TargetError as exc:
        return _result("KRN-BOOT-001", name, Status.FAIL, f"booted but its agent does not answer: {exc}", info)
    if release != info["release"]:
        return _result("KRN-BOOT-001", name, Status.FAIL, f"answers as {release}, expected {info['release']}", info)
    seconds = getattr(opened, "boot_seconds", 0.0)
    how = f" in {seconds:.2f} s ({info['accel']})" if seconds else ""
    return _result("KRN-BOOT-001", name, Status.PASS, f"{release} answers{how}", {**info, "boot_seconds": seconds})


def krn_splat_001(target: Target) -> Result:
    """KRN-SPLAT-001: no BUG, WARNING, Oops, KASAN or Call Trace line on the target's kernel so far."""
    splats = target.splats()
    if splats:
        return _result(
            "KRN-SPLAT-001",
            target.name,
            Status.FAIL,
            f"the kernel printed {len(splats)} splat line(s), first: {splats[0]}",
            {"splat_lines": splats},
        )
    return _result("KRN-SPLAT-001", target.name, Status.PASS, "no kernel splat", {})
