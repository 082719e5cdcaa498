"""The runtime checks (bpfcert/checks/runtime.py) on the host kernel: each passes on the reference runtime and fails
on tests/data/runners/broken with the fault that violates its requirement ($BPFCERT_BROKEN).

Each test runs the runner in a network namespace of its own (nsenter: XDP on its private `lo`, bpffs shared) with its
own state directory and a pin root of its own under /sys/fs/bpf, removed afterwards."""

from __future__ import annotations

import configparser
import dataclasses
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bpfcert.checks import runtime
from bpfcert.checks.profiles import selected_profiles
from bpfcert.errors import BpfcertError
from bpfcert.results import Result, Status
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.targets.host import HostTarget

REPO = Path(__file__).resolve().parents[1]
V1, V2 = REPO / "examples" / "xdp-counter-v1", REPO / "examples" / "xdp-counter-v2"
BROKEN = REPO / "tests" / "data" / "runners" / "broken"


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpf, netns)"
    return None if shutil.which("ip") else "needs ip (iproute2)"


def test_check_refuses_runtime_profiles() -> None:
    with pytest.raises(BpfcertError, match="profile runtime-core applies to runtime targets, not packages; run the"):
        selected_profiles(None, ["runtime-core"])


def test_every_runtime_check_states_its_requirement() -> None:
    assert sorted(runtime.RUNTIME_CHECKS) == [
        "RT-CRS-001",
        "RT-IDM-001",
        "RT-INS-001",
        "RT-LST-001",
        "RT-RBK-001",
        "RT-REJ-001",
        "RT-UNI-001",
        "RT-UPG-001",
    ]


def test_runner_env_reaches_the_launch() -> None:
    runner = discovery.find("reference").with_env({"BPFCERT_REFERENCE_STATE": "/run/tmp/x"}).with_env({"A": "1"})
    _, _, env = runner.launch(HostTarget.python)
    assert env["BPFCERT_REFERENCE_STATE"] == "/run/tmp/x" and env["A"] == "1" and "PYTHONPATH" in env


def test_every_tox_test_run_certifies_the_reference_runtime() -> None:
    """CI runs `tox run`: each pytest env selects the reference runtime, so that the runtime suite runs on the host
    and every cached kernel instead of skipping with "no runtime under test"."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(REPO / "tox.ini")
    runs = {s: config[s]["commands"] for s in config.sections() if config[s].get("commands", "").startswith("pytest")}
    assert "testenv" in runs and all("--runtime reference" in command for command in runs.values()), runs


@pytest.fixture
def netns() -> Iterator[str]:
    if _usable():
        pytest.skip(str(_usable()))
    name = f"r6rt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def pin_root() -> Iterator[str]:
    root = f"{runtime.BPFFS}/bpfcert-r6test-{uuid.uuid4().hex[:8]}"
    try:
        yield root
    finally:
        for path in Path(runtime.BPFFS).glob(Path(root).name + "*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


Start = Callable[[str], RunnerClient]


@pytest.fixture
def start(netns: str, pin_root: str, tmp_path: Path) -> Iterator[Start]:
    """start(fault): the reference runtime ("" ) or the broken one with `fault`, in the test's netns."""
    clients: list[RunnerClient] = []

    def open_runner(fault: str) -> RunnerClient:
        found = discovery.load(BROKEN) if fault else discovery.find("reference")
        runner = dataclasses.replace(found, argv=("nsenter", f"--net=/run/netns/{netns}", *found.argv))
        env = {"BPFCERT_REFERENCE_STATE": str(tmp_path / "state"), "BPFCERT_REFERENCE_BPFFS": pin_root}
        client = RunnerClient.start(HostTarget(), runner.with_env({**env, "BPFCERT_BROKEN": fault}), timeout=60)
        clients.append(client)
        return client

    yield open_runner
    for client in clients:
        client.close()


def deployment(path: Path, pin_root: str) -> runtime.Deployment:
    return runtime.Deployment.of(path, pin_root, interface="lo")


def statuses(results: list[Result]) -> set[Status]:
    assert results, "the check judged nothing"
    return {r.status for r in results}


