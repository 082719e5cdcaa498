"""RT-PRD-001 (bpfcert.checks.runtime_prediction) on the host kernel: every example package installs through the
reference runtime as `bpfcert probe --package` predicts; a runtime with a wrong requirement check
(tests/data/runners/strict_requires) refuses packages predicted to run, and each is a FAIL with both sides."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bpfcert.checks.runtime_prediction import rt_prd_001
from bpfcert.results import Result, Status
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.targets.host import HostTarget

REPO = Path(__file__).resolve().parents[1]
PACKAGES = [str(p.parent) for p in sorted((REPO / "examples").glob("*/bpfpkg.json"))]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root (bpf, veth, bpffs mounts) and iproute2"
)


def compare(runner: Path) -> list[Result]:
    target = HostTarget()
    try:
        with RunnerClient.start(target, discovery.load(runner)) as client:
            results = rt_prd_001(client, target, PACKAGES)
            assert client.list() == ()  # what installed was uninstalled
            return results
    finally:
        target.close()


@pytest.mark.usefixtures("reference_bpffs")
def test_reference_runtime_installs_as_predicted() -> None:
    results = compare(REPO / "runners" / "reference")
    assert len(PACKAGES) == 4 and len(results) == 4
    for result in results:
        assert result.status is Status.PASS, result.message
        assert result.evidence["prediction"]["meets"] and result.evidence["outcome"] == {"installed": True}


@pytest.mark.usefixtures("reference_bpffs")
def test_a_wrong_requirement_check_disagrees_with_the_prediction() -> None:
    results = compare(REPO / "tests" / "data" / "runners" / "strict_requires")
    assert [r.status for r in results] == [Status.FAIL] * 4
    for result in results:
        assert result.message.startswith("predicted: runs, but refused, requirements-unmet: kernel 99.0")
        assert result.evidence["prediction"]["meets"] is True
        assert result.evidence["outcome"]["code"] == "requirements-unmet"


class _Refusing:
    """A client whose runtime answers every install with one protocol failure."""

    def __init__(self, code: str) -> None:
        self.code = code

    def install(self, path: str, options: object) -> object:
        from bpfcert.runners.protocol import Failure

        return Failure(self.code, f"refused with {self.code}")


@pytest.mark.parametrize(
    ("code", "status"),
    [("unsupported", Status.SKIP), ("internal", Status.ERROR), ("requirements-unmet", Status.FAIL)],
)
def test_a_refusal_is_judged_by_whose_limit_it_is(code: str, status: Status) -> None:
    """The runtime's own limit (unsupported) says nothing about the kernel: not applicable; a broken runtime
    (internal) cannot be compared; a kernel refusal of a package predicted to run is the disagreement."""
    from bpfcert.checks.runtime_prediction import _judge
    from bpfcert.runners.protocol import Options

    prediction = {"meets": True, "limiting": None, "unknown": []}
    target = HostTarget()
    try:
        result = _judge(_Refusing(code), target, "pkg", "pkg@1.0.0", prediction, Options())  # type: ignore[arg-type]
    finally:
        target.close()
    assert (result.id, result.status) == ("RT-PRD-001", status)


@pytest.mark.usefixtures("reference_bpffs")
def test_a_build_of_the_other_byte_order_is_predicted_refused_and_named_apart() -> None:
    target = HostTarget()
    bpfeb = str(REPO / "examples" / "bpfeb" / "socket-filter")
    try:
        with RunnerClient.start(target, discovery.load(REPO / "runners" / "reference")) as client:
            results = rt_prd_001(client, target, [str(REPO / "examples" / "socket-filter"), bpfeb])
    finally:
        target.close()
    assert [r.subject for r in results] == ["package:socket-filter@1.0.0", "package:socket-filter@1.0.0+bpfeb"]
    assert {r.status for r in results} == {Status.PASS}
    big = results[1].evidence
    assert not big["prediction"]["meets"] and "bpfeb objects do not load" in big["prediction"]["limiting"]
    assert big["outcome"]["code"] == "requirements-unmet"  # the reference runtime refuses it, as predicted
