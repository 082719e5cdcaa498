"""What an ISA execution engine is to the harness, and how one run of a case is judged.

An `Engine` runs a program on some memory and answers an `Outcome`: r0, or the error with which it refused the
program or faulted. An engine that dies, hangs or answers garbage raises `EngineCrash` instead. `judge` turns a
case and what the engine did with it into exactly one `Verdict` (PASS, FAIL, SKIP or ERROR) with the reason.

The claims decide SKIP, nothing else: a case outside the engine's groups or cpu version is SKIP with the reason,
and a case inside them that the engine did not run is FAIL (the false-skip guard), never SKIP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

from bpfcert.errors import BpfcertError
from bpfcert.isa.groups import implied
from bpfcert.results import Status

if TYPE_CHECKING:
    from bpfcert.isa.case import Case


class Outcome(NamedTuple):
    """What a program did: `r0` (unsigned 64-bit) when it exited, else `error`, the engine's message when it
    refused the program or faulted while running it. Exactly one is set."""

    r0: int | None
    error: str | None


class EngineCrash(BpfcertError):
    """The engine itself failed: it died, timed out or answered something that is not an outcome."""


class Engine(Protocol):
    """An execution engine under test, with the RFC 9669 groups and the cpu version (1..4) it claims, and the byte
    order ("little" or "big") of the memory its programs run on."""

    name: str
    groups: frozenset[str]
    cpu_version: int
    byteorder: str

    def run(self, program: bytes, memory: bytes) -> Outcome: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Verdict:
    """One case on one engine: `expected` and `got` as shown in reports ("0x2a", "error: ..."), None where
    there is nothing to show (a case not run)."""

    status: Status
    expected: str | None
    got: str | None
    message: str


def outside_claims(case: Case, groups: frozenset[str], cpu_version: int) -> str | None:
    """Why `case` is outside what an engine claims (a group it does not claim, a cpu version above its own),
    or None when the engine must run it."""
    missing = sorted(case.groups - implied(groups))
    if missing:
        return f"needs group {', '.join(missing)}, which the engine does not claim"
    if case.cpu_version > cpu_version:
        return f"needs cpu v{case.cpu_version}; the engine claims v{cpu_version}"
    return None


def _shown(outcome: Outcome) -> str:
    return f"{outcome.r0:#x}" if outcome.error is None and outcome.r0 is not None else f"error: {outcome.error}"


def judge(
    case: Case, engine_groups: frozenset[str], engine_cpu: int, outcome_or_crash: Outcome | EngineCrash | None
) -> Verdict:
    """The verdict on `case` given what the engine did: its Outcome, the EngineCrash it raised, or None when it
    was not run (because `outside_claims` said so, or for any other reason)."""
    expected = f"error: {case.error}" if case.error is not None else None
    if case.error is None and case.result is not None:
        expected = f"{case.result:#x}"
    if case.skip is not None:
        return Verdict(Status.SKIP, expected, None, f"case cannot run: {case.skip}")
    why_not = outside_claims(case, engine_groups, engine_cpu)
    if why_not is not None:
        return Verdict(Status.SKIP, expected, None, why_not)
    if outcome_or_crash is None:
        groups = ", ".join(sorted(case.groups)) or "base32"
        return Verdict(Status.FAIL, expected, None, f"false skip: not run, though the engine claims {groups}")
    if isinstance(outcome_or_crash, EngineCrash):
        return Verdict(Status.ERROR, expected, None, f"engine crashed: {outcome_or_crash}")
    outcome = outcome_or_crash
    got = _shown(outcome)
    if expected is None:
        return Verdict(Status.ERROR, None, got, "the case states neither a result nor an error")
    if case.error is not None:
        if outcome.error is not None:
            return Verdict(Status.PASS, expected, got, f"refused as expected: {outcome.error}")
        return Verdict(Status.FAIL, expected, got, f"expected an error ({case.error}), but r0 = {outcome.r0:#x}")
    if outcome.error is not None:
        return Verdict(Status.FAIL, expected, got, f"verifier refused a valid program: {outcome.error}")
    if outcome.r0 != case.result:
        return Verdict(Status.FAIL, expected, got, f"wrong r0: expected {expected}, got {got}")
    return Verdict(Status.PASS, expected, got, f"r0 = {got}")
