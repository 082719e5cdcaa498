"""The linux-kernel ISA engines inside every booted kernel (e.g. `--target 6.1`, `6.1/s390x`): the JIT and the
interpreter as separate engines (named for the architecture off x86_64), each running the whole bundled case list in
ONE op of the guest agent, in the kernel's byte order, and agreeing with the reference interpreter (python-reference,
of that byte order) on every case the kernel's verifier accepts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bpfcert.isa import suite
from bpfcert.isa.case import read_suite
from bpfcert.isa.engine import Outcome, outside_claims
from bpfcert.isa.interpreter import ReferenceEngine
from bpfcert.isa.kernel_engine import KernelEngine, engine_name, kernel_engines
from bpfcert.results import Status
from bpfcert.targets.target import Target
from tests.isa_programs import BIG_ENDIAN_R0, KERNEL_ONLY, PROGRAMS, Program

pytestmark = pytest.mark.vm

CASES = read_suite(Path(__file__).resolve().parent.parent / "conformance" / "isa")
# Valid programs (RFC 9669 defines their result) that every Linux verifier refuses: division and modulo by an
# immediate 0 ("div by zero"), and shifts by an immediate at least the operand's width ("invalid shift"). These are
# FAIL findings about the kernel in a certification, not disagreements with the reference.
REFUSED_BY_THE_VERIFIER = {
    "div32-by-zero-imm": "div by zero", "div64-by-zero-imm": "div by zero", "mod32-by-zero-imm": "div by zero",
    "mod64-by-zero-imm": "div by zero", "lsh64-imm-masked": "invalid shift 65",
    "arsh64-imm-masked": "invalid shift 65", "rsh32-imm-masked": "invalid shift 33",
}  # fmt: skip


def test_jit_and_interpreter_agree_with_the_reference_in_one_op_each(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.name == "host":
        pytest.skip("a guest test: the host is tests/test_isa_kernel_engine.py")
    kernel = target.call("isa_kernel")
    ops: list[str] = []
    call: Callable[..., Any] = target.call

    def counted(op: str, **args: Any) -> Any:
        ops.append(op)
        return call(op, **args)

    monkeypatch.setattr(target, "call", counted)
    engines, why = kernel_engines(target)
    # Debian's kernels are built without CONFIG_BPF_JIT_ALWAYS_ON: both engines exist where there is a JIT
    bases = ["linux-kernel-jit", "linux-kernel-interp"] if kernel["modes"]["jit"] else ["linux-kernel-interp"]
    assert [e.name for e in engines] == [engine_name(b, kernel["machine"]) for b in bases]
    assert why == ("" if kernel["modes"]["jit"] else "the kernel has no BPF JIT")
    reference = ReferenceEngine(byteorder=kernel["byteorder"])
    claimed = [c for c in CASES if c.skip is None and outside_claims(c, engines[0].groups, engines[0].cpu_version)
               is None]
    assert len(claimed) >= 300
    for engine in engines:
        done = suite.outcomes(engine, claimed)
        refused = {name: o.error for name, o in done.items() if isinstance(o, Outcome) and o.error is not None}
        wanted = {c.name for c in claimed if c.error is not None}  # negative cases: refusing them is right
        unexpected = {n: e for n, e in refused.items() if n not in wanted and n not in REFUSED_BY_THE_VERIFIER}
        assert not unexpected, f"{engine.name} on {target.name} refused valid programs: {unexpected}"
        for name, says in REFUSED_BY_THE_VERIFIER.items():
            assert name in refused and says in str(refused[name]), (engine.name, name, done.get(name))
        for case in claimed:
            if case.name in refused:
                continue
            expected = reference.run(case.program, case.memory)
            assert done[case.name] == expected, f"{engine.name} on {target.name}, {case.name}: {done[case.name]}"
    assert ops == ["isa_kernel"] + ["isa_run"] * len(engines), ops  # one op per engine
    # the interpreter's batch switched net.core.bpf_jit_enable off and back on
    assert target.call("isa_kernel")["modes"]["jit_enable"] == (1 if kernel["modes"]["jit"] else None)
    results = list(suite.run_cases(engines[0], [c for c in CASES if c.name == "div32-by-zero-imm"], target.name))
    assert results[0].status is Status.FAIL and "verifier refused a valid program" in results[0].message


def _claimed(engine: KernelEngine, program: Program) -> bool:
    atomic = "atomic" in program.name
    return program.cpu_version <= engine.cpu_version and (not atomic or "atomic64" in engine.groups)


def test_hand_encoded_programs_give_their_r0_in_the_kernels_byte_order(target: Target) -> None:
    if target.name == "host":
        pytest.skip("a guest test: the host is tests/test_isa_kernel_engine.py")
    kernel = target.call("isa_kernel")
    engines, why = kernel_engines(target)
    # Debian's kernels are built without CONFIG_BPF_JIT_ALWAYS_ON: both engines exist where there is a JIT
    bases = ["linux-kernel-jit", "linux-kernel-interp"] if kernel["modes"]["jit"] else ["linux-kernel-interp"]
    assert [e.name for e in engines] == [engine_name(b, kernel["machine"]) for b in bases]
    assert why == ("" if kernel["modes"]["jit"] else "the kernel has no BPF JIT")
    programs = [p for p in PROGRAMS + KERNEL_ONLY if _claimed(engines[0], p)]
    assert len(programs) >= len(PROGRAMS)
    batch = programs * 40  # a few hundred cases, as a suite has
    big = kernel["byteorder"] == "big"
    for engine in engines:
        outcomes = engine.run_batch([(p.code, p.memory) for p in batch])
        expected = [Outcome(BIG_ENDIAN_R0.get(p.name, p.r0) if big else p.r0, None) for p in batch]
        assert outcomes == expected, engine.name
    # the interpreter's batch switched net.core.bpf_jit_enable off and back on
    assert target.call("isa_kernel")["modes"]["jit_enable"] == (1 if kernel["modes"]["jit"] else None)
