"""The linux-kernel ISA engines on the host kernel: hand-encoded programs with known r0, verifier refusals as
errors, the JIT/interpreter split, and a whole batch in one op."""

from __future__ import annotations

import gzip
import os
from typing import Any

import pytest

from bpfcert import insn as X
from bpfcert.errors import BpfcertError, TargetError, TargetErrorKind
from bpfcert.isa.engine import EngineCrash, Outcome
from bpfcert.isa.kernel_engine import ATOMIC_GROUPS, KernelEngine, kernel_engine, kernel_engines
from bpfcert.targets import isa_run
from bpfcert.targets.host import HostTarget
from tests.isa_programs import KERNEL_ONLY, PROGRAMS, Program

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading XDP programs needs root")


@pytest.fixture(scope="module")
def host() -> HostTarget:
    return HostTarget()


@pytest.fixture(scope="module")
def jit(host: HostTarget) -> KernelEngine:
    return kernel_engine(host, "linux-kernel-jit")


@pytest.mark.parametrize("program", PROGRAMS + KERNEL_ONLY, ids=lambda p: p.name)
def test_known_programs_give_their_r0(jit: KernelEngine, program: Program) -> None:
    if program.cpu_version > jit.cpu_version:
        pytest.skip(f"the host kernel has cpu v{jit.cpu_version}")
    assert jit.run(program.code, program.memory) == Outcome(program.r0, None)


def test_a_batch_runs_in_one_op_and_keeps_the_order(host: HostTarget) -> None:
    calls: list[str] = []

    class Counting:
        name = "host"

        def call(self, op: str, **args: Any) -> Any:
            calls.append(op)
            return host.call(op, **args)

    engine = kernel_engines(Counting())[0][0]  # type: ignore[arg-type]
    calls.clear()
    cases = [(X.assemble([X.mov64_imm(0, i), X.exit_()]), bytes(i % 20)) for i in range(120)]
    assert engine.run_batch(cases) == [Outcome(i, None) for i in range(120)]
    assert calls == ["isa_run"]


def test_a_verifier_refusal_is_an_error_quoting_the_log(jit: KernelEngine) -> None:
    out_of_bounds = X.assemble([X.ldx_mem("DW", 0, 1, 8), X.exit_()])  # 8 bytes at 8 of a 14-byte packet
    outcome = jit.run(out_of_bounds, bytes(8))
    assert outcome.r0 is None and outcome.error is not None
    assert outcome.error.startswith("verifier refused the program (Permission denied)")
    assert "outside of the packet" in outcome.error and f"is the log's {isa_run.PROLOGUE_SLOTS}" in outcome.error
    uninitialised = jit.run(X.assemble([X.exit_()]), b"")
    assert uninitialised.error is not None and "R0 !read_ok" in uninitialised.error


def test_a_program_that_is_not_whole_instructions_is_refused(jit: KernelEngine) -> None:
    outcome = jit.run(b"\x95" + bytes(3), b"")
    assert outcome == Outcome(None, "program of 4 bytes is not a whole number of instructions")


def _config_jit_always_on() -> bool | None:
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            return "CONFIG_BPF_JIT_ALWAYS_ON=y\n" in f.read()
    except OSError:
        return None


def test_the_engines_follow_the_kernels_jit_configuration(host: HostTarget) -> None:
    always_on = _config_jit_always_on()
    if always_on is None:
        pytest.skip("no /proc/config.gz to compare with")
    engines, why = kernel_engines(host)
    names = [e.name for e in engines]
    if always_on:
        assert names == ["linux-kernel-jit"] and "CONFIG_BPF_JIT_ALWAYS_ON" in why
        with pytest.raises(BpfcertError, match=r"linux-kernel-interp is not available on host: .*ALWAYS_ON"):
            kernel_engine(host, "linux-kernel-interp")
        with pytest.raises(OSError, match="no interpreter"):
            isa_run.isa_run([["b7000000010000009500000000000000", ""]], jit=False)
    else:
        assert names == ["linux-kernel-jit", "linux-kernel-interp"] and why == ""


def test_the_host_claims_what_its_kernel_loads(jit: KernelEngine, host: HostTarget) -> None:
    kernel = host.call("isa_kernel")
    assert jit.cpu_version == max(int(v[1]) for v, s in kernel["isa"].items() if s == "available")
    assert ("atomic32" in jit.groups) == kernel["atomics"] and "packet" not in jit.groups
    assert {"base32", "base64", "divmul32", "divmul64"} <= jit.groups


class _Failing:
    name = "broken"

    def __init__(self, answer: Any = None, fault: TargetError | None = None) -> None:
        self.answer, self.fault = answer, fault

    def call(self, op: str, **args: Any) -> Any:
        if self.fault is not None:
            raise self.fault
        return self.answer


KERNEL = {"release": "x", "machine": "x86_64", "byteorder": "little", "atomics": True, "isa": {"v1": "available"},
          "modes": {}}


