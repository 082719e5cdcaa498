"""DPDK's eBPF engine, `librte_bpf` (Debian librte-bpf23), as the ISA engines "dpdk-interp" and "dpdk-jit".

The library is called through ctypes without EAL initialisation (rte_bpf_load, rte_bpf_exec, rte_bpf_get_jit,
rte_bpf_destroy; struct layouts from DPDK 22.11's rte_bpf.h), in a worker process kept alive across cases: a
library crash (SIGFPE, SIGSEGV) or hang kills only the worker, becomes an EngineCrash for that case, and the next
case gets a fresh worker. The program's only argument is r1, a pointer to the case's memory (RTE_BPF_ARG_PTR of
its size); r2 = the memory's length is set by one `mov` prepended to the program, so the library's "pc" numbers
in refusals count that instruction. The library's refusals are written by its logger to the worker's stderr, a file
the engine reads to quote them (and, after a crash, what the library and glibc said last), without the addresses
they print (`stable`), so that two runs' rows agree.

A library bug that writes past a heap block must be the same verdict every run: the worker's environment is fixed
(`WORKER_ENV`: the harness's own would move the library's blocks about with its size) and glibc's per-thread cache is
off, so that every free() checks the block's neighbour and aborts (SIGABRT, glibc's message quoted) in the case that
did the damage, instead of in a later case or never. 22.11's validator does this on a program whose last
instruction falls through past its end (conformance/isa/invalid-no-exit): it lets that edge reach pc == the program's
length, walks a node one past its node array and writes into the next heap block's header, then refuses the program
("unreachable instructions"); with the cache on, the refusal came back (a PASS) or a later malloc aborted, by heap
layout.

What it claims (measured on 22.11): base32, base64, divmul32, divmul64 at cpu v2. Its validator refuses JMP32
(v3), every v4 instruction, atomics other than the v1 add (so no atomic group), local calls and loops; packet
loads need an mbuf argument, so not `packet`.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
from typing import IO, Any

from bpfcert.isa.engine import EngineCrash, Outcome

LIBRARY = "librte_bpf.so.23"
GROUPS = frozenset({"base32", "base64", "divmul32", "divmul64"})
CPU_VERSION = 2
CASE_TIMEOUT = 10.0  # seconds for one case, the worker's start included
RTE_BPF_ARG_PTR = 0x10
_MOV64_IMM_R2 = 0xB7 | 2 << 8  # opcode | dst_reg r2 << 8 in a little-endian slot, imm in the upper half
_CALLER = re.compile(r"(\w)\((?:0x[0-9a-fA-F]+|\(nil\))\):?")  # "validate(0x7ffe...)" / "bpf_exec((nil)):"
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]{9,}\b|\(nil\)")  # a %p wider than 32 bits (opcodes and pcs are not)
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PASSED_ON = ("LD_LIBRARY_PATH",)  # where a DPDK outside the system's library path is found
WORKER_ENV = {
    "PYTHONPATH": _ROOT,
    "GLIBC_TUNABLES": "glibc.malloc.tcache_count=0",  # every free() checks its neighbour
    "LIBC_FATAL_STDERR_": "1",  # glibc's abort message to stderr, not the terminal
}


def stable(log: str) -> str:
    """The library's `log` without the addresses (%p) it prints, which differ from run to run: "validate(0x7f...)
    loops detected;" is "validate: loops detected;", any other address "<address>"; opcodes and pcs stay."""
    return _ADDRESS.sub("<address>", _CALLER.sub(r"\1:", log))


def r2_prologue(memory_len: int) -> bytes:
    """`r2 = memory_len` as one instruction (mov64 r2, imm)."""
    return (_MOV64_IMM_R2 | memory_len << 32).to_bytes(8, "little")


