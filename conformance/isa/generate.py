"""Write the bundled ISA conformance cases (conformance/isa/*.data) from RFC 9669.

Every expected r0 is computed here from the RFC's definitions, written out below as plain Python (`alu`, `jump`,
`swap`...), never taken from an engine. The files use the bpf_conformance `.data` format (`-- asm` or `-- raw`,
`-- mem`, `-- result` or `-- error`) plus a `-- description` line; `-- group` and `-- cpu` only where the opcodes
alone do not say (negative cases). Registers hold values as unsigned 64-bit integers; the engine is little-endian
(the byte-order cases say what `le`/`be` mean on such a host).

    python conformance/isa/generate.py [DIR]   (default: this directory; rewrites every generated file)

tests/test_isa_cases.py checks that the committed files are exactly what this writes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
MEMORY = bytes.fromhex("aabbccddeeff00112233445566778899")  # 16 bytes the memory cases read and write


def sx(value: int, bits: int) -> int:
    """`value`'s low `bits` bits sign-extended, as a Python int."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def imm_value(imm: int, width: int) -> int:
    """The operand an immediate stands for (RFC 9669 4.1): sign-extended to 64 bits for ALU64 and JMP, its 32
    bits for ALU and JMP32."""
    return sx(imm, 32) & (M64 if width == 64 else M32)


