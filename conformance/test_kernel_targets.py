"""The kernel profile, once per target: KRN-BOOT-001 (boots, agent answers) and KRN-SPLAT-001 (no splat while
the suite runs; checked after every other test). The checks are bpfcert.checks.kernel; tests/test_targets_faults
shows each failing on a real kernel."""

from __future__ import annotations

import pytest

from bpfcert.checks.kernel import krn_boot_001, krn_splat_001
from bpfcert.errors import TargetError
from bpfcert.results import Status
from bpfcert.targets.target import Target


def test_krn_boot_001_target_boots_and_answers(target_outcome: tuple[str, Target | TargetError]) -> None:
    result = krn_boot_001(*target_outcome)
    assert result.status == Status.PASS, f"KRN-BOOT-001: {result.message}"


@pytest.mark.after_all
def test_krn_splat_001_no_kernel_splat(target: Target) -> None:
    result = krn_splat_001(target)
    assert result.status == Status.PASS, f"KRN-SPLAT-001: {result.message}"
