"""Fixtures of the harness's own VM tests: which cached kernels the lifecycle and fault tests boot.

They follow --target, so that `tox run -e kernel-7.2` tests booting, faults and reaping on 7.2 itself; by
default (host + every cached kernel) they use 5.10, the fastest to boot, and 6.1 where they need two."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfcert.hub.server import LocalRegistry
from bpfcert.targets.series import HOST
from bpfcert.targets.target import resolve_names
from bpfcert.targets.vm import unavailable


@pytest.fixture(scope="session")
def vm_series_list(pytestconfig: pytest.Config) -> list[str]:
    """The selected VM series that can boot here, in --target order (5.10, the fastest, first by default);
    skips with the reason when there is none."""
    spec = pytestconfig.getoption("--target")
    selected = [n for n in resolve_names(spec) if n != HOST]
    if not selected and spec:
        pytest.skip(f"no VM target selected (--target {spec})")
    problems = {n: unavailable(n) for n in selected or ["5.10"]}
    usable = [n for n, problem in problems.items() if problem is None]
    if not usable:
        pytest.skip("; ".join(str(problem) for problem in problems.values()))
    return usable


@pytest.fixture(scope="session")
def vm_series(vm_series_list: list[str]) -> str:
    """The one series a lifecycle or fault test boots."""
    return vm_series_list[0]


@pytest.fixture
def reference_bpffs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A bpffs of the test's own (mounted under `tmp_path`, unmounted after) as the reference runtime's pin root,
    and the runtime's state beside it, so tests that run the reference runtime on the host never share either."""
    mount = tmp_path / "bpffs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(mount)], check=True)
    monkeypatch.setenv("BPFCERT_REFERENCE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("BPFCERT_REFERENCE_BPFFS", str(mount / "bpfcert"))
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    """A private docker-registry of this test's own on loopback (violations edit its storage), stopped by PID."""
    with LocalRegistry(tmp_path / "registry") as server:
        yield server


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A private docker-registry on loopback shared by one test module's tests (each pushes under names of its own
    and puts back what it tampers with), stopped by PID after the module."""
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as server:
        yield server