def alu(op: str, width: int, dst: int, src: int, offset: int = 0) -> int:
    """RFC 9669 4.1: dst after `dst op= src` in `width` bits; a 32-bit result is zero-extended."""
    mask, a, b = (1 << width) - 1, dst & ((1 << width) - 1), src & ((1 << width) - 1)
    sa, sb = sx(a, width), sx(b, width)
    if op == "add":
        r = a + b
    elif op == "sub":
        r = a - b
    elif op == "mul":
        r = a * b
    elif op == "div":
        r = a // b if b else 0  # division by zero yields 0
    elif op == "mod":
        r = a % b if b else a  # modulo by zero leaves dst (its 32 bits, zero-extended, for ALU)
    elif op == "sdiv":
        r = (abs(sa) // abs(sb)) * (1 if (sa < 0) == (sb < 0) else -1) if sb else 0  # truncated; wraps
    elif op == "smod":
        r = sa - sb * ((abs(sa) // abs(sb)) * (1 if (sa < 0) == (sb < 0) else -1)) if sb else a
    elif op == "or":
        r = a | b
    elif op == "and":
        r = a & b
    elif op == "xor":
        r = a ^ b
    elif op == "lsh":
        r = a << (b & (width - 1))  # shift counts are masked to 0x3F (64) or 0x1F (32)
    elif op == "rsh":
        r = a >> (b & (width - 1))
    elif op == "arsh":
        r = sa >> (b & (width - 1))
    elif op == "mov":
        r = b
    elif op == "movsx":
        r = sx(src, offset)
    elif op == "neg":
        r = -a
    else:
        raise ValueError(op)
    return r & mask


def swap(value: int, bits: int) -> int:
    """The low `bits` bits of `value` with their bytes reversed (upper bits zero)."""
    return int.from_bytes((value & ((1 << bits) - 1)).to_bytes(bits // 8, "little"), "big")


def jump(op: str, width: int, a: int, b: int) -> bool:
    """RFC 9669 4.3: whether the conditional jump `op` is taken, comparing `width` bits."""
    mask = (1 << width) - 1
    a, b = a & mask, b & mask
    sa, sb = sx(a, width), sx(b, width)
    return {
        "jeq": a == b, "jne": a != b, "jgt": a > b, "jge": a >= b, "jlt": a < b, "jle": a <= b,
        "jset": bool(a & b), "jsgt": sa > sb, "jsge": sa >= sb, "jslt": sa < sb, "jsle": sa <= sb,
    }[op]  # fmt: skip


def raw(opcode: int, dst: int = 0, src: int = 0, offset: int = 0, imm: int = 0) -> str:
    """One instruction as a `-- raw` word: the 8 little-endian bytes read as one 64-bit number."""
    return f"0x{opcode | (dst | src << 4) << 8 | (offset & 0xFFFF) << 16 | (imm & M32) << 32:016x}"


def num(value: int) -> str:
    """An immediate as the assembler reads it: hex when non-negative, signed decimal otherwise."""
    return f"0x{value:x}" if value >= 0 else str(value)


def load(reg: int, value: int, width: int = 64) -> str:
    """Set a register: `mov32` for a 32-bit value, `mov` for one a sign-extended imm gives, else `lddw`."""
    if width == 32:
        return f"mov32 %r{reg}, {num(sx(value, 32))}"
    if sx(value, 64) == sx(value, 32):
        return f"mov %r{reg}, {num(sx(value, 32))}"
    return f"lddw %r{reg}, 0x{value & M64:x}"


class Case:
    """One .data file's content."""

    def __init__(self, description: str, *, asm: list[str] | None = None, raw: list[str] | None = None,
                 mem: bytes = b"", result: int | None = None, error: str | None = None,
                 group: str | None = None, cpu: int | None = None) -> None:
        assert (asm is None) != (raw is None) and (result is None) != (error is None)
        assert "--" not in description and "\n" not in description
        self.text = f"-- description\n{description}\n"
        self.text += "-- asm\n" + "\n".join(asm) + "\n" if asm is not None else "-- raw\n" + "\n".join(raw or []) + "\n"
        if mem:
            self.text += "-- mem\n" + " ".join(f"{b:02x}" for b in mem) + "\n"
        self.text += f"-- result\n0x{result & M64:x}\n" if result is not None else f"-- error\n{error}\n"
        if group:
            self.text += f"-- group\n{group}\n"
        if cpu:
            self.text += f"-- cpu\n{cpu}\n"


Cases = Iterator[tuple[str, Case]]
ALU_OPS = ("add", "sub", "mul", "div", "mod", "or", "and", "xor", "lsh", "rsh", "arsh", "mov")
# (dst, src) pairs every binary ALU op runs on: carries, wrap-around, sign bits, a negative immediate.
ALU_PAIRS = ((0x0123456789ABCDEF, 0x12345), (0xFEDCBA9876543210, -3), (0xFFFFFFFF, 1), (0x8000000000000000, -1))
# Shifts by an immediate stay below the width (an out-of-range immediate is its own case); by a register, any count.
SHIFT_PAIRS = ((0x8123456789ABCDEF, 1), (0x8123456789ABCDEF, 31), (0xF0F0F0F0F0F0F0F0, 4))
SHIFT_REG_COUNTS = (0x12345, 63, 64, 65, -1)
UPPER = 0xA5A5A5A5 << 32  # put in a source register's upper half: a 32-bit operation must ignore it


def alu_cases() -> Cases:
    for op in ALU_OPS:
        shift = op in ("lsh", "rsh", "arsh")
        for width in (64, 32):
            suffix = "" if width == 64 else "32"
            pairs = SHIFT_PAIRS if shift else ALU_PAIRS
            for i, (dst, src) in enumerate(pairs, 1):
                dst_w = dst if width == 64 else dst & M32
                expected = alu(op, width, dst_w, imm_value(src, width))
                yield f"{op}{width}-imm-{i}", Case(
                    f"{op}{suffix} with an immediate: {dst_w:#x} {op} {src} (imm as RFC 9669 4.1 extends it).",
                    asm=[load(0, dst_w, width), f"{op}{suffix} %r0, {num(src)}", "exit"], result=expected)
            counts = [(d, c) for d, _ in pairs[:1] for c in SHIFT_REG_COUNTS] if shift else pairs
            for i, (dst, src) in enumerate(counts, 1):
                value = src & M64 if width == 64 else (src & M32) | UPPER
                dst_w = dst if width == 64 else dst & M32
                expected = alu(op, width, dst_w, value)
                setup = [load(0, dst_w, width), load(1, value)]
                yield f"{op}{width}-reg-{i}", Case(
                    f"{op}{suffix} with a register: {dst_w:#x} {op} {value:#x}"
                    + (" (the count masked to the width)" if shift else "")
                    + (" (the source's upper 32 bits ignored)" if width == 32 else "") + ".",
                    asm=[*setup, f"{op}{suffix} %r0, %r1", "exit"], result=expected)
    for op in (*ALU_OPS, "neg"):
        src = [] if op == "neg" else ["mov %r1, 0x3"]
        operand = "" if op == "neg" else ", %r1"
        dst = 0xFFFFFFFF80000008
        yield f"{op}32-zero-extends", Case(
            f"{op}32 writes 32 bits and zeroes the upper 32 bits of the destination.",
            asm=[load(0, dst), *src, f"{op}32 %r0{operand}", "exit"],
            result=alu(op, 32, dst, 3))
    for width in (64, 32):
        suffix = "" if width == 64 else "32"
        for i, value in enumerate((0, 5, 0x8000000000000000 if width == 64 else 0x80000000), 1):
            yield f"neg{width}-{i}", Case(
                f"neg{suffix} negates {value:#x} (two's complement, wrapping).",
                asm=[load(0, value, width), f"neg{suffix} %r0", "exit"], result=alu("neg", width, value, 0))


def division_cases() -> Cases:
    """Division and modulo by zero, INT_MIN / -1, signed division and modulo (v4)."""
    big = 0xFEDCBA9876543210
    for width in (64, 32):
        suffix = "" if width == 64 else "32"
        dst = big if width == 64 else big & M32
        for op in ("div", "mod", "sdiv", "smod"):
            yield f"{op}{width}-by-zero-reg", Case(
                f"{op}{suffix} by a zero register: RFC 9669 4.1 gives "
                + ("0." if "div" in op else "the dividend unchanged."),
                asm=[load(0, dst, width), load(1, 0), f"{op}{suffix} %r0, %r1", "exit"],
                result=alu(op, width, dst, 0))
        yield f"mod{width}-by-zero-keeps-upper" if width == 64 else "mod32-by-zero-zeroes-upper", Case(
            f"mod{suffix} by zero on a destination with upper bits set: "
            + ("unchanged." if width == 64 else "its upper 32 bits are zeroed."),
            asm=[load(0, big), load(1, 0), f"mod{suffix} %r0, %r1", "exit"], result=alu("mod", width, big, 0))
        int_min = 1 << (width - 1)
        for op in ("sdiv", "smod"):
            yield f"{op}{width}-intmin-by-minus-one-reg", Case(
                f"{op}{suffix} INT_MIN by -1 wraps (sdiv gives INT_MIN, smod 0), never traps.",
                asm=[load(0, int_min, width), load(1, M64), f"{op}{suffix} %r0, %r1", "exit"],
                result=alu(op, width, int_min, M64))
            yield f"{op}{width}-intmin-by-minus-one-imm", Case(
                f"{op}{suffix} INT_MIN by the immediate -1 wraps, never traps.",
                asm=[load(0, int_min, width), f"{op}{suffix} %r0, -1", "exit"],
                result=alu(op, width, int_min, imm_value(-1, width)))
        for i, (a, b) in enumerate(((-13, 3), (13, -3), (-13, -3), (7, 7)), 1):
            for op in ("sdiv", "smod"):
                yield f"{op}{width}-signs-{i}", Case(
                    f"{op}{suffix} {a} by {b}: signed, truncated toward zero (the remainder has the dividend's sign).",
                    asm=[load(0, a & (M64 if width == 64 else M32), width), load(1, b & M64),
                         f"{op}{suffix} %r0, %r1", "exit"],
                    result=alu(op, width, a, b))
                yield f"{op}{width}-imm-signs-{i}", Case(
                    f"{op}{suffix} {a} by the immediate {b}: signed, truncated toward zero.",
                    asm=[load(0, a & (M64 if width == 64 else M32), width), f"{op}{suffix} %r0, {b}", "exit"],
                    result=alu(op, width, a, imm_value(b, width)))
        yield f"div{width}-imm-negative", Case(
            f"div{suffix} by the immediate -2: unsigned, the immediate "
            + ("sign-extended to 64 bits." if width == 64 else "taken as its 32 bits."),
            asm=[load(0, M64 if width == 64 else M32, width), f"div{suffix} %r0, -2", "exit"],
            result=alu("div", width, M64, imm_value(-2, width)))
    # RFC 9669 defines division by a zero immediate too; the Linux verifier refuses it (a finding, not an error).
    for op in ("div", "mod"):
        for width in (64, 32):
            suffix = "" if width == 64 else "32"
            yield f"{op}{width}-by-zero-imm", Case(
                f"{op}{suffix} by the immediate 0 is defined (RFC 9669 4.1), like division by a zero register.",
                asm=[load(0, 0x1234, width), f"{op}{suffix} %r0, 0", "exit"], result=alu(op, width, 0x1234, 0))
    for op, width in (("lsh", 64), ("rsh", 32), ("arsh", 64)):
        suffix = "" if width == 64 else "32"
        dst = 0x8000000000000001 if width == 64 else 0x80000001
        yield f"{op}{width}-imm-masked", Case(
            f"{op}{suffix} by the immediate {width + 1}: the count is masked to {width - 1:#x} (RFC 9669 4.1).",
            asm=[load(0, dst, width), f"{op}{suffix} %r0, {width + 1}", "exit"],
            result=alu(op, width, dst, width + 1))


def v4_move_and_swap_cases() -> Cases:
    value = 0x0123456789ABCDEF
    negative = 0xFEDCBA9876543280
    for width, bits in ((64, 8), (64, 16), (64, 32), (32, 8), (32, 16)):
        suffix = "64" if width == 64 else "32"
        for i, src in enumerate((value, negative), 1):
            yield f"movsx{bits}{suffix}-{i}", Case(
                f"movsx{bits}{suffix}: the low {bits} bits of {src:#x} sign-extended to {width} bits (v4).",
                asm=[load(1, src), f"movsx{bits}{suffix} %r0, %r1", "exit"],
                result=alu("movsx", width, 0, src, bits))
    for bits in (16, 32, 64):
        for i, v in enumerate((value, negative), 1):
            yield f"le{bits}-{i}", Case(
                f"le{bits} on a little-endian engine keeps the low {bits} bits and zeroes the rest.",
                asm=[load(0, v), f"le{bits} %r0", "exit"], result=v & ((1 << bits) - 1))
            yield f"be{bits}-{i}", Case(
                f"be{bits} on a little-endian engine reverses the bytes of the low {bits} bits, zeroing the rest.",
                asm=[load(0, v), f"be{bits} %r0", "exit"], result=swap(v, bits))
            yield f"swap{bits}-{i}", Case(
                f"bswap{bits} (ALU64 END, v4) reverses the low {bits} bits' bytes whatever the host order.",
                asm=[load(0, v), f"swap{bits} %r0", "exit"], result=swap(v, bits))


JUMP_OPS = ("jeq", "jne", "jgt", "jge", "jlt", "jle", "jset", "jsgt", "jsge", "jslt", "jsle")
JUMP_PAIRS = ((5, 5), (-2, 3), (3, -2))  # equal; unsigned and signed orders disagree both ways


def jump_cases() -> Cases:
    for op in JUMP_OPS:
        for width in (64, 32):
            suffix = "" if width == 64 else "32"
            mov = "mov" if width == 64 else "mov32"
            pairs = [(a & M64, b) for a, b in JUMP_PAIRS]
            if width == 32:
                pairs.append((0x100000002, 3))  # upper bits the 32-bit compare must ignore
            for source in ("imm", "reg"):
                for i, (a, b) in enumerate(pairs, 1):
                    bv = imm_value(b, width) if source == "imm" else b & M64
                    setup = [load(1, a, width if a <= M32 else 64)]
                    if source == "reg":
                        setup.append(load(2, bv if width == 64 else bv & M32, width if width == 32 else 64))
                    operand = num(b) if source == "imm" else "%r2"
                    taken = jump(op, width, a, bv)
                    yield f"{op}{width}-{source}-{i}", Case(
                        f"{op}{suffix} {a:#x}, {bv:#x} is {'taken' if taken else 'not taken'}.",
                        asm=[*setup, f"{mov} %r0, 0", f"{op}{suffix} %r1, {operand}, taken", "exit",
                             "taken:", f"{mov} %r0, 1", "exit"],
                        result=int(taken))
    yield "ja-forward", Case(
        "ja skips the instructions it jumps over (they run only when a later jump leads there).",
        asm=["mov %r0, 1", "ja skip", "middle:", "add %r0, 2", "exit", "skip:", "add %r0, 4", "jeq %r0, 5, middle",
             "exit"],
        result=7)
    yield "ja-backward", Case(
        "ja with a negative offset jumps back (a loop left by a conditional jump).",
        asm=["mov %r0, 0", "ja start", "back:", "add %r0, 10", "exit", "start:", "add %r0, 1", "ja back"],
        result=11)
    yield "ja-zero-offset", Case("ja +0 goes to the next instruction.", asm=["mov %r0, 3", "ja +0", "exit"], result=3)
    # gotol (JMP32 | JA, v4): the offset is in imm.
    yield "gotol-forward", Case(
        "gotol (v4) jumps forward by its 32-bit immediate, over two instructions.",
        raw=[raw(0xB7, 0, imm=1), raw(0x06, imm=2), raw(0x07, 0, imm=2), raw(0x95), raw(0x07, 0, imm=4),
             raw(0x15, 0, offset=-4, imm=5), raw(0x95)], result=7)
    yield "gotol-backward", Case(
        "gotol (v4) with a negative immediate jumps back.",
        raw=[raw(0xB7, 0, imm=0), raw(0x05, offset=2), raw(0x07, 0, imm=10), raw(0x95),
             raw(0x07, 0, imm=1), raw(0x06, imm=-4)], result=11)
    yield "exit-not-last", Case(
        "exit returns r0 wherever it is; the instructions after it run only when jumped to.",
        asm=["mov %r0, 7", "jeq %r0, 8, later", "exit", "later:", "mov %r0, 9", "exit"], result=7)


def loop_cases() -> Cases:
    yield "loop-sum-jne", Case(
        "A bounded loop: the sum of 1..10 by a backward jne.",
        asm=["mov %r0, 0", "mov %r1, 1", "loop:", "add %r0, %r1", "add %r1, 1", "jne %r1, 11, loop", "exit"],
        result=55)
    yield "loop-count-down-jgt", Case(
        "A bounded loop counting down: 2 to the power 20 by doubling while the counter is above zero.",
        asm=["mov %r0, 1", "mov %r1, 20", "loop:", "lsh %r0, 1", "sub %r1, 1", "jgt %r1, 0, loop", "exit"],
        result=1 << 20)
    yield "loop-jlt", Case(
        "A bounded loop by jlt (v2): 3 to the power 5.",
        asm=["mov %r0, 1", "mov %r1, 0", "loop:", "mul %r0, 3", "add %r1, 1", "jlt %r1, 5, loop", "exit"],
        result=3**5)
    yield "loop-jslt32", Case(
        "A bounded loop by jslt32 (v3) from -5 up to 0, summing the counter.",
        asm=["mov32 %r0, 0", "mov32 %r1, -5", "loop:", "add32 %r0, %r1", "add32 %r1, 1", "jslt32 %r1, 0, loop",
             "exit"],
        result=(-15) & M32)
    yield "loop-fibonacci", Case(
        "A bounded loop: the 50th Fibonacci number in 64 bits.",
        asm=["mov %r0, 0", "mov %r2, 1", "mov %r3, 50", "loop:", "mov %r4, %r0", "add %r4, %r2", "mov %r0, %r2",
             "mov %r2, %r4", "sub %r3, 1", "jne %r3, 0, loop", "exit"],
        result=12586269025)


def memory_cases() -> Cases:
    for size, mnemonic in ((1, "b"), (2, "h"), (4, "w"), (8, "dw")):
        for offset in (0, 16 - size):
            value = int.from_bytes(MEMORY[offset : offset + size], "little")
            yield f"ldx{mnemonic}-offset-{offset}", Case(
                f"ldx{mnemonic} reads {size} little-endian byte(s) at offset {offset}, zero-extended.",
                asm=[f"ldx{mnemonic} %r0, [%r1+{offset}]", "exit"], mem=MEMORY, result=value)
        yield f"ldx{mnemonic}-negative-offset", Case(
            f"ldx{mnemonic} with a negative offset from a pointer into the memory.",
            asm=["add %r1, 12", f"ldx{mnemonic} %r0, [%r1-{size + 2}]", "exit"], mem=MEMORY,
            result=int.from_bytes(MEMORY[10 - size : 10], "little"))
        stored = 0x8877665544332211
        after = bytearray(MEMORY)
        after[2 : 2 + size] = (stored & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        yield f"stx{mnemonic}", Case(
            f"stx{mnemonic} writes the register's low {size} byte(s) at offset 2 and nothing else.",
            asm=[load(2, stored), f"stx{mnemonic} [%r1+2], %r2", "ldxdw %r0, [%r1+0]", "exit"], mem=MEMORY,
            result=int.from_bytes(after[:8], "little"))
        imm = -2
        after = bytearray(MEMORY)
        after[2 : 2 + size] = (imm & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        yield f"st{mnemonic}-imm", Case(
            f"st{mnemonic} stores the immediate -2 in {size} byte(s) at offset 2 (sign-extended for stdw).",
            asm=[f"st{mnemonic} [%r1+2], -2", "ldxdw %r0, [%r1+0]", "exit"], mem=MEMORY,
            result=int.from_bytes(after[:8], "little"))
        yield f"stack-{mnemonic}", Case(
            f"A {size}-byte store to the stack below r10 reads back with ldx{mnemonic}.",
            asm=[load(2, stored), "stdw [%r10-8], 0", f"stx{mnemonic} [%r10-8], %r2", "ldxdw %r0, [%r10-8]",
                 "exit"],
            result=stored & ((1 << (8 * size)) - 1))
    # Sign-extending loads (MEMSX, v4): ldxsb 0x91, ldxsh 0x89, ldxsw 0x81.
    for opcode, size, name in ((0x91, 1, "b"), (0x89, 2, "h"), (0x81, 4, "w")):
        for offset in (6, 0):
            value = int.from_bytes(MEMORY[offset : offset + size], "little")
            yield f"ldxs{name}-offset-{offset}", Case(
                f"ldxs{name} (v4) reads {size} byte(s) at offset {offset} and sign-extends them to 64 bits.",
                raw=[raw(opcode, 0, 1, offset), raw(0x95)], mem=MEMORY, result=sx(value, 8 * size) & M64)
    yield "stack-deep", Case(
        "The stack reaches well below r10: a byte stored at r10-256 reads back.",
        asm=["stdw [%r10-256], 0", "stb [%r10-256], 0x5a", "ldxdw %r0, [%r10-256]", "exit"], result=0x5A)
    yield "memory-write-then-read", Case(
        "A value written to the memory reads back at an overlapping offset.",
        asm=["stw [%r1+4], 0x11223344", "ldxh %r0, [%r1+5]", "exit"], mem=MEMORY, result=0x2233)


def lddw_cases() -> Cases:
    for name, value in (("lddw-64bit", 0x0123456789ABCDEF), ("lddw-upper-only", 0xFFFFFFFF00000000),
                        ("lddw-all-ones", M64), ("lddw-sign-bit-of-low-half", 0x0000000080000000)):
        yield name, Case(f"lddw loads the 64-bit immediate {value:#x} from its two slots.",
                         asm=[f"lddw %r0, 0x{value:x}", "exit"], result=value)
    yield "mov-imm-sign-extends", Case(
        "mov with the immediate -10 sign-extends it to 64 bits.", asm=["mov %r0, -10", "exit"], result=(-10) & M64)
    yield "mov32-imm-zero-extends", Case(
        "mov32 with the immediate -10 zero-extends its 32 bits.", asm=["mov32 %r0, -10", "exit"], result=(-10) & M32)


def atomic_cases() -> Cases:
    initial, operand = 0x1111111122222222, 0x0F0F0F0F33333333
    for width in (64, 32):
        suffix = "" if width == 64 else "32"
        mask = (1 << width) - 1
        for op in ("add", "or", "and", "xor"):
            new = (initial & ~mask) | (alu(op, width, initial, operand) & mask)
            setup = [load(1, initial), "stxdw [%r10-8], %r1", load(2, operand)]
            yield f"lock-{op}{width}", Case(
                f"lock {op}{suffix} updates the {width}-bit word in memory (bytes beyond it unchanged).",
                asm=[*setup, f"lock {op}{suffix} [%r10-8], %r2", "ldxdw %r0, [%r10-8]", "exit"], result=new)
            yield f"lock-fetch-{op}{width}-memory", Case(
                f"lock fetch {op}{suffix} updates the {width}-bit word in memory.",
                asm=[*setup, f"lock fetch {op}{suffix} [%r10-8], %r2", "ldxdw %r0, [%r10-8]", "exit"], result=new)
            yield f"lock-fetch-{op}{width}-old", Case(
                f"lock fetch {op}{suffix} loads the word's old value into the source register (zero-extended).",
                asm=[*setup, f"lock fetch {op}{suffix} [%r10-8], %r2", "mov %r0, %r2", "exit"],
                result=initial & mask)
        setup = [load(1, initial), "stxdw [%r10-8], %r1", load(2, operand)]
        yield f"lock-xchg{width}-memory", Case(
            f"lock xchg{suffix} stores the source register's {width} bits.",
            asm=[*setup, f"lock xchg{suffix} [%r10-8], %r2", "ldxdw %r0, [%r10-8]", "exit"],
            result=(initial & ~mask) | (operand & mask))
        yield f"lock-xchg{width}-old", Case(
            f"lock xchg{suffix} loads the old value into the source register (zero-extended).",
            asm=[*setup, f"lock xchg{suffix} [%r10-8], %r2", "mov %r0, %r2", "exit"], result=initial & mask)
        for outcome, expected_r0 in (("match", initial), ("mismatch", initial ^ 1)):
            stores = outcome == "match"
            compare = [load(0, expected_r0)]
            memory = (initial & ~mask) | (operand & mask) if stores else initial
            yield f"lock-cmpxchg{width}-{outcome}-memory", Case(
                f"lock cmpxchg{suffix} with r0 {'equal to' if stores else 'unlike'} the word "
                + ("stores the source register." if stores else "leaves the memory unchanged."),
                asm=[*setup, *compare, f"lock cmpxchg{suffix} [%r10-8], %r2", "ldxdw %r0, [%r10-8]", "exit"],
                result=memory)
            yield f"lock-cmpxchg{width}-{outcome}-r0", Case(
                f"lock cmpxchg{suffix} always loads the word's old value into r0 (zero-extended).",
                asm=[*setup, *compare, f"lock cmpxchg{suffix} [%r10-8], %r2", "exit"], result=initial & mask)


def call_cases() -> Cases:
    yield "call-local-return", Case(
        "call local runs the function and returns after the call with its r0.",
        asm=["mov %r0, 1", "call local function", "add %r0, 1", "exit", "function:", "mov %r0, 42", "exit"],
        result=43)
    yield "call-local-arguments", Case(
        "call local passes r1-r5 to the function.",
        asm=["mov %r1, 20", "mov %r2, 22", "mov %r3, 100", "call local function", "exit", "function:",
             "mov %r0, %r1", "add %r0, %r2", "mul %r0, %r3", "exit"],
        result=4200)
    yield "call-local-callee-saved", Case(
        "call local preserves r6-r9 of the caller even when the function writes them.",
        asm=["mov %r6, 6", "mov %r7, 7", "mov %r8, 8", "mov %r9, 9", "call local function", "mov %r0, %r6",
             "add %r0, %r7", "add %r0, %r8", "add %r0, %r9", "exit", "function:", "mov %r6, 100", "mov %r7, 100",
             "mov %r8, 100", "mov %r9, 100", "mov %r0, 0", "exit"],
        result=30)
    yield "call-local-own-stack", Case(
        "call local gives the function its own stack frame: its r10-8 is not the caller's.",
        asm=["stdw [%r10-8], 5", "call local function", "ldxdw %r0, [%r10-8]", "exit", "function:",
             "stdw [%r10-8], 9", "mov %r0, 0", "exit"],
        result=5)
    yield "call-local-nested", Case(
        "call local nests: a function calls another and both return in order.",
        asm=["mov %r1, 3", "call local outer", "exit", "outer:", "mov %r6, %r1", "call local inner",
             "mul %r0, %r6", "exit", "inner:", "mov %r0, 7", "exit"],
        result=21)
    yield "call-local-backward", Case(
        "call local to a function placed before the caller (a negative immediate).",
        asm=["call local caller", "exit", "function:", "mov %r0, 11", "exit", "caller:", "call local function",
             "add %r0, 1", "exit"],
        result=12)


def packet_cases() -> Cases:
    """The historical packet group (RFC 9669 5.5 keeps only the encodings): Linux's legacy loads, the memory being
    the packet. ABS reads at imm, IND at src + imm, in network (big-endian) order, zero-extended into r0; a load
    outside the packet ends the program with r0 = 0."""
    for opcode, size, name in ((0x30, 1, "b"), (0x28, 2, "h"), (0x20, 4, "w")):
        for offset in (0, 16 - size):
            value = int.from_bytes(MEMORY[offset : offset + size], "big")
            yield f"ldabs{name}-offset-{offset}", Case(
                f"ldabs{name} (packet) reads {size} byte(s) at offset {offset} in network byte order into r0.",
                raw=[raw(0xB7, 0, imm=0), raw(opcode, imm=offset), raw(0x95)], mem=MEMORY, result=value)
        yield f"ldind{name}", Case(
            f"ldind{name} (packet) reads {size} byte(s) at r3 + imm (3 + 2) in network byte order into r0.",
            raw=[raw(0xB7, 3, imm=3), raw(opcode + 0x20, 0, 3, imm=2), raw(0x95)], mem=MEMORY,
            result=int.from_bytes(MEMORY[5 : 5 + size], "big"))
    yield "ldabsw-outside-ends-with-zero", Case(
        "ldabsw outside the packet ends the program at once with r0 = 0.",
        raw=[raw(0xB7, 0, imm=7), raw(0x20, imm=14), raw(0xB7, 0, imm=9), raw(0x95)], mem=MEMORY, result=0)


def negative_cases() -> Cases:
    """Programs the RFC does not define: the engine must refuse them (or fault), never run them to a value."""
    invalid = {
        "alu64-op-0xe": 0xE7, "alu64-op-0xf": 0xF7, "alu32-op-0xe": 0xE4, "alu32-op-0xf": 0xF4,
        "jmp-op-0xf": 0xF5, "jmp32-call": 0x86, "jmp32-exit": 0x96, "ld-imm-w": 0x00, "ldx-mode-2": 0x41,
        "neg64-register-source": 0x8F,
    }  # fmt: skip
    for name, opcode in invalid.items():
        yield f"invalid-opcode-{name}", Case(
            f"The opcode {opcode:#04x} is not an RFC 9669 instruction: the program must be refused.",
            raw=[raw(0xB7, 0, imm=0), raw(opcode, 0, 0, 0, 0), raw(0x95)], error="invalid opcode", group="base32",
            cpu=1)
    yield "invalid-register-r11", Case(
        "Registers are r0-r10: an instruction naming r11 must be refused.",
        raw=[raw(0xB7, 11, imm=1), raw(0xB7, 0, imm=0), raw(0x95)], error="invalid register", group="base64", cpu=1)
    yield "invalid-write-r10", Case(
        "r10 is the read-only frame pointer: writing it must be refused.",
        asm=["mov %r10, 0", "mov %r0, 0", "exit"], error="frame pointer is read only", group="base64", cpu=1)
    yield "invalid-jump-past-end", Case(
        "A jump beyond the last instruction must be refused.",
        raw=[raw(0xB7, 0, imm=0), raw(0x05, offset=5), raw(0x95)], error="jump out of range", group="base32", cpu=1)
    yield "invalid-jump-before-start", Case(
        "A jump before the first instruction must be refused.",
        raw=[raw(0xB7, 0, imm=0), raw(0x05, offset=-3), raw(0x95)], error="jump out of range", group="base32",
        cpu=1)
    yield "invalid-jump-into-lddw", Case(
        "A jump into the second half of a lddw must be refused.",
        raw=[raw(0xB7, 0, imm=1), raw(0x15, 0, offset=1, imm=1), raw(0x18, 0, imm=1), raw(0, imm=0), raw(0x95)],
        error="jump into lddw",
        group="base64", cpu=1)
    yield "invalid-lddw-truncated", Case(
        "A lddw that is the last slot lacks its second half: the program must be refused.",
        raw=[raw(0xB7, 0, imm=0), raw(0x95), raw(0x18, 0, imm=1)], error="incomplete lddw", group="base64", cpu=1)
    yield "invalid-lddw-second-slot", Case(
        "The second slot of a lddw must be zero apart from its immediate: an opcode there must be refused.",
        raw=[raw(0x18, 0, imm=1), raw(0xB7, 0, imm=2), raw(0x95)], error="invalid lddw", group="base64", cpu=1)
    yield "invalid-no-exit", Case(
        "A program whose last instruction falls through past its end must be refused (or fault).",
        raw=[raw(0xB7, 0, imm=1), raw(0x07, 0, imm=1)], error="no exit", group="base64", cpu=1)
    yield "invalid-call-local-out-of-range", Case(
        "A local call to a target outside the program must be refused.",
        raw=[raw(0xB7, 0, imm=0), raw(0x85, 0, 1, imm=10), raw(0x95)], error="call out of range", group="base32",
        cpu=1)
    yield "invalid-call-unknown-helper", Case(
        "A call to a helper the engine does not have must be refused (or fault).",
        asm=["mov %r0, 0", "call 0x7ffffff0", "exit"], error="unknown helper", group="base64", cpu=1)
    yield "invalid-end-imm-8", Case(
        "Byte swaps are 16, 32 or 64 bits: le with the immediate 8 must be refused.",
        raw=[raw(0xB7, 0, imm=1), raw(0xD4, 0, imm=8), raw(0x95)], error="invalid byte swap", group="base32", cpu=1)
    yield "invalid-movsx-offset-24", Case(
        "movsx extends 8, 16 or 32 bits: the offset 24 must be refused.",
        raw=[raw(0xB7, 1, imm=1), raw(0xBF, 0, 1, 24), raw(0x95)], error="invalid movsx", group="base64", cpu=4)
    yield "invalid-movsx32-offset-32", Case(
        "The 32-bit movsx extends 8 or 16 bits: the offset 32 must be refused.",
        raw=[raw(0xB7, 1, imm=1), raw(0xBC, 0, 1, 32), raw(0x95)], error="invalid movsx", group="base32", cpu=4)
    yield "invalid-sdiv-offset-2", Case(
        "div and mod take the offset 0 (unsigned) or 1 (signed): the offset 2 must be refused.",
        raw=[raw(0xB7, 0, imm=6), raw(0x37, 0, offset=2, imm=3), raw(0x95)], error="invalid division",
        group="divmul64", cpu=4)
    yield "invalid-atomic-byte", Case(
        "Atomic operations are 32 or 64 bits wide: a byte-sized atomic add must be refused.",
        raw=[raw(0x7A, 10, offset=-8, imm=0), raw(0xB7, 2, imm=1), raw(0xD3, 10, 2, -8, 0x00),
             raw(0xB7, 0, imm=0), raw(0x95)], error="invalid atomic", group="atomic32", cpu=3)
    yield "invalid-atomic-op", Case(
        "The atomic operation 0x02 is not defined: the program must be refused.",
        raw=[raw(0x7A, 10, offset=-8, imm=0), raw(0xB7, 2, imm=1), raw(0xDB, 10, 2, -8, 0x02),
             raw(0xB7, 0, imm=0), raw(0x95)], error="invalid atomic", group="atomic64", cpu=3)
    yield "invalid-read-past-memory", Case(
        "A load beyond the end of the memory must be refused or fault.",
        asm=["ldxdw %r0, [%r1+16]", "exit"], mem=MEMORY[:8], error="out of bounds", group="base64", cpu=1)
    yield "invalid-write-before-memory", Case(
        "A store before the start of the memory must be refused or fault.",
        asm=["stw [%r1-4], 0", "mov %r0, 0", "exit"], mem=MEMORY[:8], error="out of bounds", group="base32", cpu=1)


FAMILIES: tuple[Callable[[], Cases], ...] = (
    alu_cases, division_cases, v4_move_and_swap_cases, jump_cases, loop_cases, memory_cases, lddw_cases,
    atomic_cases, call_cases, packet_cases, negative_cases,
)


def cases() -> dict[str, str]:
    """File name -> text of every generated case."""
    out: dict[str, str] = {}
    for family in FAMILIES:
        for name, case in family():
            assert f"{name}.data" not in out, name
            out[f"{name}.data"] = case.text
    return out


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in cases().items():
        (directory / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(cases())} cases to {directory}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
