"""The kernel profile, once per target: KRN-BOOT-001 (boots, agent answers) and KRN-SPLAT-001 (no splat while
the suite runs; checked after every other test)."""

from __future__ import annotations

import pytest

from bpfcert.targets import Target


def test_krn_boot_001_target_answers(target: Target) -> None:
    """KRN-BOOT-001: the target booted within the boot timeout (else the fixture errors) and answers."""
    assert target.call("hello")["release"] == target.info()["release"]


@pytest.mark.after_all
def test_krn_splat_001_no_kernel_splat(target: Target) -> None:
    """KRN-SPLAT-001: no BUG, WARNING, Oops, KASAN or Call Trace on the kernel while the suite ran on it."""
    splats = target.splats()
    assert not splats, f"KRN-SPLAT-001: {target.name} printed {len(splats)} splat line(s), first: {splats[0]}"
