"""The ISA suite (bpfcert.isa.suite, conformance/test_isa.py, `bpfcert isa`): every ISA requirement fails on an
engine that violates it; cases outside the claims skip, claimed ones never do; a crash is contained to its case; the
CLI's exit codes, its JSON (cases, per-group and per-cpu-version totals, valid against spec/report.schema.json) and
its text (the table, and for a failure: expected, got and the program disassembled)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.isa import suite
from bpfcert.isa.case import Case, read_suite
from bpfcert.isa.engine import Engine, EngineCrash, Outcome
from bpfcert.isa.interpreter import ReferenceEngine
from bpfcert.results import Result, Status

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "conformance" / "isa"
ALL_GROUPS = frozenset({"base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet", "callx"})
CALLX_CASE = "-- raw\n0x00000000000001b7\n0x000000000000018d\n0x0000000000000095\n-- result\n0x5\n"


class WrongEngine:
    """The reference, off by one in every r0, and running (to r0 = 0) every program the reference refuses."""

    name = "wrong"
    groups = ALL_GROUPS
    cpu_version = 4
    byteorder = "little"

    def __init__(self) -> None:
        self.reference = ReferenceEngine()

    def run(self, program: bytes, memory: bytes) -> Outcome:
        outcome = self.reference.run(program, memory)
        return Outcome(0, None) if outcome.r0 is None else Outcome(outcome.r0 ^ 1, None)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    """The bundled cases and one callx case (the bundle has none: callx is not RFC 9669's)."""
    extra = tmp_path_factory.mktemp("callx") / "callx-r1.data"
    extra.write_text(CALLX_CASE)
    from bpfcert.isa.case import read_case

    return [*read_suite(CASES), read_case(extra)]


@pytest.fixture(scope="module")
def wrong_results(cases: list[Case]) -> list[Result]:
    return list(suite.run_cases(WrongEngine(), cases, "host"))


@pytest.mark.parametrize("req_id", suite.REQUIREMENT_IDS)
def test_every_isa_requirement_fails_on_an_engine_that_violates_it(req_id: str, wrong_results: list[Result]) -> None:
    rows = [r for r in wrong_results if r.id == req_id]
    assert rows and all(r.status is Status.FAIL for r in rows)
    row = rows[0]
    assert row.evidence["engine"] == "wrong" and row.evidence["program"] and row.evidence["got"]
    assert row.evidence["group"] in ALL_GROUPS and row.level == spec.requirement(req_id).level


def test_a_correct_engine_passes_what_the_wrong_one_fails(cases: list[Case]) -> None:
    results = list(suite.run_cases(ReferenceEngine(), cases[:-1], "host"))
    assert {r.status for r in results} == {Status.PASS}
    assert {r.id for r in results} == set(suite.REQUIREMENT_IDS) - {"ISA-CALLX-001"}
    assert all("program" not in r.evidence for r in results)


class SmallEngine(WrongEngine):
    """Claims only base32 at cpu v1, and runs those cases right."""

    name, groups, cpu_version = "small", frozenset({"base32"}), 1

    def run(self, program: bytes, memory: bytes) -> Outcome:
        return self.reference.run(program, memory)


def test_cases_outside_the_claims_skip_and_claimed_ones_never_do(cases: list[Case]) -> None:
    results = {r.evidence.get("case"): r for r in suite.run_cases(SmallEngine(), cases, "host")}
    by_case = {c.name: c for c in cases}
    skipped = [n for n, r in results.items() if r.status is Status.SKIP]
    assert skipped and all(by_case[n].groups - {"base32"} or by_case[n].cpu_version > 1 for n in skipped)
    claimed = [n for n, c in by_case.items() if c.groups == {"base32"} and c.cpu_version == 1]
    assert claimed and all(results[n].status is Status.PASS for n in claimed)
    assert "needs group base64" in results["add64-imm-1"].message


def test_a_case_the_engine_claims_but_does_not_run_fails(cases: list[Case], monkeypatch: pytest.MonkeyPatch) -> None:
    """The false-skip guard: an outcome missing for a claimed case is a FAIL, never a SKIP."""
    monkeypatch.setattr(suite, "outcomes", lambda engine, cases: {})
    results = list(suite.run_cases(SmallEngine(), cases, "host"))
    claimed = [r for r in results if r.subject == "engine:small/case:add32-imm-1"]
    assert claimed[0].status is Status.FAIL and "false skip" in claimed[0].message


class CrashingEngine(SmallEngine):
    """Crashes on one program, runs the others."""

    def run(self, program: bytes, memory: bytes) -> Outcome:
        if program == self.crash_on:
            raise EngineCrash("worker killed by SIGFPE")
        return super().run(program, memory)


def test_a_crash_is_an_error_of_its_case_and_the_run_goes_on(cases: list[Case]) -> None:
    engine = CrashingEngine()
    engine.crash_on = next(c.program for c in cases if c.name == "add32-imm-1")
    results = {r.evidence.get("case"): r for r in suite.run_cases(engine, cases, "host")}
    assert results["add32-imm-1"].status is Status.ERROR and "SIGFPE" in results["add32-imm-1"].message
    assert results["add32-imm-2"].status is Status.PASS


def test_runtime_names_are_checked() -> None:
    for name in ("python-reference", "linux-kernel", "linux-kernel-interp", "dpdk-jit", "plugin:./x"):
        suite.check_runtime(name)
    with pytest.raises(suite.BpfcertError, match=r"unknown ISA runtime 'qemu'.*python-reference"):
        suite.check_runtime("qemu")
    assert suite.profiles_of(frozenset({"base64", "atomic32"})) == ["isa-base32", "isa-base64", "isa-atomic32"]


def isa(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bpfcert", "isa", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_cli_runs_the_bundled_cases_to_a_json_report(tmp_path: Path) -> None:
    proc = isa(tmp_path, "--runtime", "python-reference", "--format", "json", "--output", "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(spec.schema("report")).validate(doc)
    assert doc["kind"] == "isa" and doc["verdict"] == "conformant"
    assert len(doc["cases"]) == len(list(CASES.glob("*.data"))) and {c["verdict"] for c in doc["cases"]} == {"pass"}
    (totals,) = doc["totals"]
    assert totals["engine"] == "python-reference" and totals["target"] == "host"
    assert set(totals["groups"]) >= {"base32", "base64", "atomic64", "divmul64", "packet"}
    assert set(totals["cpu_versions"]) == {"v1", "v2", "v3", "v4"}
    assert sum(c["pass"] for c in totals["groups"].values()) == len(doc["cases"])
    assert "isa-base64" in doc["profiles"] and (tmp_path / "out" / "results.jsonl").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written outside the output directory


def test_cli_shows_a_failure_with_its_program_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "wrong.data").write_text("-- asm\nmov %r0, 1\nexit\n-- result\n0x2\n")
    (tmp_path / "cases" / "right.data").write_text("-- asm\nmov32 %r0, 2\nexit\n-- result\n0x2\n")
    proc = isa(tmp_path, "--runtime", "python-reference", "--suite", "cases")
    assert proc.returncode == 1, proc.stderr[-2000:]
    out = proc.stdout
    assert "FAIL" in out and "wrong" in out and "expected 0x2, got 0x1" in out and "mov %r0, 1" in out
    assert "python-reference on host:" in out and "cpu v1" in out and "nonconformant" in out


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--runtime", "qemu"], "unknown ISA runtime 'qemu'"),
        (["--runtime", "python-reference", "--suite", "missing"], "not a directory"),
        (["--runtime", "python-reference", "--suite", "bad"], "bad.data"),
        (["--runtime", "python-reference", "--target", "6.1"], "runs on the host"),
        (["fuzz", "--runtime", "python-reference"], "needs --save"),
        (["fuzz", "--runtime", "python-reference", "--save", "bad/bad.data"], "cannot create the output directory"),
    ],
)
def test_cli_refuses_unusable_input_in_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bad.data").write_text("-- asm\nfrobnicate %r0\n-- result\n0x1\n")
    proc = isa(tmp_path, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and proc.stderr.startswith("bpfcert isa: error")
    assert list(tmp_path.iterdir()) == [tmp_path / "bad"]


def test_cli_runs_a_bpf_conformance_plugin_one_process_per_case(tmp_path: Path) -> None:
    """plugin:PATH takes any bpf_conformance plugin; it claims base64 at v4 (the plugin contract says nothing), so
    the atomic case is skipped with the reason, as is each claimed requirement no case of the suite exercises."""
    (tmp_path / "cases").mkdir()
    for name in ("add64-imm-2", "jsgt32-reg-2", "lock-add64"):
        (tmp_path / "cases" / f"{name}.data").write_text((CASES / f"{name}.data").read_text())
    plugin = ROOT / "tests" / "data" / "isa_plugin.py"
    proc = isa(tmp_path, "--runtime", f"plugin:{plugin}", "--suite", "cases", "--format", "junit")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'tests="5"' in proc.stdout and 'skipped="3"' in proc.stdout and 'failures="0"' in proc.stdout
    assert "needs group atomic64" in proc.stdout
    assert "no case of this suite exercises ISA-REJ-001" in proc.stdout  # a gap the report names


@pytest.mark.slow
def test_cli_fuzz_finds_a_dpdk_disagreement_and_saves_it_as_a_case(tmp_path: Path) -> None:
    """The issue's bar: against DPDK, within 2 minutes and unaided, a disagreement with the reference, saved as a
    case that the reference passes and DPDK fails when the suite runs it."""
    import ctypes.util

    if ctypes.util.find_library("rte_bpf") is None:
        pytest.skip("librte-bpf23 is not installed")
    proc = isa(tmp_path, "fuzz", "--runtime", "dpdk-interp", "--examples", "2000", "--seconds", "100",
               "--findings", "1", "--save", "found")
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    saved = read_suite(tmp_path / "found")
    assert saved and "disagrees with python-reference" in proc.stdout
    rerun = isa(tmp_path, "--runtime", "dpdk-interp", "--suite", "found", "--format", "json")
    assert rerun.returncode == 1 and "fail" in {c["verdict"] for c in json.loads(rerun.stdout)["cases"]}
    reference = isa(tmp_path, "--runtime", "python-reference", "--suite", "found", "--format", "json")
    assert {c["verdict"] for c in json.loads(reference.stdout)["cases"]} == {"pass"}


def test_two_engines_on_one_target_give_rows_of_their_own(cases: list[Case]) -> None:
    """A kernel's JIT and interpreter (or the host's engines) judge the same cases on one target: each row's
    requirement x subject x target is still its own, so expected failures and report diff match the right engine."""
    rows = [*suite.run_cases(SmallEngine(), cases, "host"), *suite.run_cases(WrongEngine(), cases, "host")]
    keys = [(r.id, r.subject, r.target) for r in rows]
    assert len(keys) == len(set(keys))


def test_each_engine_gets_its_own_verdict_per_isa_profile(cases: list[Case], tmp_path: Path) -> None:
    """A run judging several engines (the main job: the reference, the kernel's, DPDK's) certifies each apart: one
    engine's failures do not make another's profile 'Not conformant'."""
    from bpfcert.report import verdicts
    from bpfcert.results import Report
    from bpfcert.stream import ResultsStream

    stream = ResultsStream(tmp_path / "results.jsonl")
    stream.header(kind="isa", subject="ISA engines", targets=["host"], profiles=["isa-base32"], runtime="small, wrong")
    for row in [*suite.run_cases(SmallEngine(), cases, "host"), *suite.run_cases(WrongEngine(), cases, "host")]:
        stream.result(row)
    stream.footer()
    judged = {v.profile: v.verdict for v in verdicts.profile_verdicts(Report.from_stream(tmp_path / "results.jsonl"))}
    assert judged["isa-base32 (small)"] == verdicts.CERTIFIED
    assert judged["isa-base32 (wrong)"] != verdicts.CERTIFIED and "isa-base32" not in judged


def test_every_engine_states_its_byte_order_and_rows_carry_it(wrong_results: list[Result]) -> None:
    """`byteorder` is part of the Engine protocol (the suite reads it with no fallback), and every engine has it."""
    from typing import get_type_hints

    from bpfcert.isa.dpdk_engine import DpdkEngine
    from bpfcert.isa.kernel_engine import KernelEngine
    from bpfcert.isa.plugin_engine import PluginEngine

    assert get_type_hints(Engine)["byteorder"] is str
    kernel = {"machine": "s390x", "byteorder": "big", "release": "6.1", "atomics": True, "isa": {}}
    engines: list[Engine] = [
        ReferenceEngine(), ReferenceEngine(byteorder="big"), DpdkEngine(jit=True), PluginEngine(["true"]),
        KernelEngine(None, True, kernel),  # type: ignore[arg-type]  # no target: only its description is read
    ]  # fmt: skip
    assert [e.byteorder for e in engines] == ["little", "big", sys.byteorder, sys.byteorder, "big"]
    assert {r.evidence["byteorder"] for r in wrong_results if "case" in r.evidence} == {"little"}


class BigEndianEngine:
    """A big-endian kernel's engine as the reference of its byte order (`ignores_order`: one that reads memory
    little-endian all the same, as an adapter that forgot the byte order would)."""

    name = "linux-kernel-interp@s390x"
    groups = ALL_GROUPS - {"callx"}
    cpu_version = 4
    arch, byteorder = "s390x", "big"

    def __init__(self, ignores_order: bool = False) -> None:
        self.reference = ReferenceEngine(byteorder="little" if ignores_order else "big")

    def run(self, program: bytes, memory: bytes) -> Outcome:
        return self.reference.run(program, memory)

    def close(self) -> None:
        pass


def test_a_big_endian_engine_is_judged_in_its_byte_order(cases: list[Case]) -> None:
    results = list(suite.run_cases(BigEndianEngine(), cases[:-1], "6.1/s390x"))
    assert {r.status for r in results if "case" in r.evidence} == {Status.PASS}
    ldxw = next(r for r in results if r.evidence.get("case") == "ldxw-offset-0")
    assert ldxw.evidence["arch"] == "s390x" and ldxw.evidence["byteorder"] == "big"
    assert ldxw.evidence["expected_from"] == "python-reference (big-endian memory)"
    add = next(r for r in results if r.evidence.get("case") == "add32-imm-1")
    assert "expected_from" not in add.evidence  # no memory, nothing recomputed


def test_a_big_endian_engine_reading_memory_little_endian_fails(cases: list[Case]) -> None:
    results = list(suite.run_cases(BigEndianEngine(ignores_order=True), cases[:-1], "6.1/s390x"))
    failed = {r.evidence.get("case") for r in results if r.status is Status.FAIL}
    assert {"ldxw-offset-0", "ldxdw-offset-8", "le16-1", "be32-1", "lock-add32"} <= failed
    assert "add32-imm-1" not in failed
    row = next(r for r in results if r.evidence.get("case") == "ldxw-offset-0")
    assert row.evidence["program"] and "wrong r0" in row.message  # the finding with its minimal case
