"""The dpdk-interp and dpdk-jit ISA engines (librte_bpf through ctypes in a worker process): known r0, refusals as
errors, and a library crash, hang or garbage contained as EngineCrash while the next case still runs."""

from __future__ import annotations

import ctypes.util
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpfcert import insn as X
from bpfcert.errors import RunnerProtocolError
from bpfcert.isa import dpdk_engine
from bpfcert.isa.dpdk_engine import DpdkEngine
from bpfcert.isa.engine import EngineCrash, Outcome
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.protocol import Failure
from bpfcert.targets.host import HostTarget
from tests.isa_programs import PROGRAMS, Program

pytestmark = pytest.mark.skipif(
    ctypes.util.find_library("rte_bpf") is None, reason="librte_bpf (Debian librte-bpf23) is not installed"
)

ROOT = Path(__file__).resolve().parent.parent
EXIT_42 = X.assemble([X.mov64_imm(0, 42), X.exit_()])
NO_EXIT = X.assemble([X.mov64_imm(0, 1), X.alu64_imm("add", 0, 1)])  # conformance/isa/invalid-no-exit


@pytest.fixture(scope="module", params=[False, True], ids=["dpdk-interp", "dpdk-jit"])
def engine(request: pytest.FixtureRequest) -> Iterator[DpdkEngine]:
    engine = DpdkEngine(jit=request.param)
    yield engine
    engine.close()


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
def test_known_programs_give_their_r0(engine: DpdkEngine, program: Program) -> None:
    assert program.cpu_version <= engine.cpu_version
    assert engine.run(program.code, program.memory) == Outcome(program.r0, None)


def test_the_claims_are_what_the_library_runs(engine: DpdkEngine) -> None:
    assert engine.groups == {"base32", "base64", "divmul32", "divmul64"} and engine.cpu_version == 2
    jmp32 = X.assemble([X.mov64_imm(0, 1), X.jmp32_imm("jeq", 0, 1, 0), X.exit_()])  # v3: beyond the claim
    refused = engine.run(jmp32, b"")
    assert refused.r0 is None and refused.error == "librte_bpf refused the program: validate: invalid opcode at pc: 2"


def test_a_run_time_fault_is_an_error_or_a_wrong_r0(engine: DpdkEngine) -> None:
    """RFC 9669: a 32-bit modulo by zero leaves dst (zero-extended), here 7. librte_bpf's interpreter faults
    ("division by 0") and its JIT answers 0: both are findings, neither is a crash."""
    mod0 = X.assemble([X.ld_imm64(0, 0x100000007), X.mov64_imm(1, 0), X.alu32_reg("mod", 0, 1), X.exit_()])
    outcome = engine.run(mod0, b"")
    assert outcome != Outcome(7, None)
    assert outcome == Outcome(0, None) if engine.jit else (outcome.error or "").startswith("librte_bpf faulted")


def test_messages_carry_no_addresses_and_agree_between_runs(engine: DpdkEngine) -> None:
    """The library prints pointers (%p) in its refusals and faults; they are left out so that two runs' rows agree
    (report diff, expected failures), and what informs (function, cause, pc) stays."""
    loop = X.assemble([X.mov64_imm(0, 0), X.alu64_imm("add", 0, 1), X.jmp_imm("jlt", 0, 9, -2), X.exit_()])
    refused = engine.run(loop, b"").error
    assert refused == "librte_bpf refused the program: validate: loops detected; | loop at pc:3 --> pc:2;"
    other = DpdkEngine(jit=engine.jit)  # another worker: other addresses
    try:
        assert other.run(loop, b"").error == refused
    finally:
        other.close()
    if not engine.jit:
        div0 = X.assemble([X.ldx_mem("DW", 1, 1, 0), X.mov64_imm(0, 7), X.alu64_reg("div", 0, 1), X.exit_()])
        assert engine.run(div0, bytes(8)).error == "librte_bpf faulted: bpf_exec: division by 0 at pc: 0x18;"


def test_stable_keeps_opcodes_and_pcs_and_drops_addresses() -> None:
    assert dpdk_engine.stable("__rte_bpf_jit_x86(0x55d0c4a1b2c0) failed, error code: -22;") == (
        "__rte_bpf_jit_x86: failed, error code: -22;")
    assert dpdk_engine.stable("evaluate((nil)): invalid opcode 0xd4 at pc: 0x10;") == (
        "evaluate: invalid opcode 0xd4 at pc: 0x10;")
    assert dpdk_engine.stable("f(bpf=0x7f3a2c001000, mbuf=(nil), ofs=4, len=2): load beyond packet boundary") == (
        "f(bpf=<address>, mbuf=<address>, ofs=4, len=2): load beyond packet boundary")


