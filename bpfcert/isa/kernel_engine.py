"""The Linux kernel as ISA engines, "linux-kernel-jit" and "linux-kernel-interp", on any kernel target.

A case runs as an XDP program through BPF_PROG_TEST_RUN with its full 64-bit r0 captured in an array map (the
adapter is bpfcert.targets.isa_run, run through the target's "isa_run" op: in-process on the host, by the guest
agent in a VM). `run_batch` sends a whole case list in one op. A verifier refusal is an Outcome error quoting the
verifier log's last lines. The JIT and the interpreter are separate engines where net.core.bpf_jit_enable can be
switched; a kernel built with CONFIG_BPF_JIT_ALWAYS_ON offers only the JIT, and `kernel_engines` says so.

Architectures: the arm64 and s390x JITs and interpreters are other code than x86_64's, so on a kernel of another
architecture an engine's name carries it as `@ARCH` (Debian's name: "linux-kernel-jit@arm64",
"linux-kernel-interp@s390x"); x86_64's keep the plain names. A big-endian kernel is judged against the reference
interpreter of its byte order (`byteorder`, from the kernel).

Claims, from the kernel itself ("isa_kernel" op): base32, base64, divmul32, divmul64, and atomic32/atomic64 where
an atomic fetch-and-add loads (Linux 5.12); the cpu version is the highest of v1..v4 whose probe program loads.
Not `packet`: the legacy packet loads exist only for socket buffers, not XDP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bpfcert.errors import BpfcertError, TargetError
from bpfcert.isa.engine import EngineCrash, Outcome
from bpfcert.targets.machines import ARCHES

if TYPE_CHECKING:
    from bpfcert.targets.target import Target

BASE_GROUPS = frozenset({"base32", "base64", "divmul32", "divmul64"})
ATOMIC_GROUPS = frozenset({"atomic32", "atomic64"})
ENGINE_NAMES = ("linux-kernel-jit", "linux-kernel-interp")
NATIVE_ARCH = "x86_64"  # whose engines keep the plain names


def engine_name(base: str, machine: str) -> str:
    """`base` ("linux-kernel-jit"...) as the engine of a kernel on `machine` (`uname -m`): "linux-kernel-jit" on
    x86_64, "linux-kernel-jit@arm64" on aarch64 (Debian's architecture name where the machine table has one)."""
    if machine == NATIVE_ARCH:
        return base
    arch = ARCHES.get(machine)
    return f"{base}@{arch.debian if arch else machine}"


class KernelEngine:
    """One kernel target's JIT (`jit` True) or interpreter, described by `kernel` (the "isa_kernel" op's answer):
    `arch` is its `uname -m`, `byteorder` that of its memory."""

    def __init__(self, target: Target, jit: bool, kernel: dict[str, Any]) -> None:
        self.target = target
        self.jit = jit
        self.arch = str(kernel["machine"])
        self.byteorder = str(kernel["byteorder"])
        self.name = engine_name(ENGINE_NAMES[0] if jit else ENGINE_NAMES[1], self.arch)
        self.release = str(kernel["release"])
        self.groups = BASE_GROUPS | (ATOMIC_GROUPS if kernel["atomics"] else frozenset())
        isa = kernel["isa"]
        self.cpu_version = 0
        while self.cpu_version < 4 and isa.get(f"v{self.cpu_version + 1}") == "available":
            self.cpu_version += 1

    def run(self, program: bytes, memory: bytes) -> Outcome:
        return self.run_batch([(program, memory)])[0]

    def run_batch(self, cases: Sequence[tuple[bytes, bytes]]) -> list[Outcome]:
        """Every (program, memory) in one op on the target, one map; EngineCrash when the target fails."""
        try:
            answer = self.target.call("isa_run", cases=[[p.hex(), m.hex()] for p, m in cases], jit=self.jit)
        except TargetError as exc:
            raise EngineCrash(f"{self.name} on {self.target.name}: {exc}") from None
        outcomes = answer.get("outcomes") if isinstance(answer, dict) else None
        if not isinstance(outcomes, list) or len(outcomes) != len(cases):
            raise EngineCrash(f"{self.name} on {self.target.name}: the isa_run op answered garbage")
        return [Outcome(o["r0"], None) if "r0" in o else Outcome(None, str(o["error"])) for o in outcomes]

    def close(self) -> None:
        """Nothing to release: the target belongs to whoever opened it."""


def kernel_engines(target: Target) -> tuple[list[KernelEngine], str]:
    """The engines `target`'s kernel offers (JIT first, interpreter where it can be had) and, when one of them is
    missing, why (e.g. "the kernel is built with CONFIG_BPF_JIT_ALWAYS_ON ... no interpreter")."""
    try:
        kernel = target.call("isa_kernel")
    except TargetError as exc:
        raise EngineCrash(f"linux-kernel on {target.name}: {exc}") from None
    modes = kernel["modes"]
    engines = [KernelEngine(target, jit, kernel) for jit in (True, False) if modes["jit" if jit else "interpreter"]]
    return engines, str(modes["why"])


def kernel_engine(target: Target, name: str) -> KernelEngine:
    """The engine `name` ("linux-kernel-jit" or "linux-kernel-interp", as that of the target's architecture) on
    `target`; BpfcertError naming why the kernel has not that one."""
    if name not in ENGINE_NAMES:
        raise BpfcertError(f"unknown kernel engine {name!r} (known: {', '.join(ENGINE_NAMES)})")
    engines, why = kernel_engines(target)
    for engine in engines:
        if engine.jit == (name == ENGINE_NAMES[0]):
            return engine
    raise BpfcertError(f"{name} is not available on {target.name}: {why}")
