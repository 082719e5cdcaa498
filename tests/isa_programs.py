"""Hand-encoded ISA programs with their RFC 9669 r0, shared by the kernel and DPDK engine tests.

Each is (name, instructions, memory, expected r0, cpu version it needs). Expected values are worked out from
RFC 9669 by hand, not taken from any engine.
"""

from __future__ import annotations

from typing import NamedTuple

from bpfcert import insn as X
from bpfcert.insn import Insn


class Program(NamedTuple):
    name: str
    code: bytes
    memory: bytes
    r0: int
    cpu_version: int


def _p(name: str, insns: list[Insn], memory: bytes, r0: int, cpu_version: int = 1) -> Program:
    return Program(name, X.assemble(insns), memory, r0 & 0xFFFFFFFFFFFFFFFF, cpu_version)


PROGRAMS = [
    # the upper 32 bits must survive: XDP's own return value would drop them
    _p("lddw-64-bit-r0", [X.ld_imm64(0, 0xFEDCBA9876543210), X.exit_()], b"", 0xFEDCBA9876543210),
    _p("r2-is-memory-length", [X.mov64_reg(0, 2), X.exit_()], bytes(3), 3),
    _p("load-u64-at-offset", [X.ldx_mem("DW", 0, 1, 2), X.exit_()], bytes(range(1, 11)), 0x0A09080706050403),
    _p(
        "store-then-load",
        [X.mov64_imm(3, 0x5A), X.stx_mem("B", 1, 3, 1), X.ldx_mem("H", 0, 1, 0), X.exit_()],
        b"\x11\x22",
        0x5A11,
    ),
    _p("alu32-zero-extends", [X.mov64_imm(0, -1), X.alu32_imm("add", 0, 2), X.exit_()], b"", 1),
    _p("lsh64-by-63", [X.mov64_imm(0, 1), X.alu64_imm("lsh", 0, 63), X.exit_()], b"", 1 << 63),
    _p(
        "jlt-taken",
        [X.mov64_imm(0, 1), X.jmp_imm("jlt", 0, 2, 1), X.mov64_imm(0, 5), X.exit_()],
        b"",
        1,
        cpu_version=2,
    ),
]

# librte_bpf refuses these (division by a register it knows is 0, local calls, v3 and v4 instructions)
KERNEL_ONLY = [
    _p("div64-by-zero-is-zero", [X.mov64_imm(0, 7), X.mov64_imm(1, 0), X.alu64_reg("div", 0, 1), X.exit_()], b"", 0),
    _p(
        "mod32-by-zero-keeps-dst",
        [X.ld_imm64(0, 0x100000007), X.mov64_imm(1, 0), X.alu32_reg("mod", 0, 1), X.exit_()],
        b"",
        7,
    ),
    _p(
        "local-call",
        [X.mov64_imm(6, 4), X.call_local(2), X.alu64_reg("add", 0, 6), X.exit_(), X.mov64_imm(0, 38), X.exit_()],
        b"",
        42,
    ),
    _p(
        "jmp32-ignores-upper-half",
        [X.ld_imm64(1, 0x100000000), X.mov64_imm(0, 1), X.jmp32_imm("jeq", 1, 0, 1), X.mov64_imm(0, 2), X.exit_()],
        b"",
        1,
        cpu_version=3,
    ),
    _p(
        "atomic-fetch-add-on-stack",
        [
            X.st_mem("DW", 10, -8, 5),
            X.mov64_imm(0, 3),
            X.atomic("DW", "fetch_add", 10, 0, -8),
            X.ldx_mem("DW", 1, 10, -8),
            X.alu64_imm("lsh", 0, 8),
            X.alu64_reg("or", 0, 1),
            X.exit_(),
        ],
        b"",
        0x508,
        cpu_version=3,
    ),
    _p("sdiv64", [X.mov64_imm(0, -7), Insn(0, 0x37, 0, 0, 1, 2), X.exit_()], b"", -3, cpu_version=4),
]

# r0 of the programs above that read or write memory, on a big-endian machine (s390x), worked out by hand: memory
# is read most significant byte first
BIG_ENDIAN_R0 = {"load-u64-at-offset": 0x030405060708090A, "store-then-load": 0x115A}
