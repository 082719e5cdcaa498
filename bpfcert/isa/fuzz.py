"""Differential fuzzing: run generated programs (bpfcert.isa.strategies) on an engine and on the reference
interpreter, and turn each disagreement, shrunk by Hypothesis, into a case file ready to commit.

The engine and the reference disagree when one gives r0 and the other an error, when both give different r0, or
when the engine crashes (a crash on a well-formed program is a finding too). The saved case expects what the
reference did. Fuzzing goes on in rounds until the examples or the seconds are spent or a round finds nothing; each
round counts the kinds of disagreement found before as agreement (the same error or crash text but for numbers, or
a wrong r0 where one was found), so that a common refusal does not hide the next bug.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis.strategies import SearchStrategy

from bpfcert.isa import asm, groups
from bpfcert.isa.case import Case, write_case
from bpfcert.isa.engine import Engine, EngineCrash, Outcome
from bpfcert.isa.interpreter import ReferenceEngine
from bpfcert.isa.strategies import programs


class _OutOfTime(BaseException):
    """Ends generation when the seconds are spent (a BaseException: Hypothesis must not take it for a failure)."""


class _Disagreement(AssertionError):
    pass


def _shown(outcome: Outcome | EngineCrash) -> str:
    if isinstance(outcome, EngineCrash):
        return f"crash ({outcome})"
    return f"r0 = {outcome.r0:#x}" if outcome.error is None and outcome.r0 is not None else f"error ({outcome.error})"


def _disagree(expected: Outcome, got: Outcome | EngineCrash) -> bool:
    if isinstance(got, EngineCrash):
        return True
    return (expected.error is None) != (got.error is None) or expected.r0 != got.r0


def _kind(expected: Outcome, got: Outcome | EngineCrash) -> tuple[str, str]:
    """What sort of disagreement this is: each side's "r0", or its error or crash text's last part (after the last
    "|", where engines join log lines) without numbers."""

    def kind(outcome: Outcome | EngineCrash) -> str:
        if isinstance(outcome, Outcome) and outcome.error is None:
            return "r0"
        last = _shown(outcome).rsplit("|", 1)[-1]
        return re.sub(r"(0x)?[0-9a-fA-F]*[0-9][0-9a-fA-F]*", "N", last).strip()

    return kind(expected), kind(got)


def _case(engine: Engine, program: bytes, memory: bytes, expected: Outcome, got: Outcome | EngineCrash) -> Case:
    digest = hashlib.sha256(program + b"/" + memory).hexdigest()[:10]
    name = f"fuzz-{re.sub(r'[^A-Za-z0-9_.-]+', '-', engine.name)}-{digest}"
    found, cpu = groups.infer(program)
    description = (
        f"Found by differential fuzzing: {engine.name} gave {_shown(got)}, "
        f"the reference interpreter {_shown(expected)}."
    )
    error = None if expected.error is None else " ".join(expected.error.split())
    source = asm.disassemble(program).rstrip("\n")
    return Case(name, program, memory, expected.r0, error, found, cpu, description, source)


_Found = tuple[bytes, bytes, Outcome, Outcome | EngineCrash]  # program, memory, reference's, engine's


def _round(
    engine: Engine,
    strategy: SearchStrategy[tuple[bytes, bytes]],
    examples: int,
    deadline: float,
    known: set[tuple[str, str]],
    start: int | None,
) -> tuple[int, _Found | None]:
    """One Hypothesis run: (examples generated, the shrunk disagreement or None); disagreements of a `known` kind
    count as agreement, so that each round looks for a new bug. `start` seeds the generation (None: random)."""
    reference = ReferenceEngine()
    spent = 0
    found: _Found | None = None

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @given(strategy)
    def compare(example: tuple[bytes, bytes]) -> None:
        nonlocal spent, found
        if found is None:  # once one is found, Hypothesis shrinks it: no more time checks
            if time.monotonic() >= deadline:
                raise _OutOfTime
            spent += 1
        program, memory = example
        expected = reference.run(program, memory)
        try:
            got: Outcome | EngineCrash = engine.run(program, memory)
        except EngineCrash as crash:
            got = crash
        if _disagree(expected, got) and _kind(expected, got) not in known:
            found = (program, memory, expected, got)  # the last one set is the shrunk one Hypothesis replays
            raise _Disagreement(f"{_shown(got)} != {_shown(expected)}")

    if start is not None:
        compare = seed(start)(compare)
    with contextlib.suppress(_OutOfTime, _Disagreement):
        compare()
    return spent, found


def fuzz(
    engine: Engine,
    examples: int,
    save_dir: str | Path,
    seconds: float,
    *,
    findings: int | None = None,
    start: int | None = None,
) -> list[Case]:
    """Compare `engine` with the reference interpreter on up to `examples` generated programs within about
    `seconds` (shrinking a disagreement may take longer), stopping after `findings` disagreements when given; write
    each shrunk disagreement as a case file into `save_dir` and return the cases. `start` seeds the generation, so a
    run can be repeated exactly (None: random). BpfcertError if the engine's claims leave nothing to generate."""
    strategy = programs(engine.groups, engine.cpu_version)
    deadline = time.monotonic() + seconds
    cases: list[Case] = []
    known: set[tuple[str, str]] = set()
    spent = 0
    while spent < examples and time.monotonic() < deadline and len(cases) != findings:
        round_start = None if start is None else start + len(cases)
        used, found = _round(engine, strategy, examples - spent, deadline, known, round_start)
        spent += used
        if found is None:
            break
        known.add(_kind(found[2], found[3]))
        case = _case(engine, *found)
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        write_case(case, Path(save_dir) / f"{case.name}.data")
        cases.append(case)
    return cases