def run_check(req_id: str, client: RunnerClient, pin_root: str, tmp_path: Path) -> list[Result]:
    v1, v2 = deployment(V1, pin_root), deployment(V2, pin_root)
    check = runtime.RUNTIME_CHECKS[req_id]
    if req_id == "RT-REJ-001":
        return check(client, v1, runtime.bad_packages(V1, tmp_path / "bad"))
    if req_id in ("RT-UPG-001", "RT-RBK-001"):
        return check(client, v1, v2)
    if req_id == "RT-CRS-001":
        return check(client, v1, v2)
    return check(client, v1)


FAULTS = {
    "RT-INS-001": "stray-pin",
    "RT-LST-001": "lie-list",
    "RT-UNI-001": "leak-pin",
    "RT-REJ-001": "accept-bad",
    "RT-IDM-001": "not-idempotent",
    "RT-UPG-001": "drop-map",
    "RT-RBK-001": "no-rollback",
    "RT-CRS-001": "crash-unsafe",
}


@pytest.mark.parametrize("req_id", sorted(FAULTS))
def test_check_passes_on_the_reference_runtime(req_id: str, start: Start, pin_root: str, tmp_path: Path) -> None:
    results = run_check(req_id, start(""), pin_root, tmp_path)
    assert statuses(results) == {Status.PASS}, [(r.message, r.evidence) for r in results if r.status is not Status.PASS]
    assert all(r.id == req_id and r.target == "host" for r in results)
    if req_id == "RT-CRS-001":  # kill points named by their place in the command, so two runs' rows match
        assert {r.subject.rsplit("@", 1)[1] for r in results} == {
            f"{op}+{p:.0%}" for op in ("install", "upgrade", "uninstall") for p in runtime.CRASH_POINTS}


@pytest.mark.parametrize("req_id", sorted(FAULTS))
def test_check_fails_on_a_runtime_that_violates_it(req_id: str, start: Start, pin_root: str, tmp_path: Path) -> None:
    results = run_check(req_id, start(FAULTS[req_id]), pin_root, tmp_path)
    assert Status.FAIL in statuses(results), [(r.status, r.message) for r in results]
    assert Status.ERROR not in statuses(results), [r.message for r in results if r.status is Status.ERROR]


def test_upgrade_check_fails_a_preserved_map_kept_but_not_used(start: Start, pin_root: str, tmp_path: Path) -> None:
    """RT-UPG-001's other way to lose a map: the upgrade keeps it pinned, with its contents, but the new version's
    programs were loaded with a map made anew, so none of them reads the preserved one."""
    results = run_check("RT-UPG-001", start("unused-map"), pin_root, tmp_path)
    failed = [r for r in results if r.status is Status.FAIL]
    assert failed and statuses(results) == {Status.FAIL}, [(r.status, r.message) for r in results]
    assert all(r.message.startswith("no program of 2.0.0 uses map ") for r in failed), [r.message for r in failed]


def test_a_runner_that_dies_is_an_error_with_its_stderr(pin_root: str) -> None:
    if _usable():
        pytest.skip(str(_usable()))
    fake = discovery.load(REPO / "tests" / "data" / "runners" / "fake")
    client = RunnerClient.start(HostTarget(), dataclasses.replace(fake, argv=(*fake.argv, "--fault", "die")))
    with client:
        results = runtime.RUNTIME_CHECKS["RT-INS-001"](client, deployment(V1, pin_root))
    assert [(r.id, r.status) for r in results] == [("RT-INS-001", Status.ERROR)]
    assert "dying in the middle of install" in results[0].evidence["stderr"]


def test_a_package_the_runtime_cannot_install_here_is_skipped(start: Start, pin_root: str, tmp_path: Path) -> None:
    unmet = next(b for b in runtime.bad_packages(V1, tmp_path) if b.code == "requirements-unmet")
    results = runtime.RUNTIME_CHECKS["RT-INS-001"](start(""), deployment(unmet.path, pin_root))
    assert [(r.id, r.status) for r in results] == [("RT-INS-001", Status.SKIP)]
    assert "requirements-unmet" in results[0].message
