"""Fault injection on a real guest (`vm_series`): panic, hang, OOM and an agent killed mid-op
each become a classified TargetError within its timeout, with the console tail; a kernel splat and a boot
that does not finish fail KRN-SPLAT-001 and KRN-BOOT-001; QEMU and virtiofsd are reaped, even when the harness
itself is killed; run by the scheduler, the other targets keep their results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import bpfcert.targets.target as targets
from bpfcert.checks.kernel import krn_boot_001, krn_splat_001
from bpfcert.errors import TargetError
from bpfcert.results import Status
from bpfcert.targets import kernels, vm
from bpfcert.targets.schedule import Scheduler

pytestmark = pytest.mark.vm
OP_TIMEOUT = 8.0
SLACK = 15.0  # for the guest to finish dying and for QEMU to be reaped, on a loaded 2-core machine


def leftovers(workdir: Path) -> list[int]:
    """Processes whose command line names `workdir` (QEMU and virtiofsd of that VM)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(workdir).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def boot_faulty(vm_series: str) -> Iterator[vm.VmTarget]:
    target = vm.boot(vm_series, "tcg", faults=True, op_timeout=OP_TIMEOUT)
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
    assert str(error).startswith(f"{boot_faulty.name}: {classified}:") and "\n" not in str(error)
    if kind == "hang":
        assert elapsed >= OP_TIMEOUT and f"within {OP_TIMEOUT:.0f}s" in str(error)


def test_a_kernel_splat_fails_krn_splat_001(boot_faulty: vm.VmTarget) -> None:
    """sysrq-l makes the real kernel print a backtrace ("Call Trace:"); the target stays up."""
    assert krn_splat_001(boot_faulty).status == Status.PASS
    boot_faulty.call("fault", kind="splat")
    result = krn_splat_001(boot_faulty)
    assert result.status == Status.FAIL and result.target == boot_faulty.name
    assert "Call Trace:" in result.evidence["splat_lines"], result.evidence
    assert result.message.startswith("the kernel printed")
    assert boot_faulty.call("hello")["release"] == boot_faulty.kernel.release


def test_a_boot_that_does_not_finish_fails_krn_boot_001(vm_series: str) -> None:
    target = vm.prepare(vm_series, boot_timeout=1.0)
    workdir = target._workdir
    with pytest.raises(TargetError) as err:
        vm.start(target, "tcg")
    result = krn_boot_001(vm_series, err.value)
    assert result.status == Status.FAIL and result.evidence["kind"] == "boot"
    assert "agent not ready within 1s (tcg)" in result.message
    assert not workdir.exists() and leftovers(workdir) == []


def test_a_killed_harness_leaves_no_vm_behind(vm_series: str) -> None:
    """SIGKILL gives the harness no chance to clean up: the reaper beside the VM does it."""
    code = (
        "from bpfcert.targets import vm; import time\n"
        f"t = vm.boot({vm_series!r}, 'tcg')\n"
        "print(t._workdir, flush=True)\n"
        "time.sleep(600)\n"
    )
    root = Path(__file__).resolve().parent.parent
    harness = subprocess.Popen([sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True)
    assert harness.stdout is not None
    workdir = Path(harness.stdout.readline().strip())
    assert leftovers(workdir), "the VM should be running before the harness is killed"
    os.kill(harness.pid, signal.SIGKILL)
    harness.wait()
    harness.stdout.close()
    deadline = time.monotonic() + 10
    while (leftovers(workdir) or workdir.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers(workdir) == [] and not workdir.exists()


def test_auto_accel_falls_back_to_tcg_within_the_kvm_probe_bound(
    vm_series: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`auto` with nothing remembered: KVM is tried (where /dev/kvm is usable) for at most KVM_PROBE_TIMEOUT."""
    monkeypatch.setattr(vm, "_kvm_works", None)
    monkeypatch.setattr(vm, "_kvm_known_broken", lambda cache: False)
    remembered: list[Path] = []
    monkeypatch.setattr(vm, "_remember_kvm_broken", remembered.append)
    started = time.monotonic()
    target = vm.boot(vm_series, "auto")
    try:
        elapsed = time.monotonic() - started
        accel = target.info().accel
        assert target.call("hello")["release"] == target.kernel.release
    finally:
        target.close()
    kvm_usable = os.access("/dev/kvm", os.R_OK | os.W_OK)
    assert accel == "kvm" or (accel == "tcg" and bool(remembered) == kvm_usable)
    assert elapsed < vm.KVM_PROBE_TIMEOUT + 30
    assert vm._kvm_works is (accel == "kvm")


def test_whole_vm_timeout_bounds_an_operation(vm_series: str) -> None:
    target = vm.VmTarget(kernels.cached_kernel(vm_series), faults=True, op_timeout=600.0, vm_timeout=120.0)
    try:
        target.boot("tcg")
        target.vm_timeout = 0.0  # what is left of the whole-VM budget is read at each call
        started = time.monotonic()
        with pytest.raises(TargetError, match="whole-VM timeout") as err:
            target.call("fault", kind="hang")
        assert err.value.kind == "timeout" and time.monotonic() - started < SLACK
    finally:
        target.close()


def test_scheduler_keeps_the_healthy_targets_results(vm_series_list: list[str]) -> None:
    """The first VM panics; the host and a second VM (where one is selected) keep their results."""
    panicking, healthy = vm_series_list[0], vm_series_list[1:2]

    def panic_on_the_first(t: targets.Target) -> str:
        if t.name == panicking:
            t.call("fault", kind="panic")
        return str(t.call("hello")["release"])

    with Scheduler("tcg", faults=True) as scheduler:
        results = scheduler.run(["host", panicking, *healthy], panic_on_the_first)
    assert results["host"] == os.uname().release
    for name in healthy:
        assert results[name] == kernels.cached_kernel(name).release
    failed = results[panicking]
    assert isinstance(failed, TargetError) and failed.kind == "panic" and "Kernel panic" in failed.console
