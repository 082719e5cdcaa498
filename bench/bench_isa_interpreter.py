"""Benchmark the RFC 9669 reference interpreter (bpfcert/isa/interpreter.py), each figure beside a baseline
measured in the same run:

1. instructions per second in-process on a loop of ALU, stack and jump instructions (~1.4 M executed), against
   a naive interpreter that decodes once and dispatches on every instruction (written here, for the ops the
   loop uses only);
2. the one-off cost of translating a program of typical case size to Python;
3. a set of generated case-sized programs run in-process against the same programs through a bpf_conformance
   plugin (tests/data/isa_plugin.py, the same interpreter, one process per case as plugin-based suites do).

    python bench/bench_isa_interpreter.py [--cases N]

Prints figures; asserts nothing (target: >= 1 M instructions/s in-process).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bpfcert import insn as b  # noqa: E402
from bpfcert.isa.interpreter import Program, ReferenceEngine, load  # noqa: E402
from bpfcert.isa.plugin_engine import PluginEngine  # noqa: E402

M64 = (1 << 64) - 1
ITERATIONS = 200_000
LOOP = [
    b.mov64_imm(0, 0),
    b.mov64_imm(1, ITERATIONS),
    b.alu64_reg("add", 0, 1),
    b.alu64_imm("xor", 0, 5),
    b.stx_mem("DW", 10, 0, -8),
    b.ldx_mem("DW", 2, 10, -8),
    b.alu32_imm("lsh", 2, 3),
    b.alu64_imm("sub", 1, 1),
    b.jmp_imm("jne", 1, 0, -7),
    b.exit_(),
]


def naive(program: bytes) -> tuple[int, int]:
    """The baseline: decode once, then one dispatch per executed instruction (the loop's ops only)."""
    insns = b.decode(program)
    regs = [0] * 11
    regs[10] = 512
    stack = bytearray(512)
    pc = executed = 0
    while True:
        insn = insns[pc]
        executed += 1
        mnem, dst, src, imm = insn.mnemonic, insn.dst_reg, insn.src_reg, insn.imm
        value = regs[src] if insn.source == "X" else imm & M64
        if mnem == "exit":
            return regs[0], executed
        if mnem == "mov":
            regs[dst] = value
        elif mnem == "add":
            regs[dst] = (regs[dst] + value) & M64
        elif mnem == "sub":
            regs[dst] = (regs[dst] - value) & M64
        elif mnem == "xor":
            regs[dst] ^= value
        elif mnem == "lsh":
            regs[dst] = (regs[dst] << (value & 31)) & 0xFFFF_FFFF
        elif mnem == "stx":
            at = regs[dst] + insn.offset
            stack[at : at + 8] = regs[src].to_bytes(8, "little")
        elif mnem == "ldx":
            at = regs[src] + insn.offset
            regs[dst] = int.from_bytes(stack[at : at + 8], "little")
        elif mnem == "jne" and regs[dst] != value:
            pc += insn.offset
        pc += 1


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds / 1e6:.2f} M/s ({count} in {seconds * 1000:.0f} ms)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    args = parser.parse_args()
    program = b.assemble(LOOP)

    started = time.perf_counter()
    fast = load(program).run(b"", budget=10**8)
    fast_s = time.perf_counter() - started
    started = time.perf_counter()
    slow_r0, slow_count = naive(program)
    slow_s = time.perf_counter() - started
    assert (slow_r0, slow_count) == fast, "the baseline disagrees with the reference"
    print(f"instructions/s, reference (translated): {per_second(fast.instructions, fast_s)}")
    print(f"instructions/s, naive dispatch baseline: {per_second(slow_count, slow_s)}")
    print(f"  ratio: {slow_s / fast_s:.1f}x faster than the baseline")

    cases = generated(args.cases)
    translate = [timed(lambda p=p: Program(p)) for p, _ in cases]  # uncached: the one-off cost
    sizes = [len(p) // 8 for p, _ in cases]
    size, cost = statistics.median(sizes), statistics.median(translate) * 1000
    print(f"translation of a program of ~{size:.0f} instructions: median {cost:.1f} ms")

    engine = ReferenceEngine()
    started = time.perf_counter()
    in_process = [engine.run(p, m) for p, m in cases]  # cached translation, as a suite run re-runs cases
    in_s = time.perf_counter() - started
    plugin = PluginEngine([sys.executable, str(ROOT / "tests" / "data" / "isa_plugin.py")])
    started = time.perf_counter()
    by_process = [plugin.run(p, m) for p, m in cases]
    plugin_s = time.perf_counter() - started
    assert in_process == by_process, "the plugin disagrees with the in-process interpreter"
    cold = sum(translate) + in_s
    each = in_s / len(cases) * 1e6
    print(f"{len(cases)} cases in-process, translated before: {in_s * 1000:.1f} ms ({each:.0f} us a case)")
    print(f"{len(cases)} cases in-process, translation included: {cold * 1000:.0f} ms")
    each = plugin_s / len(cases) * 1000
    print(f"{len(cases)} cases, one plugin process each: {plugin_s * 1000:.0f} ms ({each:.0f} ms a case)")
    print(f"  ratio: {plugin_s / in_s:.0f}x faster in-process ({plugin_s / cold:.0f}x translation included)")
    return 0


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def generated(count: int) -> list[tuple[bytes, bytes]]:
    """`count` case-sized programs from the fuzzer's strategy, translated once (so that the in-process figure is
    what re-running a suite costs)."""
    from hypothesis.errors import NonInteractiveExampleWarning

    from bpfcert.isa.strategies import programs

    strategy = programs(frozenset({"base64", "atomic64", "divmul64"}), 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        cases = [strategy.example() for _ in range(count)]
    for program, _ in cases:
        load(program)
    return cases


if __name__ == "__main__":
    sys.exit(main())
