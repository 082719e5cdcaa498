"""judge(): one verdict per case and engine, by the rules of the ISA conformance issue: claims decide SKIP and
nothing else (a claimed group is never skipped), a refusal passes only an error case, a crash is ERROR."""

from __future__ import annotations

import dataclasses

import pytest

from bpfcert.isa.case import Case
from bpfcert.isa.engine import EngineCrash, Outcome, judge, outside_claims
from bpfcert.results import Status

ALL = frozenset({"base64", "atomic64", "divmul64", "packet"})
VALID = Case("add", b"", b"", 42, None, frozenset({"base32"}), 1, "", "")
NEGATIVE = dataclasses.replace(VALID, name="bad", result=None, error="invalid instruction")


def test_right_result_passes_wrong_result_fails() -> None:
    assert judge(VALID, ALL, 4, Outcome(42, None)).status is Status.PASS
    verdict = judge(VALID, ALL, 4, Outcome(41, None))
    assert (verdict.status, verdict.expected, verdict.got) == (Status.FAIL, "0x2a", "0x29")


def test_full_64_bit_r0_is_compared() -> None:
    case = dataclasses.replace(VALID, result=0xFFFF_FFFF_FFFF_FFFF)
    assert judge(case, ALL, 4, Outcome(0xFFFF_FFFF, None)).status is Status.FAIL


def test_refusing_a_valid_program_fails_as_a_finding() -> None:
    verdict = judge(VALID, ALL, 4, Outcome(None, "R0 !read_ok"))
    assert verdict.status is Status.FAIL
    assert verdict.message == "verifier refused a valid program: R0 !read_ok"
    assert verdict.got == "error: R0 !read_ok"


def test_error_case_passes_on_any_refusal_and_fails_on_a_result() -> None:
    verdict = judge(NEGATIVE, ALL, 4, Outcome(None, "something else entirely"))
    assert (verdict.status, verdict.expected) == (Status.PASS, "error: invalid instruction")
    assert judge(NEGATIVE, ALL, 4, Outcome(0, None)).status is Status.FAIL


def test_crash_is_error() -> None:
    verdict = judge(VALID, ALL, 4, EngineCrash("killed by SIGSEGV"))
    assert verdict.status is Status.ERROR and "SIGSEGV" in verdict.message


@pytest.mark.parametrize(
    ("groups", "cpu", "engine_groups", "engine_cpu", "reason"),
    [
        ({"atomic32"}, 3, {"base64"}, 4, "needs group atomic32"),
        ({"divmul64"}, 1, {"base64", "divmul32"}, 4, "needs group divmul64"),
        ({"base32"}, 4, {"base32"}, 3, "needs cpu v4; the engine claims v3"),
    ],
)
def test_outside_the_claims_is_skip_with_the_reason(
    groups: set[str], cpu: int, engine_groups: set[str], engine_cpu: int, reason: str
) -> None:
    case = dataclasses.replace(VALID, groups=frozenset(groups), cpu_version=cpu)
    verdict = judge(case, frozenset(engine_groups), engine_cpu, None)
    assert verdict.status is Status.SKIP and reason in verdict.message
    assert outside_claims(case, frozenset(engine_groups), engine_cpu) == verdict.message


def test_included_groups_count_as_claimed() -> None:
    case = dataclasses.replace(VALID, groups=frozenset({"base32", "atomic32", "divmul32"}))
    assert outside_claims(case, frozenset({"base64", "atomic64", "divmul64"}), 4) is None


def test_false_skip_guard_a_claimed_case_not_run_fails() -> None:
    verdict = judge(VALID, ALL, 4, None)
    assert verdict.status is Status.FAIL and verdict.message.startswith("false skip")


def test_a_case_that_cannot_run_is_skip() -> None:
    case = dataclasses.replace(VALID, skip="unknown directive -- map")
    assert judge(case, ALL, 4, Outcome(42, None)).status is Status.SKIP


def test_case_without_expectation_is_error() -> None:
    case = dataclasses.replace(VALID, result=None)
    assert judge(case, ALL, 4, Outcome(0, None)).status is Status.ERROR
