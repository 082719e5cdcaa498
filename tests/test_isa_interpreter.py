"""The RFC 9669 reference interpreter: each edge case the RFC spells out, checked against values worked out by
hand; each ALU and jump operation against an independent arithmetic model of the RFC's formulas (Hypothesis);
the refusals and faults that make an Outcome error instead of a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfcert import insn as b
from bpfcert.isa.interpreter import DEFAULT_BUDGET, MEMORY_ADDRESS, STACK_TOP, Fault, ReferenceEngine, load

M64, M32 = (1 << 64) - 1, (1 << 32) - 1
INT64_MIN, INT32_MIN = 1 << 63, 1 << 31


def run(*insns: b.Insn, memory: bytes = b"", budget: int = DEFAULT_BUDGET) -> int | str:
    """r0, or the error text."""
    outcome = ReferenceEngine(budget).run(b.assemble(insns), memory)
    assert (outcome.r0 is None) != (outcome.error is None)
    return outcome.r0 if outcome.r0 is not None else str(outcome.error)


def raw(opcode: int, dst: int = 0, src: int = 0, offset: int = 0, imm: int = 0) -> b.Insn:
    return b.Insn(0, opcode, dst, src, offset, imm)


def ld64(reg: int, value: int) -> b.Insn:
    return b.ld_imm64(reg, value)


EXIT = b.exit_()

CASES = {
    # Division and modulo by zero (RFC 9669 4.1): div gives 0, mod leaves dst (ALU: zero-extended).
    "div64 by zero reg": ([b.mov64_imm(0, 7), b.mov64_imm(1, 0), b.alu64_reg("div", 0, 1), EXIT], 0),
    "div32 by zero imm": ([b.mov64_imm(0, 7), b.alu32_imm("div", 0, 0), EXIT], 0),
    "mod64 by zero": ([ld64(0, 0x1_0000_0007), b.mov64_imm(1, 0), b.alu64_reg("mod", 0, 1), EXIT], 0x1_0000_0007),
    "mod32 by zero": ([ld64(0, 0x1_0000_0007), b.mov64_imm(1, 0), b.alu32_reg("mod", 0, 1), EXIT], 7),
    "div32 ignores high divisor bits": (
        [b.mov64_imm(0, 12), ld64(1, 0x1_0000_0000), b.alu32_reg("div", 0, 1), EXIT],
        0,
    ),
    "div64 negative imm is huge": ([b.mov64_imm(0, -1), b.alu64_imm("div", 0, -1), EXIT], 1),
    "div32 negative imm is u32": ([b.mov64_imm(0, 8), b.alu32_imm("div", 0, -1), EXIT], 0),
    # Signed division (v4): truncation, INT_MIN / -1 wraps, INT_MIN % -1 is 0, by zero as unsigned.
    "sdiv64 truncates": ([b.mov64_imm(0, -7), raw(0x37, 0, 0, 1, 2), EXIT], (-3) & M64),
    "smod64 sign of dividend": ([b.mov64_imm(0, -7), raw(0x97, 0, 0, 1, 2), EXIT], (-1) & M64),
    "sdiv64 INT_MIN / -1": ([ld64(0, INT64_MIN), raw(0x37, 0, 0, 1, -1), EXIT], INT64_MIN),
    "smod64 INT_MIN % -1": ([ld64(0, INT64_MIN), raw(0x97, 0, 0, 1, -1), EXIT], 0),
    "sdiv32 INT_MIN / -1": ([b.mov64_imm(0, INT32_MIN), raw(0x34, 0, 0, 1, -1), EXIT], INT32_MIN),
    "sdiv32 by zero": ([b.mov64_imm(0, -5), b.mov64_imm(1, 0), raw(0x3C, 0, 1, 1), EXIT], 0),
    "smod32 by zero zero-extends": ([b.mov64_imm(0, -5), b.mov64_imm(1, 0), raw(0x9C, 0, 1, 1), EXIT], (-5) & M32),
    # Shifts are masked to 63 / 31.
    "lsh64 masks to 63": ([b.mov64_imm(0, 1), b.mov64_imm(1, 65), b.alu64_reg("lsh", 0, 1), EXIT], 2),
    "lsh32 masks to 31": ([b.mov64_imm(0, 1), b.alu32_imm("lsh", 0, 33), EXIT], 2),
    "rsh32 of high bits": ([ld64(0, 0xFFFF_FFFF_0000_0010), b.alu32_imm("rsh", 0, 4), EXIT], 1),
    "arsh32 sign of bit 31": ([b.mov64_imm(0, INT32_MIN), b.alu32_imm("arsh", 0, 4), EXIT], 0xF800_0000),
    "arsh64": ([b.mov64_imm(0, -16), b.alu64_imm("arsh", 0, 2), EXIT], (-4) & M64),
    # 32-bit results are zero-extended; 64-bit immediates sign-extended.
    "add32 zero-extends": ([b.mov64_imm(0, -1), b.alu32_imm("add", 0, 0), EXIT], M32),
    "mov32 zero-extends": ([b.mov64_imm(0, -1), b.alu32_reg("mov", 0, 0), EXIT], M32),
    "mov64 sign-extends imm": ([b.mov64_imm(0, -2), EXIT], (-2) & M64),
    "neg32": ([b.mov64_imm(0, 1), raw(0x84), EXIT], M32),
    "neg64": ([b.mov64_imm(0, 1), raw(0x87), EXIT], M64),
    "mul32 wraps": ([b.mov64_imm(0, 0x10000), b.alu32_imm("mul", 0, 0x10000), EXIT], 0),
    # Byte swaps: le truncates, be and bswap swap within their width.
    "le16 truncates": ([ld64(0, 0x1122_3344_5566_7788), raw(0xD4, 0, 0, 0, 16), EXIT], 0x7788),
    "le32 truncates": ([ld64(0, 0x1122_3344_5566_7788), raw(0xD4, 0, 0, 0, 32), EXIT], 0x5566_7788),
    "le64 no-op": ([ld64(0, 0x1122_3344_5566_7788), raw(0xD4, 0, 0, 0, 64), EXIT], 0x1122_3344_5566_7788),
    "be16": ([ld64(0, 0x1122_3344_5566_7788), raw(0xDC, 0, 0, 0, 16), EXIT], 0x8877),
    "be32": ([ld64(0, 0x1122_3344_5566_7788), raw(0xDC, 0, 0, 0, 32), EXIT], 0x8877_6655),
    "be64": ([ld64(0, 0x1122_3344_5566_7788), raw(0xDC, 0, 0, 0, 64), EXIT], 0x8877_6655_4433_2211),
    "bswap32": ([ld64(0, 0x1122_3344_5566_7788), raw(0xD7, 0, 0, 0, 32), EXIT], 0x8877_6655),
    # Sign extension (v4): movsx and the sign-extending loads.
    "movsx8 64": ([b.mov64_imm(1, 0x80), raw(0xBF, 0, 1, 8), EXIT], (-128) & M64),
    "movsx16 32": ([b.mov64_imm(1, 0x8000), raw(0xBC, 0, 1, 16), EXIT], 0xFFFF_8000),
    "movsx32 64": ([b.mov64_imm(1, INT32_MIN), raw(0xBF, 0, 1, 32), EXIT], (-(1 << 31)) & M64),
    "ldxsb": ([raw(0x91, 0, 1, 0), EXIT], (-2) & M64),
    "ldxsh": ([b.st_mem("H", 1, 2, 0x8001), raw(0x89, 0, 1, 2), EXIT], (0x8001 - 0x10000) & M64),
    "ldxsw positive": ([raw(0x81, 0, 1, 0), EXIT], 0x0403_02FE),
    # lddw
    "lddw": ([ld64(0, 0xDEAD_BEEF_0123_4567), EXIT], 0xDEAD_BEEF_0123_4567),
    # Memory at offsets and sizes (little-endian), stores through r10.
    "ldxh at offset": ([b.ldx_mem("H", 0, 1, 2), EXIT], 0x0403),
    "ldxdw": ([b.ldx_mem("DW", 0, 1, 0), EXIT], 0x0807_0605_0403_02FE),
    "stx then ldx on stack": (
        [ld64(2, 0x1122_3344_5566_7788), b.stx_mem("DW", 10, 2, -8), b.ldx_mem("W", 0, 10, -4), EXIT],
        0x1122_3344,
    ),
    "st imm truncated": ([b.st_mem("B", 1, 0, 0x1FF), b.ldx_mem("W", 0, 1, 0), EXIT], 0x0403_02FF),
    "r2 is the memory length": ([b.mov64_reg(0, 2), EXIT], 8),
    "r1 is the memory address": ([b.mov64_reg(0, 1), EXIT], MEMORY_ADDRESS),
    "r10 is the stack top": ([b.mov64_reg(0, 10), EXIT], STACK_TOP),
    # Atomics: fetch returns the old value (32-bit: zero-extended); cmpxchg compares with r0.
    "atomic add64": (
        [b.mov64_imm(2, 5), b.atomic("DW", "add", 1, 2, 0), b.ldx_mem("DW", 0, 1, 0), EXIT],
        0x0807_0605_0403_02FE + 5,
    ),
    "atomic fetch_add32 old value": (
        [b.mov64_imm(2, -1), b.atomic("W", "fetch_add", 1, 2, 0), b.mov64_reg(0, 2), EXIT],
        0x0403_02FE,
    ),
    "atomic fetch_add32 wraps": (
        [b.mov64_imm(2, 0x02), b.atomic("W", "fetch_add", 1, 2, 0), b.ldx_mem("W", 0, 1, 0), EXIT],
        0x0403_0300,
    ),
    "atomic fetch_or/and/xor": (
        [
            b.mov64_imm(2, 0x0F),
            b.atomic("DW", "fetch_or", 1, 2, 0),
            b.mov64_imm(3, 0xF0),
            b.atomic("DW", "and", 1, 3, 0),
            b.mov64_imm(4, 0x11),
            b.atomic("DW", "fetch_xor", 1, 4, 0),
            b.ldx_mem("B", 0, 1, 0),
            b.alu64_imm("lsh", 0, 8),
            b.alu64_reg("or", 0, 4),
            EXIT,
        ],
        0xE1F0,
    ),
    "atomic xchg": ([b.mov64_imm(2, 9), b.atomic("W", "xchg", 1, 2, 4), b.ldx_mem("W", 0, 1, 4), EXIT], 9),
    "atomic cmpxchg hit": (
        [
            ld64(0, 0x0807_0605_0403_02FE),
            b.mov64_imm(2, 3),
            b.atomic("DW", "cmpxchg", 1, 2, 0),
            b.ldx_mem("DW", 0, 1, 0),
            EXIT,
        ],
        3,
    ),
    "atomic cmpxchg miss leaves old in r0": (
        [b.mov64_imm(0, 1), b.mov64_imm(2, 3), b.atomic("W", "cmpxchg", 1, 2, 0), EXIT],
        0x0403_02FE,
    ),
    # Jumps: signed and unsigned, 32-bit forms compare the low halves, immediates sign-extended for JMP.
    "jsgt signed": ([b.mov64_imm(0, 1), b.mov64_imm(1, -1), b.jmp_imm("jsgt", 1, 0, 1), b.mov64_imm(0, 2), EXIT], 2),
    "jgt unsigned": ([b.mov64_imm(0, 1), b.mov64_imm(1, -1), b.jmp_imm("jgt", 1, 0, 1), b.mov64_imm(0, 2), EXIT], 1),
    "jeq imm sign-extended": (
        [b.mov64_imm(0, 1), b.mov64_imm(1, -1), b.jmp_imm("jeq", 1, -1, 1), b.mov64_imm(0, 2), EXIT],
        1,
    ),
    "jeq32 low halves": (
        [b.mov64_imm(0, 1), ld64(1, 0x5_0000_0007), b.jmp32_imm("jeq", 1, 7, 1), b.mov64_imm(0, 2), EXIT],
        1,
    ),
    "jslt32 sign of bit 31": (
        [b.mov64_imm(0, 1), b.mov64_imm(1, INT32_MIN), b.jmp32_imm("jslt", 1, 0, 1), b.mov64_imm(0, 2), EXIT],
        1,
    ),
    "jset": ([b.mov64_imm(0, 1), b.mov64_imm(1, 6), b.jmp_imm("jset", 1, 8, 1), b.mov64_imm(0, 2), EXIT], 2),
    "gotol": ([b.mov64_imm(0, 1), raw(0x06, imm=1), b.mov64_imm(0, 2), EXIT], 1),
    # A bounded loop: 10 + 9 + ... + 1.
    "bounded loop": (
        [
            b.mov64_imm(0, 0),
            b.mov64_imm(1, 10),
            b.alu64_reg("add", 0, 1),
            b.alu64_imm("sub", 1, 1),
            b.jmp_imm("jne", 1, 0, -3),
            EXIT,
        ],
        55,
    ),
    # Local calls: r6-r9 preserved, a fresh frame (r10 - 512), r0 returned, nested calls.
    "local call": (
        [
            b.mov64_imm(6, 3),
            b.mov64_imm(1, 4),
            b.call_local(2),
            b.alu64_reg("add", 0, 6),
            EXIT,
            b.mov64_imm(6, 100),
            b.mov64_reg(0, 1),
            b.alu64_imm("mul", 0, 10),
            EXIT,
        ],
        43,
    ),
    "callee frame is below the caller's": (
        [b.call_local(1), EXIT, b.mov64_reg(0, 10), EXIT],
        STACK_TOP - 512,
    ),
    "caller's stack survives a call": (
        [
            b.st_mem("DW", 10, -8, 77),
            b.call_local(2),
            b.ldx_mem("DW", 0, 10, -8),
            EXIT,
            b.st_mem("DW", 10, -8, 1),
            EXIT,
        ],
        77,
    ),
    # Legacy packet loads (group packet): big-endian, out of bounds ends the program with 0.
    "ldabsh big-endian": ([raw(0x28, imm=2), EXIT], 0x0304),
    "ldindb": ([b.mov64_imm(3, 1), raw(0x50, 0, 3, 0, 2), EXIT], 0x04),
    "ldabsw out of bounds ends with 0": ([b.mov64_imm(0, 9), raw(0x20, imm=6), b.mov64_imm(0, 1), EXIT], 0),
}
MEMORY = bytes([0xFE, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08])


@pytest.mark.parametrize("name", CASES)
def test_rfc_edge_cases(name: str) -> None:
    insns, expected = CASES[name]
    assert run(*insns, memory=MEMORY) == expected


REFUSED = {
    "unknown opcode": ([raw(0xFF), EXIT], "(0xff): unknown"),
    "jump outside": ([b.ja(5), EXIT], "outside the program"),
    "jump into lddw": ([b.ja(1), ld64(0, 1), EXIT], "inside a lddw"),
    "write to r10": ([b.mov64_imm(10, 1), EXIT], "r10 is read-only"),
    "register r11": ([b.mov64_reg(0, 11), EXIT], "r11 does not exist"),
    "falls off the end": ([b.mov64_imm(0, 1)], "run off the end"),
    "conditional jump last": ([b.jmp_imm("jeq", 0, 0, -1)], "run off the end"),
    "helper call": ([b.call(1), EXIT], "helper function 1 is not available"),
    "kfunc call": ([b.call_kfunc(42), EXIT], "kfunc 42 is not available"),
    "callx": ([raw(0x8D, 2), EXIT], "through a register"),
    "lddw map fd": ([b.ld_map_fd(1, 3), EXIT], "pseudo source 1"),
    "neg with a source register": ([raw(0x8F), EXIT], "neg takes no source"),
    "div offset 2": ([raw(0x37, 0, 0, 2, 1), EXIT], "offset 2 is not defined for div"),
    "movsx from imm": ([raw(0xB7, 0, 0, 8, 1), EXIT], "offset 8 is not defined for mov"),
    "le width 8": ([raw(0xD4, 0, 0, 0, 8), EXIT], "width 8"),
    "ldxdw sign-extending": ([raw(0x99, 0, 1), EXIT], "unknown load"),
    "may_goto": ([raw(0xE5), EXIT], "unknown jump"),
    "empty": ([], "empty"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refusals(name: str) -> None:
    insns, reason = REFUSED[name]
    result = run(*insns)
    assert isinstance(result, str) and reason in result


def test_undecodable_bytes_are_refused_not_raised() -> None:
    assert "multiple of 8" in str(ReferenceEngine().run(b"\x95\x00\x00", b"").error)
    assert "truncated" in str(ReferenceEngine().run(b"\x18" + bytes(7), b"").error)


def test_faults() -> None:
    assert "outside the memory" in str(run(b.ldx_mem("W", 0, 1, 6), EXIT, memory=MEMORY))
    assert "outside the memory" in str(run(b.ldx_mem("B", 0, 10, 0), EXIT))  # just above the stack
    assert "outside the memory" in str(run(b.stx_mem("B", 1, 0, -1), EXIT, memory=MEMORY))
    assert "outside the memory" in str(run(b.ldx_mem("B", 0, 1, 0), EXIT))  # no memory at all
    assert "budget of 100 exhausted" in str(run(b.ja(-1), EXIT, budget=100))
    recursive = [b.call_local(-1), EXIT]
    assert "deeper than 8 frames" in str(run(*recursive))
    seven_deep = [b.mov64_imm(1, 7), b.jmp_imm("jeq", 1, 0, 3), b.alu64_imm("sub", 1, 1), b.call_local(-3), EXIT, EXIT]
    assert run(*seven_deep) == 0


def test_instruction_count_and_cache() -> None:
    program = b.assemble(
        [b.mov64_imm(0, 0), b.mov64_imm(1, 3), b.alu64_imm("sub", 1, 1), b.jmp_imm("jne", 1, 0, -2), EXIT]
    )
    assert load(program) is load(program)
    assert load(program).run(b"").instructions == 2 + 3 * 2 + 1
    assert load(program).run(b"", budget=9).r0 == 0
    with pytest.raises(Fault, match="budget of 8"):
        load(program).run(b"", budget=8)


def test_memory_is_not_shared_between_runs() -> None:
    program = b.assemble([b.ldx_mem("B", 0, 1, 0), b.st_mem("B", 1, 0, 99), EXIT])
    assert [ReferenceEngine().run(program, b"\x05").r0 for _ in range(2)] == [5, 5]


# An independent model of RFC 9669 section 4.1 and 4.3, operand by operand, for the property tests below.
def _s(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def model_alu(op: str, dst: int, src: int, bits: int) -> int:
    mask = (1 << bits) - 1
    d, s = dst & mask, src & mask
    value = {
        "add": lambda: d + s,
        "sub": lambda: d - s,
        "mul": lambda: d * s,
        "div": lambda: d // s if s else 0,
        "mod": lambda: d % s if s else d,
        "sdiv": lambda: _trunc_div(_s(d, bits), _s(s, bits)) if s else 0,
        "smod": lambda: _s(d, bits) - _trunc_div(_s(d, bits), _s(s, bits)) * _s(s, bits) if s else d,
        "or": lambda: d | s,
        "and": lambda: d & s,
        "xor": lambda: d ^ s,
        "lsh": lambda: d << (s % bits),
        "rsh": lambda: d >> (s % bits),
        "arsh": lambda: _s(d, bits) >> (s % bits),
        "mov": lambda: s,
    }[op]()
    return value & mask


def model_jump(op: str, dst: int, src: int, bits: int) -> bool:
    mask = (1 << bits) - 1
    d, s = dst & mask, src & mask
    sd, ss = _s(d, bits), _s(s, bits)
    return {
        "jeq": d == s, "jne": d != s, "jgt": d > s, "jge": d >= s, "jlt": d < s, "jle": d <= s,
        "jset": bool(d & s), "jsgt": sd > ss, "jsge": sd >= ss, "jslt": sd < ss, "jsle": sd <= ss,
    }[op]  # fmt: skip


ALU_OPS = ["add", "sub", "mul", "div", "mod", "sdiv", "smod", "or", "and", "xor", "lsh", "rsh", "arsh", "mov"]
JUMP_OPS = ["jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle"]
EDGES = [0, 1, 2, 31, 32, 63, 64, M32, INT32_MIN, INT32_MIN - 1, INT64_MIN, M64, M64 - 1]
values = st.one_of(st.sampled_from(EDGES), st.integers(0, M64))


def _alu_insn(op: str, wide: bool, imm: int | None) -> b.Insn:
    signed = op in ("sdiv", "smod")
    code = b.ALU_OPS.index(op[1:] if signed else op) << 4 | (7 if wide else 4) | (0 if imm is not None else 8)
    return raw(code, 0, 1, 1 if signed else 0, imm or 0)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALU_OPS), st.booleans(), values, values, st.booleans())
def test_alu_matches_the_rfc_formulas(op: str, wide: bool, dst: int, src: int, use_imm: bool) -> None:
    imm = _s(src, 32) if use_imm else None
    operand = (imm & M64) if use_imm and wide else src  # ALU64 sign-extends imm; ALU uses its low 32 bits
    bits = 64 if wide else 32
    program = [ld64(0, dst), ld64(1, src), _alu_insn(op, wide, imm), EXIT]
    assert run(*program) == model_alu(op, dst, operand, bits)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(JUMP_OPS), st.booleans(), values, values, st.booleans())
def test_jumps_match_the_rfc_formulas(op: str, wide: bool, dst: int, src: int, use_imm: bool) -> None:
    code = b.JMP_OPS.index(op) << 4 | (5 if wide else 6) | (0 if use_imm else 8)
    imm = _s(src, 32) if use_imm else 0
    operand = (imm & M64) if use_imm else src
    program = [ld64(2, dst), ld64(1, src), b.mov64_imm(0, 0), raw(code, 2, 1, 1, imm), EXIT, b.mov64_imm(0, 1), EXIT]
    assert run(*program) == int(model_jump(op, dst, operand, 64 if wide else 32))


def _big(*insns: b.Insn, memory: bytes = b"") -> int | None:
    return ReferenceEngine(byteorder="big").run(b.assemble(insns), memory).r0


def test_a_big_endian_machine_reads_and_writes_memory_most_significant_byte_first() -> None:
    from tests.isa_programs import BIG_ENDIAN_R0, PROGRAMS

    mem = bytes(range(1, 11))
    assert _big(b.ldx_mem("W", 0, 1, 0), EXIT, memory=mem) == 0x01020304
    assert _big(b.ldx_mem("H", 0, 1, 8), EXIT, memory=mem) == 0x090A
    assert _big(b.ldx_mem("H", 0, 1, 8), EXIT, memory=mem) != run(b.ldx_mem("H", 0, 1, 8), EXIT, memory=mem)
    # a store then a load of another width: the low byte lands at the highest address
    assert _big(b.mov64_imm(3, 0x1234), b.stx_mem("W", 10, 3, -4), b.ldx_mem("B", 0, 10, -1), EXIT) == 0x34
    assert _big(b.mov64_imm(3, 0x1234), b.stx_mem("W", 10, 3, -4), b.ldx_mem("B", 0, 10, -4), EXIT) == 0
    for program in PROGRAMS:
        outcome = ReferenceEngine(byteorder="big").run(program.code, program.memory)
        assert outcome.r0 == BIG_ENDIAN_R0.get(program.name, program.r0), program.name


def test_on_a_big_endian_machine_be_truncates_and_le_swaps() -> None:
    value = ld64(0, 0x1122_3344_5566_7788)
    assert _big(value, raw(0xDC, 0, 0, 0, 16), EXIT) == 0x7788  # be16: to the machine's own order
    assert _big(value, raw(0xD4, 0, 0, 0, 32), EXIT) == 0x8877_6655  # le32: swapped
    assert _big(value, raw(0xD7, 0, 0, 0, 16), EXIT) == 0x8877  # bswap does not depend on the machine


def test_an_unknown_byte_order_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown byte order"):
        ReferenceEngine(byteorder="middle")
