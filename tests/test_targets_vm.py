"""Booting the cached Debian kernels under QEMU: the agent answers, reports the right kernel, shuts down
cleanly, and nothing is left behind (checked in /proc)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import bpfcert.targets.target as targets
from bpfcert.errors import TargetError
from bpfcert.targets import kernels, vm
from bpfcert.targets.machines import ARCHES
from bpfcert.targets.schedule import Scheduler
from bpfcert.targets.series import TargetName

pytestmark = pytest.mark.vm


def gone(pid: int) -> bool:
    """True when `pid` no longer exists (reaped), or was reused by something that is not ours."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"qemu" not in cmdline and b"virtiofsd" not in cmdline


def test_target_fixture_reports_its_kernel(target: targets.Target) -> None:
    """Every selected target (host + cached kernels by default) answers hello with its own release."""
    info = target.info()
    hello = target.call("hello")
    name = TargetName.parse(target.name)
    assert hello["release"] == info.release
    assert hello["machine"] == info.arch == name.arch and hello["byteorder"] == ARCHES[info.arch].byteorder
    if target.name != "host":
        assert info.series == name.series and hello["release"].startswith(name.series)
        assert info.accel in ("kvm", "tcg") and info.deb_sha256 is not None and len(info.deb_sha256) == 64
        # the x86_64 and arm64 kernels have BTF; Debian's s390x 6.1 has not
        has_btf = "CONFIG_DEBUG_INFO_BTF=y" in kernels.cached_kernel(target.name).config.read_text().splitlines()
        assert hello["btf"] is has_btf
    assert "Linux version" in target.call("dmesg") or target.name == "host"


def test_boot_hello_dmesg_clean_shutdown_and_reaping(vm_series: str) -> None:
    kernel = kernels.cached_kernel(vm_series)
    target = vm.boot(vm_series, "tcg")
    pids, workdir = target.pids, target._workdir
    try:
        assert len(pids) == 1 + target.machine.virtiofsd and not any(gone(pid) for pid in pids)
        assert target.hello["release"] == kernel.release
        assert target.hello["executable"] == target.python  # runners start on the agent's interpreter
        assert target.info().accel == "tcg" and target.info().version == kernel.version
        assert f"Linux version {kernel.release}" in target.call("dmesg")
        with pytest.raises(TargetError) as err:
            target.call("no-such-op")
        assert err.value.kind == "op-failed"
        assert target.call("hello")["release"] == kernel.release  # the agent carried on
        assert target.splats() == []
        qemu = target._qemu
        assert qemu is not None
    finally:
        target.close()
    assert qemu.returncode == 0, "the guest did not shut down cleanly (QEMU was killed)"
    assert all(gone(pid) for pid in pids)
    assert not workdir.exists()
    with pytest.raises(TargetError, match="not booted"):
        target.call("hello")


def test_scheduler_runs_two_at_a_time_and_closes_all(vm_series_list: list[str]) -> None:
    series = vm_series_list[:2]
    seen: dict[str, list[int]] = {}

    def release_and_pids(t: targets.Target) -> Any:
        seen[t.name] = getattr(t, "pids", [])
        return t.call("hello")["release"]

    with Scheduler("tcg") as scheduler:
        results = scheduler.run(["host", *series], release_and_pids)
    assert results["host"] == os.uname().release
    for s in series:
        assert results[s] == kernels.cached_kernel(s).release
        assert seen[s] and all(gone(pid) for pid in seen[s])