def test_a_library_crash_is_contained_and_the_next_case_runs(engine: DpdkEngine) -> None:
    # unsigned INT64_MIN / 0xffffffffffffffff is 0, but librte_bpf divides with x86 idiv, which traps (SIGFPE)
    trap = X.assemble([X.ld_imm64(0, 1 << 63), X.alu64_imm("div", 0, -1), X.exit_()])
    with pytest.raises(EngineCrash, match=r"librte_bpf worker died running the case \(killed by SIGFPE\)"):
        engine.run(trap, b"")
    assert engine.run(EXIT_42, b"") == Outcome(42, None)


def test_a_program_that_falls_off_its_end_is_the_same_crash_every_run(
    engine: DpdkEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """librte_bpf 22.11 walks one node past its validator's node array on a program without exit, writing into
    the next heap block, then refuses the program. Whether that surfaced (a refusal, an abort in this case or in a
    later one) depended on the heap layout, which the harness's environment moved about; now glibc aborts in the
    case every time, whatever the harness's environment and whether the worker ran other cases first."""
    crashes = set()
    for run in range(6):
        monkeypatch.setenv("BPFCERT_TEST_PADDING", "x" * (run * 300))  # the harness's environment, of another size
        if run % 2:
            assert engine.run(EXIT_42, b"") == Outcome(42, None)  # a worker that ran a case before
        with pytest.raises(EngineCrash) as crash:
            engine.run(NO_EXIT, b"")
        crashes.add(str(crash.value))
    assert len(crashes) == 1, crashes
    assert re.fullmatch(
        rf"{engine.name}: the librte_bpf worker died running the case \(killed by SIGABRT\): "
        r"validate: unreachable instructions; \| (free|malloc)\(\): .+",
        crashes.pop(),
    )
    assert engine.run(EXIT_42, b"") == Outcome(42, None)


def _fake_worker(engine: DpdkEngine, code: str) -> None:
    engine._worker = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def test_a_hung_or_garbled_worker_is_an_engine_crash() -> None:
    engine = DpdkEngine(jit=False, timeout=0.5)
    try:
        _fake_worker(engine, "import time; time.sleep(60)")
        with pytest.raises(EngineCrash, match=r"did not answer within 0.5 s \(killed by SIGKILL\)"):
            engine.run(EXIT_42, b"")
        engine.timeout = 60.0  # a fresh python worker may take seconds to start on a loaded machine
        _fake_worker(engine, "import sys; sys.stdin.readline(); print('hello', flush=True); sys.stdin.read()")
        with pytest.raises(EngineCrash, match="answered garbage: b'hello"):
            engine.run(EXIT_42, b"")
        assert engine.run(EXIT_42, b"") == Outcome(42, None)
    finally:
        engine.close()


def test_a_missing_library_is_an_engine_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dpdk_engine.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(EngineCrash, match=r"librte_bpf.so.23 is not installed \(Debian package librte-bpf23\)"):
        DpdkEngine(jit=True).run(EXIT_42, b"")


def test_the_dpdk_runner_speaks_exec() -> None:
    """runners/dpdk through the runner protocol: r0, a refusal as the command's failure, a crash ends the runner."""
    runner = discovery.load(ROOT / "runners" / "dpdk").with_env({"BPFCERT_DPDK_JIT": "1"})
    client = RunnerClient.start(HostTarget(), runner)
    try:
        assert client.hello is not None and client.hello.runtime.name == "dpdk-jit"
        assert client.exec(EXIT_42) == 42
        jmp32 = X.assemble([X.jmp32_imm("jeq", 1, 0, 0), X.exit_()])
        assert client.exec(jmp32) == Failure(
            "verifier-rejected", "librte_bpf refused the program: validate: invalid opcode at pc: 1"
        )
        shift = X.assemble([X.mov64_imm(0, 1), X.alu64_imm("lsh", 0, 0x7FFF), X.exit_()])  # its JIT's code faults
        with pytest.raises(RunnerProtocolError, match="EngineCrash: dpdk-jit: the librte_bpf worker died"):
            client.exec(shift)
    finally:
        client.close()
