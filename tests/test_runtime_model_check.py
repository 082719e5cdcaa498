"""RT-MDL-001 (bpfcert.checks.runtime_model) on the host kernel: random install / upgrade / rollback / uninstall /
bad-package sequences keep the kernel equal to the model with the reference runtime, and fail with a runtime whose
uninstall leaks a pinned map (tests/data/runners/leaky_uninstall). Each test has its own bpffs mount, state
directory and veth pair."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, cast

import pytest

from bpfcert.checks.runtime_model import Package, RuntimeModel, rt_mdl_001
from bpfcert.results import Result, Status
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.protocol import MapState, PackageState, ProgramState
from bpfcert.targets.host import HostTarget

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root (bpf, veth, bpffs mounts) and iproute2"
)


def bad_digest(tmp_path: Path) -> Package:
    """socket-filter with a wrong sha256 for its object."""
    root = tmp_path / "bad-digest"
    shutil.copytree(EXAMPLES / "socket-filter", root, ignore=shutil.ignore_patterns("src"))
    manifest = json.loads((root / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (root / "bpfpkg.json").write_text(json.dumps(manifest))
    return Package.read(root)


def run_model(runner: Path, mount: Path, tmp_path: Path, examples: int) -> Result:
    target = HostTarget()
    try:
        with RunnerClient.start(target, discovery.load(runner)) as client:
            return rt_mdl_001(
                client,
                target,
                upgrades=[Package.read(EXAMPLES / "xdp-counter-v1"), Package.read(EXAMPLES / "xdp-counter-v2")],
                others=[Package.read(EXAMPLES / "socket-filter")],
                bad=[bad_digest(tmp_path)],
                pin_base=str(mount),
                max_examples=examples,
            )
    finally:
        target.close()


@needs_root
def test_reference_runtime_keeps_the_kernel_equal_to_the_model(reference_bpffs: Path, tmp_path: Path) -> None:
    result = run_model(REPO / "runners" / "reference", reference_bpffs, tmp_path, examples=10)
    assert result.status is Status.PASS, f"{result.message}\n{result.evidence}"
    assert not list(reference_bpffs.glob("bpfcert-model-*")), "the check leaves the pin roots it named"


@needs_root
def test_leaky_uninstall_fails_the_model(reference_bpffs: Path, tmp_path: Path) -> None:
    result = run_model(REPO / "tests" / "data" / "runners" / "leaky_uninstall", reference_bpffs, tmp_path, examples=100)
    assert result.status is Status.FAIL, result.message
    assert "belongs to no installed package" in str(result.evidence["problem"])
    operations = result.evidence["operations"]
    assert isinstance(operations, list) and any(op.startswith("uninstall") for op in operations)


class Kernel:
    """A target whose `kernel_state` keeps a program and a map for the first `keeps` snapshots, then frees them."""

    def __init__(self, keeps: int) -> None:
        self.keeps, self.snapshots = keeps, 0

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        assert op == "kernel_state"
        self.snapshots += 1
        held = self.snapshots <= self.keeps
        return {"programs": [{"id": 7}] if held else [], "maps": [{"id": 9}] if held else [], "links": [],
                "pins": [], "unsupported": []}  # fmt: skip


class Runtime:
    """A runner client whose install reports program 7 and map 9, and whose uninstall succeeds."""

    def install(self, path: str, options: Any) -> PackageState:
        program, map_ = ProgramState("f", 7, "xdp", None, None), MapState("m", 9, "array", None)
        return PackageState("p", "1", (program,), (map_,), ())

    def uninstall(self, name: str) -> None:
        return None

    def list(self) -> list[PackageState]:
        return []


@pytest.mark.parametrize(
    ("keeps", "snapshots", "left"), [(0, 1, []), (2, 3, []), (1000, None, ["programs [7]", "maps [9]"])]
)
def test_objects_of_an_uninstalled_package_must_be_freed(keeps: int, snapshots: int | None, left: list[str]) -> None:
    """RT-MDL-001: the program and map an uninstalled package held must leave the kernel within the wait: freed at
    once, one snapshot judges; freed a little later, the model waits for them; never freed, each kind is a
    mismatch."""
    kernel = Kernel(keeps)
    model = RuntimeModel(cast(Any, Runtime()), cast(Any, kernel), "/sys/fs/bpf/model")
    assert model.install(Package("/p", "p", "1")) == [] and model.uninstall("p") == []
    found = model.mismatches(wait=0.3)
    assert found == [f"{ids} outlived the version or package that owned them" for ids in left]
    assert snapshots is None or kernel.snapshots == snapshots
