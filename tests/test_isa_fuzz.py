"""Differential fuzzing: the generated programs are well-formed and stay inside the claims they were drawn for,
and the fuzzer finds a deliberately wrong engine (arsh32 done as a logical shift) on its own, shrinks the
disagreement and saves it as a case that the wrong engine fails and the reference passes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from bpfcert import insn as b
from bpfcert.errors import BpfcertError
from bpfcert.isa import groups
from bpfcert.isa.case import read_case
from bpfcert.isa.engine import EngineCrash, Outcome, judge
from bpfcert.isa.fuzz import fuzz
from bpfcert.isa.interpreter import ReferenceEngine
from bpfcert.isa.strategies import programs
from bpfcert.results import Status

ALL = frozenset({"base64", "atomic64", "divmul64"})
CLAIMS = [(frozenset({"base64"}), 1), (frozenset({"base64", "divmul32", "atomic32"}), 3), (ALL, 4)]


@pytest.mark.parametrize(("claimed", "cpu"), CLAIMS, ids=["base64-v1", "divmul32-atomic32-v3", "all-v4"])
def test_generated_programs_are_well_formed_and_inside_the_claims(claimed: frozenset[str], cpu: int) -> None:
    reference = ReferenceEngine()

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(programs(claimed, cpu))
    def check(example: tuple[bytes, bytes]) -> None:
        program, memory = example
        used, needs = groups.infer(program)
        assert used <= groups.implied(claimed) and needs <= cpu
        outcome = reference.run(program, memory)
        assert outcome.error is None, outcome.error
        assert reachable(program) == {i.index for i in b.decode(program)}, "verifiers refuse unreachable code"

    check()


def reachable(program: bytes) -> set[int]:
    """The instructions control can reach from the first (jumps both ways, calls, fall-through)."""
    insns = {i.index: i for i in b.decode(program)}
    seen: set[int] = set()
    todo = [0]
    while todo:
        at = todo.pop()
        if at in seen or at not in insns:
            continue
        seen.add(at)
        insn = insns[at]
        if insn.jump_target is not None:
            todo.append(insn.jump_target)
        if insn.mnemonic not in ("exit", "ja", "gotol"):
            todo.append(at + insn.slots)
    return seen


def test_fuzzing_needs_base64() -> None:
    with pytest.raises(BpfcertError, match="base64"):
        programs(frozenset({"base32"}), 4)


class WrongArsh32(ReferenceEngine):
    """The reference with a classic bug: arsh32 shifts in zeros (every arsh32 opcode run as rsh32)."""

    name = "wrong-arsh32"

    def run(self, program: bytes, memory: bytes) -> Outcome:
        broken = bytearray(program)
        for at in range(0, len(broken), 8):
            if broken[at] in (0xC4, 0xCC):
                broken[at] -= 0x50
        return super().run(bytes(broken), memory)


def test_the_fuzzer_finds_a_wrong_arsh32_unaided_and_saves_the_case(tmp_path: Path) -> None:
    engine = WrongArsh32()
    cases = fuzz(engine, examples=3000, save_dir=tmp_path, seconds=300, findings=1, start=2)
    assert len(cases) == 1
    case = cases[0]
    assert any(op in (0xC4, 0xCC) for op in case.program[::8]), "the shrunk program keeps the arsh32"
    assert read_case(tmp_path / f"{case.name}.data") == case
    assert judge(case, engine.groups, 4, engine.run(case.program, case.memory)).status is Status.FAIL
    reference = ReferenceEngine()
    assert judge(case, reference.groups, 4, reference.run(case.program, case.memory)).status is Status.PASS


def test_no_disagreement_saves_nothing(tmp_path: Path) -> None:
    assert fuzz(ReferenceEngine(), examples=20, save_dir=tmp_path / "out", seconds=60) == []
    assert not (tmp_path / "out").exists()


class CrashesOnAtomics(ReferenceEngine):
    name = "crashes-on-atomics"

    def run(self, program: bytes, memory: bytes) -> Outcome:
        if any(i.mode == "ATOMIC" for i in b.decode(program)):
            raise EngineCrash("killed by SIGSEGV")
        return super().run(program, memory)


def test_an_engine_crash_is_a_disagreement(tmp_path: Path) -> None:
    cases = fuzz(CrashesOnAtomics(), examples=3000, save_dir=tmp_path, seconds=300, findings=1, start=2)
    assert cases and "crash (killed by SIGSEGV)" in cases[0].description


def test_a_seeded_run_repeats_exactly(tmp_path: Path) -> None:
    first = fuzz(CrashesOnAtomics(), examples=3000, save_dir=tmp_path / "a", seconds=300, findings=1, start=2)
    again = fuzz(CrashesOnAtomics(), examples=3000, save_dir=tmp_path / "b", seconds=300, findings=1, start=2)
    assert [c.program for c in first] == [c.program for c in again] != []


def test_the_time_limit_stops_generation(tmp_path: Path) -> None:
    started = time.monotonic()
    assert fuzz(ReferenceEngine(), examples=10**6, save_dir=tmp_path, seconds=0.5) == []
    assert time.monotonic() - started < 5
