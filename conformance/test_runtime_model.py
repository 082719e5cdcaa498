"""RT-MDL-001, once per target: random sequences of install, upgrade, rollback, uninstall and bad-package operations
through the runtime under test keep the kernel's state equal to the model (bpfcert.checks.runtime_model).
tests/test_runtime_model.py shows it failing on a runtime whose uninstall leaks a pin.

The `runtime` fixture (the selected runner, started on the target) comes from the bpfcert pytest plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bpfcert.checks.runtime_model import Package, rt_mdl_001
from bpfcert.results import Result, Status
from bpfcert.runners.client import RunnerClient
from bpfcert.targets.target import Target


def _bad_digest(manifest: dict[str, Any], root: Path) -> None:
    manifest["artifacts"][0]["sha256"] = "0" * 64


def test_rt_mdl_001_kernel_state_follows_the_model(
    runtime: RunnerClient,
    target: Target,
    make_package: Callable[..., Any],
    record: Callable[[Result | Iterable[Result]], list[Result]],
    examples: Path,
) -> None:
    bad = Package.read(make_package("socket-filter", _bad_digest, refresh=False))
    result = rt_mdl_001(
        runtime,
        target,
        upgrades=[Package.read(examples / "xdp-counter-v1"), Package.read(examples / "xdp-counter-v2")],
        others=[Package.read(examples / "socket-filter")],
        bad=[bad],
    )
    record(result)
    assert result.status == Status.PASS, f"RT-MDL-001: {result.message}"
