"""The linux-kernel ISA engines inside a booted kernel (e.g. `--target 6.1`, `6.1/s390x`): the JIT and the
interpreter as separate engines (named for the architecture off x86_64), each running the whole case list in one op
of the guest agent, in the kernel's byte order."""

from __future__ import annotations

import pytest

from bpfcert.isa.engine import Outcome
from bpfcert.isa.kernel_engine import KernelEngine, engine_name, kernel_engines
from bpfcert.targets.target import Target
from tests.isa_programs import BIG_ENDIAN_R0, KERNEL_ONLY, PROGRAMS, Program

pytestmark = pytest.mark.vm


def _claimed(engine: KernelEngine, program: Program) -> bool:
    atomic = "atomic" in program.name
    return program.cpu_version <= engine.cpu_version and (not atomic or "atomic64" in engine.groups)


def test_jit_and_interpreter_run_a_batch_in_one_op_each(target: Target) -> None:
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