class DpdkEngine:
    """librte_bpf's interpreter (`jit` False) or x86-64 JIT, one worker process for a run of cases."""

    groups = GROUPS
    cpu_version = CPU_VERSION
    byteorder: str = sys.byteorder  # the library runs in a worker on the host

    def __init__(self, jit: bool, timeout: float = CASE_TIMEOUT) -> None:
        self.jit = jit
        self.name = "dpdk-jit" if jit else "dpdk-interp"
        self.timeout = timeout
        self._worker: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._worker is None:
            if ctypes.util.find_library("rte_bpf") is None:
                raise EngineCrash(f"{self.name}: {LIBRARY} is not installed (Debian package librte-bpf23)")
            self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the worker
            self._worker = subprocess.Popen(
                [sys.executable, "-m", "bpfcert.isa.dpdk_engine"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env={**WORKER_ENV, **{k: os.environ[k] for k in PASSED_ON if k in os.environ}},
            )
        return self._worker

    def run(self, program: bytes, memory: bytes) -> Outcome:
        worker = self._start()
        assert worker.stdin is not None and worker.stdout is not None
        request = {"program": program.hex(), "memory": memory.hex(), "jit": self.jit}
        try:
            worker.stdin.write(json.dumps(request).encode() + b"\n")
            worker.stdin.flush()
        except BrokenPipeError:
            raise self._crash("died before the case") from None
        ready, _, _ = select.select([worker.stdout], [], [], self.timeout)
        if not ready:
            raise self._crash(f"did not answer within {self.timeout:g} s")
        line = worker.stdout.readline()
        if not line:
            raise self._crash("died running the case")
        try:
            answer = json.loads(line)
            return Outcome(int(answer["r0"]), None) if "r0" in answer else Outcome(None, str(answer["error"]))
        except (ValueError, KeyError, TypeError):
            raise self._crash(f"answered garbage: {line[:200]!r}") from None

    def _crash(self, what: str) -> EngineCrash:
        """Stop the worker (the next case starts another) and say how it ended."""
        worker, self._worker = self._worker, None
        assert worker is not None
        if worker.poll() is None:
            worker.kill()
        code = worker.wait()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        said = self._last_words()
        return EngineCrash(f"{self.name}: the librte_bpf worker {what} ({how})" + (f": {said}" if said else ""))

    def _last_words(self) -> str:
        """What the worker wrote to stderr in its last case (the library's log, glibc's abort message), stable."""
        stderr, self._stderr = self._stderr, None
        if stderr is None:
            return ""
        with stderr:
            stderr.seek(0)
            return _last_lines(stderr.read())

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            assert worker.stdin is not None
            worker.stdin.close()
            try:
                worker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            assert worker.stdout is not None
            worker.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


def _last_lines(log: bytes) -> str:
    """The last three non-blank lines of `log`, joined by " | ", without addresses."""
    lines = [line.strip() for line in log.decode("utf-8", "replace").splitlines() if line.strip()]
    return stable(" | ".join(lines[-3:]))


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The worker: one JSON request per line ({"program", "memory", "jit"}), one answer per line ({"r0"} or
    {"error"}), until end of input. Its stderr is a file (DpdkEngine's), emptied before each case."""
    import ctypes

    class Arg(ctypes.Structure):  # struct rte_bpf_arg
        _fields_ = [("type", ctypes.c_int), ("size", ctypes.c_size_t), ("buf_size", ctypes.c_size_t)]

    class Prm(ctypes.Structure):  # struct rte_bpf_prm
        _fields_ = [
            ("ins", ctypes.c_void_p),
            ("nb_ins", ctypes.c_uint32),
            ("xsym", ctypes.c_void_p),
            ("nb_xsym", ctypes.c_uint32),
            ("prog_arg", Arg),
        ]

    class Jit(ctypes.Structure):  # struct rte_bpf_jit
        _fields_ = [("func", ctypes.c_void_p), ("sz", ctypes.c_size_t)]

    lib = ctypes.CDLL(LIBRARY)
    lib.rte_bpf_load.restype = ctypes.c_void_p
    lib.rte_bpf_load.argtypes = [ctypes.POINTER(Prm)]
    lib.rte_bpf_exec.restype = ctypes.c_uint64
    lib.rte_bpf_exec.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.rte_bpf_get_jit.restype = ctypes.c_int
    lib.rte_bpf_get_jit.argtypes = [ctypes.c_void_p, ctypes.POINTER(Jit)]
    lib.rte_bpf_destroy.restype = None
    lib.rte_bpf_destroy.argtypes = [ctypes.c_void_p]
    jit_function = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p)

    def library_log() -> str:
        log.seek(0)
        said = _last_lines(log.read())
        log.seek(0)
        log.truncate()
        return said

    def run(program: bytes, memory: bytes, jit: bool) -> dict[str, Any]:
        code = r2_prologue(len(memory)) + program
        code_buf = ctypes.create_string_buffer(code, len(code))
        prm = Prm(ctypes.addressof(code_buf), len(code) // 8, None, 0, Arg(RTE_BPF_ARG_PTR, len(memory), 0))
        library_log()
        bpf = lib.rte_bpf_load(ctypes.byref(prm))
        if not bpf:
            return {"error": "librte_bpf refused the program: " + (library_log() or "rte_bpf_load failed")}
        library_log()  # what loading said; only what running says is a fault
        try:
            mem = ctypes.create_string_buffer(memory, max(len(memory), 1))
            if not jit:
                r0 = lib.rte_bpf_exec(bpf, mem)
            else:
                compiled = Jit()
                if lib.rte_bpf_get_jit(bpf, ctypes.byref(compiled)) != 0 or not compiled.func:
                    return {"error": "librte_bpf's JIT did not compile the program: " + library_log()}
                r0 = jit_function(compiled.func)(mem)
            faulted = library_log()  # rte_bpf_exec logs a run-time fault (division by zero...) and returns 0
            return {"error": f"librte_bpf faulted: {faulted}"} if faulted else {"r0": int(r0)}
        finally:
            lib.rte_bpf_destroy(bpf)

    with open(2, "r+b", buffering=0, closefd=False) as log:  # the library's logger writes to stderr
        for line in inp:
            request = json.loads(line)
            program, memory = bytes.fromhex(request["program"]), bytes.fromhex(request["memory"])
            if len(program) % 8 or not program:
                answer: dict[str, Any] = {"error": f"program of {len(program)} bytes is not whole instructions"}
            else:
                answer = run(program, memory, bool(request["jit"]))
            out.write(json.dumps(answer).encode() + b"\n")
            out.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
