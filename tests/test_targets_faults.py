"""Fault injection on a real guest (5.10, the fastest to boot): panic, hang, OOM and an agent killed mid-op
each become a classified TargetError within its timeout, with the console tail; QEMU and virtiofsd are
reaped; with map_targets the other targets keep their results."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfcert.targets as targets
from bpfcert.errors import TargetError
from bpfcert.targets import kernels, vm

pytestmark = pytest.mark.vm
SERIES = "5.10"
OP_TIMEOUT = 8.0
SLACK = 15.0  # for the guest to finish dying and for QEMU to be reaped, on a loaded 2-core machine


@pytest.fixture
def boot_faulty() -> Iterator[vm.VmTarget]:
    reason = vm.missing_tools()
    if reason:
        pytest.skip(reason)
    if SERIES not in kernels.cached_kernels():
        pytest.skip(f"kernel {SERIES} not cached; run `bpfcert kernels fetch {SERIES}`")
    target = vm.boot(SERIES, "tcg", faults=True, op_timeout=OP_TIMEOUT)
    yield target
    target.close()


def inject(target: vm.VmTarget, kind: str) -> tuple[TargetError, float]:
    pids = target.pids
    started = time.monotonic()
    with pytest.raises(TargetError) as err:
        target.call("fault", kind=kind)
    elapsed = time.monotonic() - started
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} was not reaped after the {kind} fault"
    with pytest.raises(TargetError, match="down after an earlier fault"):
        target.call("hello")
    return err.value, elapsed


@pytest.mark.parametrize(
    ("kind", "classified", "console_has"),
    [
        ("panic", "panic", "Kernel panic"),
        ("hang", "timeout", ""),
        ("die", "agent-died", "bpfcert-init: agent exited with status 137"),
        ("oom", "oom", "Out of memory"),
    ],
)
def test_fault_is_classified_within_its_timeout(
    boot_faulty: vm.VmTarget, kind: str, classified: str, console_has: str
) -> None:
    error, elapsed = inject(boot_faulty, kind)
    assert error.kind == classified, str(error)
    assert elapsed < OP_TIMEOUT + SLACK
    assert console_has in error.console
    assert str(error).startswith(f"{SERIES}: {classified}:") and "\n" not in str(error)
    if kind == "hang":
        assert elapsed >= OP_TIMEOUT and f"within {OP_TIMEOUT:.0f}s" in str(error)


def test_whole_vm_timeout_bounds_an_operation() -> None:
    reason = vm.missing_tools()
    if reason or SERIES not in kernels.cached_kernels():
        pytest.skip(reason or f"kernel {SERIES} not cached")
    target = vm.VmTarget(kernels.cached_kernel(SERIES), faults=True, op_timeout=600.0, vm_timeout=120.0)
    try:
        target.boot("tcg")
        target.vm_timeout = 0.0  # what is left of the whole-VM budget is read at each call
        started = time.monotonic()
        with pytest.raises(TargetError, match="whole-VM timeout") as err:
            target.call("fault", kind="hang")
        assert err.value.kind == "timeout" and time.monotonic() - started < SLACK
    finally:
        target.close()


def test_map_targets_keeps_the_healthy_targets_results() -> None:
    reason = vm.missing_tools()
    cached = kernels.cached_kernels()
    if reason or SERIES not in cached or "6.1" not in cached:
        pytest.skip(reason or "kernels 5.10 and 6.1 must be cached (`bpfcert kernels fetch 5.10 6.1`)")

    def panic_on_5_10(t: targets.Target) -> str:
        if t.name == SERIES:
            t.call("fault", kind="panic")
        return str(t.call("hello")["release"])

    results = targets.map_targets(
        ["host", SERIES, "6.1"], panic_on_5_10, accel="tcg", progress=False, faults=True
    )
    assert results["host"] == os.uname().release
    assert results["6.1"] == cached["6.1"].release
    failed = results[SERIES]
    assert isinstance(failed, TargetError) and failed.kind == "panic" and "Kernel panic" in failed.console
