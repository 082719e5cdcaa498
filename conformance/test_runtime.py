"""The runtime profiles on every target: each runtime check (bpfcert/checks/runtime.py) against the runtime under test
(--runtime NAME or --runner DIR), its results recorded. Packages are the bundled examples (their bpfeb builds on a
big-endian kernel): xdp-counter 1.0.0 (and 2.0.0 for upgrade and rollback) on `lo`, core-tracing where the runtime
claims tracepoints. Each check installs into
a pin root of its own and uninstalls before the next; tests/test_runtime_checks.py shows each check failing on a
runtime that violates it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from bpfcert.checks.runtime import RUNTIME_CHECKS, Deployment, bad_packages
from bpfcert.checks.runtime_prediction import rt_prd_001
from bpfcert.checks.runtime_traffic import rt_upg_002
from bpfcert.errors import RunnerProtocolError
from bpfcert.results import Result, Status
from bpfcert.runners.client import RunnerClient
from bpfcert.targets.series import HOST
from bpfcert.targets.target import Target
from conformance.conftest import BPFEB_EXAMPLES, EXAMPLES

V1, V2 = "xdp-counter-v1", "xdp-counter-v2"
# example -> the capability a runtime claims when it can install it
EXAMPLE_NEEDS = {"xdp-counter-v1": "attach:xdp", "core-tracing": "attach:tracepoint"}
OK = (Status.PASS, Status.SKIP)
Record = Callable[[Result | Iterable[Result]], list[Result]]


def started(runtime: RunnerClient | RunnerProtocolError, record: Record, req_id: str, target: Target) -> RunnerClient:
    """The runtime's client; a runner that did not start on `target` is recorded as an ERROR of `req_id` there,
    failing the test."""
    if isinstance(runtime, RunnerProtocolError):
        message = f"the runner did not start: {runtime}"
        record(Result.of(req_id, Status.ERROR, message, target=target.name, evidence={"stderr": runtime.stderr}))
        pytest.fail(f"{req_id}: the runner did not start: {runtime}")
    return runtime


@pytest.fixture
def pin_root(target: Target) -> Iterator[str]:
    """A fresh pin root on the target's bpffs; removed afterwards on the host (emptied by the uninstalls)."""
    root = f"/sys/fs/bpf/bpfcert-run-{uuid.uuid4().hex[:12]}"
    yield root
    if target.name == HOST:
        with contextlib.suppress(OSError):
            os.rmdir(root)


def deployment(client: RunnerClient, example: Path, pin_root: str) -> Deployment:
    """`example` installed into `pin_root`, XDP on lo; a skip when the runtime does not claim what it needs."""
    needs = EXAMPLE_NEEDS.get(example.name, "attach:xdp")
    if needs not in client.runner.claims.capabilities:
        pytest.skip(f"{client.runner.name} does not claim {needs}, which {example.name} needs")
    return Deployment.of(example, pin_root, interface="lo")


def judged(record: Record, results: list[Result]) -> None:
    """Record `results` and fail the test on any MUST result that did not pass (skip it when all were skipped)."""
    record(results)
    if results and all(r.status is Status.SKIP for r in results):
        pytest.skip("; ".join(r.message for r in results))
    bad = [f"{r.id} {r.subject}: {r.message}" for r in results if r.level == "MUST" and r.status not in OK]
    assert results and not bad, "\n".join(bad) or "the check judged nothing"


@pytest.mark.parametrize("example", sorted(EXAMPLE_NEEDS))
@pytest.mark.parametrize("req_id", ["RT-INS-001", "RT-LST-001", "RT-UNI-001", "RT-IDM-001"])
def test_runtime_core(
    req_id: str,
    example: str,
    runtime: RunnerClient | RunnerProtocolError,
    target: Target,
    record: Record,
    pin_root: str,
    examples: Path,
) -> None:
    client = started(runtime, record, req_id, target)
    judged(record, RUNTIME_CHECKS[req_id](client, deployment(client, examples / example, pin_root)))


def test_rt_rej_001_invalid_packages_are_refused(
    runtime: RunnerClient | RunnerProtocolError, target: Target, record: Record, pin_root: str, tmp_path: Path,
    examples: Path,
) -> None:
    client = started(runtime, record, "RT-REJ-001", target)
    v1 = examples / V1
    judged(record, RUNTIME_CHECKS["RT-REJ-001"](client, deployment(client, v1, pin_root), bad_packages(v1, tmp_path)))


def upgradable(client: RunnerClient) -> None:
    if "runtime-upgrade" not in client.runner.claims.profiles:
        pytest.skip(f"{client.runner.name} does not claim runtime-upgrade")


@pytest.mark.parametrize("req_id", ["RT-UPG-001", "RT-RBK-001"])
def test_runtime_upgrade(
    req_id: str, runtime: RunnerClient | RunnerProtocolError, target: Target, record: Record, pin_root: str,
    examples: Path,
) -> None:
    client = started(runtime, record, req_id, target)
    upgradable(client)
    v1 = deployment(client, examples / V1, pin_root)
    judged(record, RUNTIME_CHECKS[req_id](client, v1, Deployment.of(examples / V2, v1.pin_root, interface="lo")))


def test_rt_crs_001_killed_runtime_recovers(
    runtime: RunnerClient | RunnerProtocolError, target: Target, record: Record, pin_root: str, examples: Path
) -> None:
    client = started(runtime, record, "RT-CRS-001", target)
    v1 = deployment(client, examples / V1, pin_root)
    upgrades = "runtime-upgrade" in client.runner.claims.profiles
    v2 = Deployment.of(examples / V2, v1.pin_root, interface="lo") if upgrades else None
    judged(record, RUNTIME_CHECKS["RT-CRS-001"](client, v1, v2))


def test_rt_upg_002_upgrade_under_traffic(
    runtime: RunnerClient | RunnerProtocolError, target: Target, record: Record, examples: Path
) -> None:
    client = started(runtime, record, "RT-UPG-002", target)
    upgradable(client)
    if "attach:xdp" not in client.runner.claims.capabilities:
        pytest.skip(f"{client.runner.name} does not claim attach:xdp, which the traffic check's package needs")
    judged(record, [rt_upg_002(client, target, str(examples / V1), str(examples / V2))])


def test_rt_prd_001_install_outcomes_match_the_prediction(
    runtime: RunnerClient | RunnerProtocolError, target: Target, record: Record
) -> None:
    client = started(runtime, record, "RT-PRD-001", target)
    # both byte orders: the prediction must also say which builds cannot load on this kernel
    packages = sorted(str(p.parent) for d in (EXAMPLES, BPFEB_EXAMPLES) for p in d.glob("*/bpfpkg.json"))
    judged(record, rt_prd_001(client, target, packages))
