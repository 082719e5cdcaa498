"""ISA conformance (RFC 9669) of the engines selected with --engine, on every target: each case of the suite
(--isa-suite DIR, default conformance/isa/) is one result of its group's requirement (ISA-BASE-001, ISA-BASE-002,
ISA-ATOM-001, ISA-ATOM-002, ISA-DIV-001, ISA-DIV-002, ISA-PKT-001, ISA-CALLX-001; ISA-REJ-001 for a case stating an
error), subject the case's name, recorded as it is decided. A case outside the engine's claims is a SKIP with the
reason, a claimed one never is (bpfcert.isa.engine.judge). Kernel engines run on each target; the others run on the
host only. tests/test_isa_suite.py shows each requirement failing on an engine that violates it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from bpfcert.isa import suite
from bpfcert.isa.case import Case
from bpfcert.pytest_plugin import engine_names, note
from bpfcert.results import Result, Status
from bpfcert.targets.series import HOST
from bpfcert.targets.target import Target

CASES = Path(__file__).resolve().parent / "isa"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        names = engine_names(metafunc.config) or [None]
        metafunc.parametrize("engine_name", names, ids=[n or "none" for n in names], scope="session")


@pytest.fixture(scope="session")
def isa_cases(request: pytest.FixtureRequest) -> list[Case]:
    """The suite's cases, read once."""
    from bpfcert.isa.case import read_suite

    return read_suite(Path(request.config.getoption("--isa-suite") or CASES))


@pytest.mark.requirement(*suite.REQUIREMENT_IDS)
def test_isa_cases(
    engine_name: str | None,
    target: Target,
    isa_cases: list[Case],
    record: Callable[[Result | Iterable[Result]], list[Result]],
    request: pytest.FixtureRequest,
) -> None:
    if engine_name is None:
        pytest.skip("no ISA engine under test (--engine NAME)")
    if not suite.on_kernel(engine_name) and target.name != HOST:
        pytest.skip(f"{engine_name} runs on the host, not on a kernel target")
    failed: list[str] = []
    for engine in suite.open_engines(engine_name, target):
        claims = {"groups": sorted(engine.groups), "cpu_version": engine.cpu_version,
                  "profiles": suite.profiles_of(engine.groups)}
        note(request.config, "runner", {"target": target.name, "runtime": engine.name, "claims": claims})
        try:
            results = record(suite.run_cases(engine, isa_cases, target.name))
        finally:
            engine.close()
        failed += [f"{engine.name} {r.subject}" for r in results if r.status in (Status.FAIL, Status.ERROR)]
    assert not failed, f"{len(failed)} case(s) failed or errored: {', '.join(failed[:10])}"
