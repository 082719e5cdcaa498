"""ISA conformance (RFC 9669) of the engines selected with --engine, on every target: each case of the suite
(--isa-suite DIR, default conformance/isa/) is one result of its group's requirement (ISA-BASE-001, ISA-BASE-002,
ISA-ATOM-001, ISA-ATOM-002, ISA-DIV-001, ISA-DIV-002, ISA-PKT-001, ISA-CALLX-001; ISA-REJ-001 for a case stating an
error), subject the case's name, recorded as it is decided. A case outside the engine's claims is a SKIP with the
reason, a claimed one never is (bpfcert.isa.engine.judge). Kernel engines run on each target; the others run on the
host only (conftest.py deselects the rest).

The kernel engines' batches run in the background (`kernel_runs`): each target's as soon as it is open, one target
at a time, beside whatever the suite runs in the foreground (a certification's runtime suite on another target), so
that a guest busy with its ISA batch does not hold up the run; the test records what its target's batch found."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bpfcert.isa import suite
from bpfcert.isa.case import Case
from bpfcert.pytest_plugin import SCHEDULER, engine_names, note
from bpfcert.pytest_workers import runs_here
from bpfcert.results import Result, Status
from bpfcert.targets.target import Target

if TYPE_CHECKING:
    from bpfcert.isa.engine import Engine, EngineCrash, Outcome

CASES = Path(__file__).resolve().parent / "isa"
Batch = list[tuple["Engine", dict[str, "Outcome | EngineCrash"]]]  # each engine `name` stands for, and its outcomes


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine_name" in metafunc.fixturenames:
        names = engine_names(metafunc.config) or [None]
        metafunc.parametrize("engine_name", names, ids=[n or "none" for n in names], scope="session")


@pytest.fixture(scope="session")
def isa_cases(request: pytest.FixtureRequest) -> list[Case]:
    """The suite's cases, read once."""
    from bpfcert.isa.case import read_suite

    return read_suite(Path(request.config.getoption("--isa-suite") or CASES))


def run_batch(target: Target, engine_name: str, cases: list[Case]) -> Batch:
    """The engines `engine_name` stands for on `target`, each with its outcomes of `cases` (one op each)."""
    return [(engine, suite.outcomes(engine, cases)) for engine in suite.open_engines(engine_name, target)]


@pytest.fixture(scope="session")
def kernel_runs(
    request: pytest.FixtureRequest, isa_cases: list[Case]
) -> Iterator[dict[tuple[str, str], Future[Batch]]]:
    """(engine name, target name) -> its batch, begun in one background worker for every kernel engine and target
    this session's test_isa_cases runs on here, in the order they run; a target that does not open raises its
    TargetError from the future."""
    scheduler = request.config.stash[SCHEDULER]
    pool = ThreadPoolExecutor(1, thread_name_prefix="isa-batch")
    runs: dict[tuple[str, str], Future[Batch]] = {}
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        engine, name = params.get("engine_name"), params.get("target")
        if not (isinstance(engine, str) and isinstance(name, str) and suite.on_kernel(engine)):
            continue
        if (engine, name) not in runs and runs_here(request.config, name):  # not another xdist worker's target
            runs[engine, name] = pool.submit(lambda e, n: run_batch(scheduler.get(n), e, isa_cases), engine, name)
    yield runs
    pool.shutdown(cancel_futures=True)


@pytest.mark.requirement(*suite.REQUIREMENT_IDS)
def test_isa_cases(
    engine_name: str | None,
    target: Target,
    isa_cases: list[Case],
    kernel_runs: dict[tuple[str, str], Future[Batch]],
    record: Callable[[Result | Iterable[Result]], list[Result]],
    request: pytest.FixtureRequest,
) -> None:
    assert engine_name is not None  # conftest.py deselects the runs without an engine
    begun = kernel_runs.get((engine_name, target.name))
    batch = begun.result() if begun is not None else run_batch(target, engine_name, isa_cases)
    failed: list[str] = []
    for engine, done in batch:
        claims = {"groups": sorted(engine.groups), "cpu_version": engine.cpu_version,
                  "profiles": suite.profiles_of(engine.groups)}
        note(request.config, "runner", {"target": target.name, "runtime": engine.name, "claims": claims})
        try:
            results = record(suite.run_cases(engine, isa_cases, target.name, done))
        finally:
            engine.close()
        failed += [f"{engine.name} {r.subject}" for r in results if r.status in (Status.FAIL, Status.ERROR)]
    assert not failed, f"{len(failed)} case(s) failed or errored: {', '.join(failed[:10])}"
