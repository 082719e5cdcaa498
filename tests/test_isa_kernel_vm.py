"""The linux-kernel ISA engines inside a booted kernel (e.g. `--target 6.1`): the JIT and the interpreter as
separate engines, each running the whole case list in one op of the guest agent."""

from __future__ import annotations

import pytest

from bpfcert.isa.engine import Outcome
from bpfcert.isa.kernel_engine import KernelEngine, kernel_engines
from bpfcert.targets.target import Target
from tests.isa_programs import KERNEL_ONLY, PROGRAMS, Program

pytestmark = pytest.mark.vm


def _claimed(engine: KernelEngine, program: Program) -> bool:
    atomic = "atomic" in program.name
    return program.cpu_version <= engine.cpu_version and (not atomic or "atomic64" in engine.groups)


def test_jit_and_interpreter_run_a_batch_in_one_op_each(target: Target) -> None:
    if target.name == "host":
        pytest.skip("a guest test: the host is tests/test_isa_kernel_engine.py")
    engines, why = kernel_engines(target)
    # Debian's kernels are built without CONFIG_BPF_JIT_ALWAYS_ON: both engines exist
    assert [e.name for e in engines] == ["linux-kernel-jit", "linux-kernel-interp"] and why == ""
    programs = [p for p in PROGRAMS + KERNEL_ONLY if _claimed(engines[0], p)]
    assert len(programs) >= len(PROGRAMS)
    batch = programs * 40  # a few hundred cases, as a suite has
    for engine in engines:
        outcomes = engine.run_batch([(p.code, p.memory) for p in batch])
        assert outcomes == [Outcome(p.r0, None) for p in batch], engine.name
    # the interpreter's batch switched net.core.bpf_jit_enable off and back on
    assert target.call("isa_kernel")["modes"]["jit_enable"] == 1