def test_a_target_that_fails_or_answers_garbage_is_an_engine_crash() -> None:
    down = KernelEngine(_Failing(fault=TargetError("agent died", TargetErrorKind.AGENT_DIED)), True, KERNEL)  # type: ignore[arg-type]
    with pytest.raises(EngineCrash, match="linux-kernel-jit on broken: agent died"):
        down.run(b"\x95" + bytes(7), b"")
    garbage = KernelEngine(_Failing(answer={"outcomes": []}), True, KERNEL)  # type: ignore[arg-type]
    with pytest.raises(EngineCrash, match="answered garbage"):
        garbage.run(b"\x95" + bytes(7), b"")


@pytest.mark.parametrize(
    ("machine", "byteorder", "names"),
    [
        ("x86_64", "little", ["linux-kernel-jit", "linux-kernel-interp"]),
        ("aarch64", "little", ["linux-kernel-jit@arm64", "linux-kernel-interp@arm64"]),
        ("s390x", "big", ["linux-kernel-jit@s390x", "linux-kernel-interp@s390x"]),
    ],
)
def test_a_kernel_of_another_architecture_is_its_own_engine(machine: str, byteorder: str, names: list[str]) -> None:
    modes = {"jit": True, "interpreter": True, "why": ""}
    target = _Failing(answer={**KERNEL, "machine": machine, "byteorder": byteorder, "modes": modes})
    engines, _why = kernel_engines(target)  # type: ignore[arg-type]
    assert [e.name for e in engines] == names
    assert {(e.arch, e.byteorder) for e in engines} == {(machine, byteorder)}
    assert kernel_engine(target, "linux-kernel-interp").name == names[1]  # type: ignore[arg-type]


def test_programs_and_the_adapter_are_encoded_in_the_kernels_byte_order(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[bytes] = []

    def refuse(prog_type: int, code: bytes, log: object = None) -> tuple[int, int]:
        loaded.append(code)
        return -1, 22

    monkeypatch.setattr(isa_run.sys, "byteorder", "big")
    monkeypatch.setattr(isa_run.bpf, "try_prog_load", refuse)
    program = X.assemble([X.mov64_imm(0, 1), X.exit_()])
    isa_run._run_one(program, b"", map_fd=3, jit=None, log=isa_run.bpf.LogBuffer(), prologues={})
    code = loaded[0]
    assert code[-16:] == X.assemble([X.mov64_imm(0, 1), X.exit_()], "big")
    assert code[:8] == X.encode(X.ldx_mem("W", 6, 1, 0), "big") != X.encode(X.ldx_mem("W", 6, 1, 0))


@pytest.mark.parametrize(("jit", "jited_len", "says"), [(False, 64, "JIT-compiled"), (True, 0, "interpreted")])
def test_a_program_run_in_the_other_mode_than_its_engine_is_an_error(
    monkeypatch: pytest.MonkeyPatch, jit: bool, jited_len: int, says: str
) -> None:
    """The engine check behind the JIT/interpreter split: a row of one engine never carries the other's r0."""
    closed: list[int] = []
    info = bytearray(256)
    info[16:20] = jited_len.to_bytes(4, isa_run.sys.byteorder)  # struct bpf_prog_info.jited_prog_len
    monkeypatch.setattr(isa_run.bpf, "try_prog_load", lambda prog_type, code, log=None: (7, 0))
    monkeypatch.setattr(isa_run.bpf, "obj_get_info_by_fd", lambda fd, size: bytes(info))
    monkeypatch.setattr(isa_run.bpf, "close", closed.append)
    ran = isa_run.bpf.TestRun(isa_run.XDP_PASS, 0, b"", b"")
    monkeypatch.setattr(isa_run.bpf, "prog_test_run", lambda fd, packet, data_out_size: ran)
    monkeypatch.setattr(isa_run.bpf, "map_lookup", lambda fd, key, size: (42).to_bytes(8, isa_run.sys.byteorder))
    program = X.assemble([X.mov64_imm(0, 42), X.exit_()])
    args = {"map_fd": 3, "log": isa_run.bpf.LogBuffer(), "prologues": {}}
    assert isa_run._run_one(program, b"", jit=jit, **args) == {"error": f"the kernel ran the program {says}"}
    assert isa_run._run_one(program, b"", jit=not jit, **args) == {"r0": 42}  # the same program, the engine's mode
    assert closed == [7, 7]  # the program is released either way


@pytest.mark.parametrize(
    ("atomics", "isa", "groups", "cpu_version"),
    [
        (True, {"v1": "available", "v2": "available", "v3": "available", "v4": "available"}, ATOMIC_GROUPS, 4),
        (False, {"v1": "available", "v2": "available", "v3": "unsupported", "v4": "unsupported"}, set(), 2),
        (True, {"v1": "available", "v2": "inconclusive", "v3": "available", "v4": "unsupported"}, ATOMIC_GROUPS, 1),
    ],
)
def test_the_claims_are_what_the_kernels_probes_found(
    atomics: bool, isa: dict[str, str], groups: frozenset[str], cpu_version: int
) -> None:
    """A kernel whose verifier refuses the extended atomics (before 5.12) claims no atomic group, so its atomic cases
    skip with the reason instead of failing; the cpu version stops at the first version not found available."""
    engine = KernelEngine(None, False, {**KERNEL, "atomics": atomics, "isa": isa})  # type: ignore[arg-type]
    assert engine.groups == {"base32", "base64", "divmul32", "divmul64"} | groups  # never "packet" (XDP has none)
    assert engine.cpu_version == cpu_version
