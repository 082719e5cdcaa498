"""The bpf_conformance-dialect assembler and disassembler: every RFC 9669 opcode family, labels, errors, round trip."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfcert import insn as bi
from bpfcert.errors import FormatError
from bpfcert.isa.asm import assemble, disassemble

# Dialect line -> the instruction in llvm-objdump's syntax (bpfcert.insn.disasm, itself checked against llvm-objdump),
# an oracle written independently of the assembler.
FORMS = [
    ("add %r1, 5", "r1 += 5"),
    ("add64 %r1, %r2", "r1 += r2"),
    ("sub32 %r1, -3", "w1 -= -3"),
    ("mul %r3, %r4", "r3 *= r4"),
    ("div32 %r1, 7", "w1 /= 7"),
    ("sdiv %r1, %r2", "r1 s/= r2"),
    ("sdiv32 %r1, -2", "w1 s/= -2"),
    ("mod %r1, 3", "r1 %= 3"),
    ("smod32 %r1, %r2", "w1 s%= w2"),
    ("or %r1, 0x10", "r1 |= 16"),
    ("and32 %r1, %r9", "w1 &= w9"),
    ("lsh %r1, 63", "r1 <<= 63"),
    ("rsh32 %r1, %r2", "w1 >>= w2"),
    ("arsh %r1, 1", "r1 s>>= 1"),
    ("xor %r1, %r1", "r1 ^= r1"),
    ("mov %r0, -1", "r0 = -1"),
    ("mov32 %r0, 0xffffffff", "w0 = -1"),
    ("mov32 %r1, 0x876543210", "w1 = 1985229328"),  # cut to 32 bits, as bpf_conformance's lock_cmpxchg32 needs
    ("neg %r2", "r2 = -r2"),
    ("neg32 %r2", "w2 = -w2"),
    ("movsx864 %r0, %r1", "r0 = (s8)r1"),
    ("movsx1664 %r0, %r1", "r0 = (s16)r1"),
    ("movsx3264 %r0, %r1", "r0 = (s32)r1"),
    ("movsx832 %r0, %r1", "w0 = (s8)w1"),
    ("movsx1632 %r0, %r1", "w0 = (s16)w1"),
    ("le16 %r3", "r3 = le16 r3"),
    ("le64 %r3", "r3 = le64 r3"),
    ("be32 %r3", "r3 = be32 r3"),
    ("bswap16 %r3", "r3 = bswap16 r3"),
    ("swap64 %r3", "r3 = bswap64 r3"),
    ("ldxb %r0, [%r1]", "r0 = *(u8 *)(r1 + 0)"),
    ("ldxh %r0, [%r1+2]", "r0 = *(u16 *)(r1 + 2)"),
    ("ldxw %r0, [%r10-4]", "r0 = *(u32 *)(r10 - 4)"),
    ("ldxdw %r0, [%r1 + 0x8]", "r0 = *(u64 *)(r1 + 8)"),
    ("ldxsb %r0, [%r1+1]", "r0 = (s8)*(u8 *)(r1 + 1)"),
    ("ldxsh %r0, [%r1]", "r0 = (s16)*(u16 *)(r1 + 0)"),
    ("ldxsw %r0, [%r1-8]", "r0 = (s32)*(u32 *)(r1 - 8)"),
    ("stb [%r10-1], 0x7f", "*(u8 *)(r10 - 1) = 127"),
    ("sth [%r10-2], -1", "*(u16 *)(r10 - 2) = -1"),
    ("stw [%r10-4], 3", "*(u32 *)(r10 - 4) = 3"),
    ("stdw [%r10-8], 0x44332211", "*(u64 *)(r10 - 8) = 1144201745"),
    ("stxb [%r1], %r2", "*(u8 *)(r1 + 0) = r2"),
    ("stxh [%r1+2], %r2", "*(u16 *)(r1 + 2) = r2"),
    ("stxw [%r1+4], %r2", "*(u32 *)(r1 + 4) = r2"),
    ("stxdw [%r10-8], %r2", "*(u64 *)(r10 - 8) = r2"),
    ("lddw %r1, 0x123456789abcdef0", "r1 = 1311768467463790320 ll"),
    ("lddw %r1, -1", "r1 = 18446744073709551615 ll"),
    ("ldabsb 12", "r0 = *(u8 *)skb[12]"),
    ("ldabsw 0x10", "r0 = *(u32 *)skb[16]"),
    ("ldindh %r3, 4", "r0 = *(u16 *)skb[r3 + 4]"),
    ("lock add [%r1+8], %r2", "lock *(u64 *)(r1 + 8) += r2"),
    ("lock add32 [%r1], %r2", "lock *(u32 *)(r1 + 0) += r2"),
    ("lock or [%r1], %r2", "lock *(u64 *)(r1 + 0) |= r2"),
    ("lock and32 [%r1], %r2", "lock *(u32 *)(r1 + 0) &= r2"),
    ("lock xor [%r1], %r2", "lock *(u64 *)(r1 + 0) ^= r2"),
    ("lock fetch add [%r1], %r2", "r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)"),
    ("lock fetch or32 [%r1], %r2", "w2 = atomic_fetch_or((u32 *)(r1 + 0), w2)"),
    ("lock fetch and [%r1-8], %r2", "r2 = atomic_fetch_and((u64 *)(r1 - 8), r2)"),
    ("lock fetch xor32 [%r1], %r2", "w2 = atomic_fetch_xor((u32 *)(r1 + 0), w2)"),
    ("lock xchg [%r1], %r2", "r2 = xchg_64(r1 + 0, r2)"),
    ("lock xchg32 [%r1], %r2", "w2 = xchg32_32(r1 + 0, w2)"),
    ("lock cmpxchg [%r1], %r2", "r0 = cmpxchg_64(r1 + 0, r0, r2)"),
    ("lock cmpxchg32 [%r10-8], %r2", "w0 = cmpxchg32_32(r10 - 8, w0, w2)"),
    ("ja +2", "goto +2"),
    ("ja -1", "goto -1"),
    ("ja32 +70000", "gotol +70000"),
    ("jeq %r1, 0, +1", "if r1 == 0 goto +1"),
    ("jgt %r1, %r2, +1", "if r1 > r2 goto +1"),
    ("jge %r1, 3, +1", "if r1 >= 3 goto +1"),
    ("jset %r1, 0x8, +1", "if r1 & 8 goto +1"),
    ("jne %r1, %r2, -3", "if r1 != r2 goto -3"),
    ("jsgt %r1, -1, +1", "if r1 s> -1 goto +1"),
    ("jsge %r1, %r2, +1", "if r1 s>= r2 goto +1"),
    ("jlt %r1, 5, +1", "if r1 < 5 goto +1"),
    ("jle %r1, %r2, +1", "if r1 <= r2 goto +1"),
    ("jslt %r1, 5, +1", "if r1 s< 5 goto +1"),
    ("jsle %r1, %r2, +1", "if r1 s<= r2 goto +1"),
    ("jeq32 %r1, 9, +1", "if w1 == 9 goto +1"),
    ("jne32 %r1, %r2, +1", "if w1 != w2 goto +1"),
    ("jsle32 %r1, -2, +1", "if w1 s<= -2 goto +1"),
    ("jset32 %r1, %r2, +1", "if w1 & w2 goto +1"),
    ("call 5", "call 5"),
    ("call helper 7", "call 7"),
    ("exit", "exit"),
]


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[f[0] for f in FORMS])
def test_each_form_encodes_what_llvm_would_print(text: str, expected: str) -> None:
    program = assemble(text)
    (insn,) = bi.decode(program)
    assert bi.disasm(insn) == expected
    assert assemble(disassemble(program)) == program


def test_plain_registers_and_spacing_are_accepted() -> None:
    assert assemble("  mov r0, 1  # comment\n\tadd   r0 ,  r1") == assemble("mov %r0, 1\nadd %r0, %r1")


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("call local +3", (0x85, 0, 1, 0, 3)),
        ("call runtime 9", (0x85, 0, 2, 0, 9)),
        ("call %r2", (0x8D, 2, 0, 0, 0)),  # bpf_conformance's callx: the register in dst
        ("call helper %r4", (0x8D, 4, 0, 0, 0)),
        ("callx %r3", (0x8D, 3, 0, 0, 0)),
        ("mov %r15, 1", (0xB7, 15, 0, 0, 1)),  # r11-r15 exist so negative cases can name them
    ],
)
def test_calls_and_fake_registers(text: str, fields: tuple[int, int, int, int, int]) -> None:
    assert assemble(text) == struct.pack("<BBhi", fields[0], fields[2] << 4 | fields[1], fields[3], fields[4])


def test_labels_resolve_forward_and_backward_counting_lddw_as_two_slots() -> None:
    program = assemble(
        """
        mov %r0, 0
        top:
        lddw %r1, 1
        add %r0, 1
        jlt %r0, 3, top
        ja end
        mov %r0, 99
        end: exit
        """
    )
    insns = bi.decode(program)
    jlt, ja = insns[3], insns[4]
    assert (jlt.index, jlt.offset, jlt.jump_target) == (4, -4, 1)
    assert (ja.index, ja.offset, ja.jump_target) == (5, 1, 7)


def test_first_exit_is_the_implicit_exit_label_and_ja32_and_call_local_use_imm() -> None:
    program = assemble("jeq %r1, 0, exit\nja32 exit\ncall local f\nexit\nf:\nmov %r0, 1\nexit")
    jeq, ja32, call = bi.decode(program)[:3]
    assert (jeq.offset, ja32.imm, ja32.offset, call.imm, call.src_reg) == (2, 1, 0, 1, 1)


def test_an_explicit_exit_label_wins_over_the_implicit_one() -> None:
    jump = bi.decode(assemble("ja exit\nexit\nexit:\nexit"))[0]
    assert jump.offset == 1


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("mov %r0, 1\nfrob %r0", 2, "unknown mnemonic"),
        ("mov %r16, 1", 1, "not a register"),
        ("mov %r0", 1, "takes 2 operands"),
        ("exit %r0", 1, "takes 0 operands"),
        ("ldxw %r0, %r1", 1, "not a memory operand"),
        ("ldxw %r0, [%r1+70000]", 1, "does not fit"),
        ("mov %r0, 0x1ffffffffffffffff", 1, "does not fit"),
        ("mov %r0, 12abc", 1, "not a number"),
        ("mov %r0, " + "9" * 5000, 1, "not a number"),
        ("\n\nja nowhere", 3, "unknown label 'nowhere'"),
        ("x:\nx:\nexit", 2, "defined twice"),
        ("lock fetch xchg [%r1], %r2", 1, "always fetches"),
        ("lock nand [%r1], %r2", 1, "unknown atomic operation"),
        ("lock", 1, "lock takes"),
        ("call local", 1, "not a number"),
        ("call far 3", 1, "unknown call mode"),
        ("jeq %r0, 0, 5", 1, "not a label or +/- offset"),
        (".raw 0x1\n.raw zz", 2, "not a number"),
    ],
)
def test_errors_are_one_line_and_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(FormatError) as err:
        assemble(text)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"line {line}: ")
    assert reason in message
    assert len(message) < 300


def test_label_out_of_range_is_refused() -> None:
    with pytest.raises(FormatError, match="out of range"):
        assemble("ja far\n" + "mov %r0, 0\n" * 40000 + "far: exit")


def test_disassembly_is_the_dialect_with_relative_jumps() -> None:
    text = "mov %r0, 0\nloop:\nadd32 %r0, 1\njlt %r0, 10, loop\nlddw %r1, 0x100000000\ncall local +0\nexit\n"
    assert disassemble(assemble(text)) == (
        "mov %r0, 0\nadd32 %r0, 1\njlt %r0, 10, -2\nlddw %r1, 0x100000000\ncall local +0\nexit\n"
    )


@pytest.mark.parametrize(
    "image",
    [
        struct.pack("<BBhi", 0xFF, 0, 0, 0),  # unknown opcode
        struct.pack("<BBhi", 0xB7, 0, 1, 5),  # mov with a stray offset
        struct.pack("<BBhi", 0x95, 0, 0, 1),  # exit with a stray imm
        struct.pack("<BBhi", 0x18, 0x10, 0, 7) + bytes(8),  # lddw with a pseudo source (map fd)
        struct.pack("<BBhi", 0x18, 0, 0, 7),  # lddw cut short
        struct.pack("<BBhi", 0x18, 0, 0, 7) + struct.pack("<BBhi", 0x95, 0, 0, 0),  # lddw, bad second half
        struct.pack("<BBhi", 0xDB, 0x21, 0, 0x100),  # load-acquire: not in the dialect
    ],
)
def test_bytes_without_a_spelling_round_trip_through_raw(image: bytes) -> None:
    text = disassemble(image)
    assert ".raw" in text
    assert assemble(text) == image


def test_disassemble_refuses_a_partial_slot() -> None:
    with pytest.raises(FormatError, match="multiple of 8"):
        disassemble(b"\x95\x00\x00")


REG = st.integers(0, 10)
S16 = st.integers(-(1 << 15), (1 << 15) - 1)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)
SIZE = st.sampled_from([0x00, 0x08, 0x10, 0x18])


@st.composite
def known_insns(draw: st.DrawFn) -> bi.Insn:
    """An instruction with a dialect spelling: every form of FORMS with free registers and fields."""
    kind = draw(st.sampled_from(["alu", "movsx", "end", "ldx", "st", "stx", "atomic", "packet", "lddw", "jmp", "misc"]))
    d, s, off, imm = draw(REG), draw(REG), draw(S16), draw(S32)
    cls = draw(st.sampled_from([0x04, 0x07]))
    if kind == "alu":
        op = draw(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12]))
        signed = 1 if op in (3, 9) and draw(st.booleans()) else 0
        if draw(st.booleans()):
            return bi.Insn(0, op << 4 | 0x08 | cls, d, s, signed, 0)
        return bi.Insn(0, op << 4 | cls, d, 0, signed, imm)
    if kind == "movsx":
        return bi.Insn(0, 0xB8 | cls, d, s, draw(st.sampled_from([8, 16, 32])), 0)
    if kind == "end":
        opcode = draw(st.sampled_from([0xD4, 0xDC, 0xD7]))
        return bi.Insn(0, opcode, d, 0, 0, draw(st.sampled_from([16, 32, 64])))
    if kind == "ldx":
        return bi.Insn(0, draw(st.sampled_from([0x60, 0x80])) | draw(SIZE) | 0x01, d, s, off, 0)
    if kind == "st":
        return bi.Insn(0, 0x62 | draw(SIZE), d, 0, off, imm)
    if kind == "stx":
        return bi.Insn(0, 0x63 | draw(SIZE), d, s, off, 0)
    if kind == "atomic":
        op = draw(st.sampled_from([0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xA0, 0xA1, 0xE1, 0xF1]))
        return bi.Insn(0, 0xC3 | draw(st.sampled_from([0x00, 0x18])), d, s, off, op)
    if kind == "packet":
        if draw(st.booleans()):
            return bi.Insn(0, 0x20 | draw(SIZE), 0, 0, 0, imm)
        return bi.Insn(0, 0x40 | draw(SIZE), 0, s, 0, imm)
    if kind == "lddw":
        return bi.ld_imm64(d, draw(st.integers(0, (1 << 64) - 1)))
    if kind == "jmp":
        op = draw(st.sampled_from([1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13]))
        jcls = draw(st.sampled_from([0x05, 0x06]))
        if draw(st.booleans()):
            return bi.Insn(0, op << 4 | 0x08 | jcls, d, s, off, 0)
        return bi.Insn(0, op << 4 | jcls, d, 0, off, imm)
    return draw(
        st.sampled_from(
            [
                bi.Insn(0, 0x05, 0, 0, off, 0),
                bi.Insn(0, 0x06, 0, 0, 0, imm),
                bi.Insn(0, 0x85, 0, 0, 0, imm),
                bi.Insn(0, 0x85, 0, 1, 0, imm),
                bi.Insn(0, 0x85, 0, 2, 0, imm),
                bi.Insn(0, 0x8D, d, 0, 0, 0),
                bi.Insn(0, 0x95, 0, 0, 0, 0),
                bi.Insn(0, 0x84 | (cls & 0x03), d, 0, 0, 0),  # neg / neg32
            ]
        )
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(known_insns(), min_size=1, max_size=20))
def test_round_trip_of_generated_instructions_needs_no_raw(insns: list[bi.Insn]) -> None:
    program = bi.assemble(insns)
    text = disassemble(program)
    assert ".raw" not in text, text
    assert assemble(text) == program
    assert disassemble(assemble(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=8, max_size=8), max_size=20))
def test_round_trip_of_arbitrary_bytes(slots: list[bytes]) -> None:
    program = b"".join(slots)
    assert assemble(disassemble(program)) == program


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("movaddjeqlock fetch%r0123,[]+-#:x\t"), max_size=30), max_size=6))
def test_any_text_assembles_or_fails_in_one_line_naming_it(lines: list[str]) -> None:
    try:
        program = assemble("\n".join(lines))
    except FormatError as exc:
        message = str(exc)
        assert "\n" not in message
        number = int(message.split(":", 1)[0].removeprefix("line "))
        assert 1 <= number <= len(lines)
    else:
        assert len(program) % 8 == 0
