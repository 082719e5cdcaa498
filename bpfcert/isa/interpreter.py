"""The reference interpreter: RFC 9669 (BPF Instruction Set Architecture) executed as written, the oracle the
other engines are compared with.

Machine model. Registers r0-r10 are 64-bit; at entry r1 holds the address of the memory, r2 its length, r10
the top of a 512-byte stack frame (read-only); the others are 0. The memory sits at `MEMORY_ADDRESS`, the stack
of `MAX_FRAMES` frames at `STACK_ADDRESS`, and both start zeroed apart from the memory's bytes.

Semantics (RFC 9669 section 4-5). ALU (32-bit) results are zero-extended to 64 bits. Immediates are
sign-extended to 64 bits for ALU64 and the 64-bit jumps, and taken as 32 bits for ALU and JMP32. Shift amounts
are masked to 63 (ALU64) or 31 (ALU). Unsigned division by zero gives 0; modulo by zero leaves dst (ALU: its low
32 bits). Signed division truncates towards zero, so INT_MIN / -1 = INT_MIN and INT_MIN % -1 = 0. `le` truncates
to its width, `be` and `bswap` swap the bytes of its width; `movsx` and the sign-extending loads extend from 8,
16 or 32 bits. lddw loads a 64-bit immediate. A local call pushes r6-r9 and r10 and gives the callee a fresh frame
(r10 - 512); exit returns from it, or ends the program with r0. Atomics operate on 32 or 64 bits of memory: add,
or, and, xor, each optionally fetching the old value into src; xchg; cmpxchg, comparing with r0 and leaving the
old value in r0 (zero-extended). Memory is little-endian unless the engine is built for a big-endian machine
(`byteorder="big"`, as the kernel's engines on s390x): loads, stores and atomics then read and write big-endian,
`be` truncates and `le` swaps. The legacy packet loads (group `packet`) read big-endian from the memory at imm
or src + imm into r0; out of bounds, they end the program with r0 = 0 as Linux does.

An engine refuses a program before running it (an Outcome error) when: its bytes do not decode; an opcode or a
field that selects the operation is unknown; a register is above r10 or r10 is written; a jump or a local call
lands outside the program or inside a lddw; execution can run off its end; it calls a helper, a kfunc or through
a register (the reference provides no platform functions); a lddw has a pseudo source (map, BTF, function).
It faults while running (an Outcome error) on a memory access outside the memory and the stack, on a call deeper
than `MAX_FRAMES`, and when the instruction budget runs out (an endless loop).

Speed: a program is decoded and validated once, then translated into one Python function (compiled, and cached
by program bytes): registers are locals, each basic block is straight-line Python at a leaf of a binary
dispatch on the block's start, so a run costs a few Python statements per instruction.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import NamedTuple

from bpfcert import insn as bpf
from bpfcert.errors import FormatError
from bpfcert.isa.engine import Outcome
from bpfcert.isa.groups import GROUPS

MEMORY_ADDRESS = 0x0000_1000_0000_0000
STACK_FRAME = 512
MAX_FRAMES = 8  # as Linux's MAX_CALL_FRAMES: the program's frame and seven nested calls
STACK_ADDRESS = 0x0000_7FFF_0000_0000
STACK_TOP = STACK_ADDRESS + STACK_FRAME * MAX_FRAMES
DEFAULT_BUDGET = 1_000_000  # instructions a run may execute
MAX_INSNS = 65536  # a longer program is refused (its translation would cost seconds)
RFC_GROUPS = frozenset(GROUPS) - {"callx"}  # callx is bpf_conformance's, not RFC 9669's

M64, M32 = 0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF
_MASK = {1: 0xFF, 2: 0xFFFF, 4: M32, 8: M64}
_SIGN = {1: 0x80, 2: 0x8000, 4: 0x8000_0000, 8: 0x8000_0000_0000_0000}
_CONDITIONS = {
    "jeq": "==", "jne": "!=", "jgt": ">", "jge": ">=", "jlt": "<", "jle": "<=",
    "jsgt": ">", "jsge": ">=", "jslt": "<", "jsle": "<=",
}  # fmt: skip


class Refused(Exception):
    """The program is not one the reference runs (the message names the instruction and why)."""


class Fault(Exception):
    """The program faulted while running (the message names the instruction and why)."""


class Execution(NamedTuple):
    r0: int
    instructions: int  # executed


def _oob(where: int, address: int, size: int, access: str) -> Fault:
    return Fault(f"instruction {where}: {access} of {size} bytes at {address:#x} is outside the memory and the stack")


def _swap(value: int, size: int) -> int:
    return int.from_bytes((value & _MASK[size]).to_bytes(size, "little"), "big")


def _signed(value: int, size: int) -> int:
    return (value & _MASK[size] ^ _SIGN[size]) - _SIGN[size]


def _sdiv(dst: int, src: int, size: int) -> int:
    a, b = _signed(dst, size), _signed(src, size)
    if b == 0:
        return 0
    quotient = abs(a) // abs(b)
    return (-quotient if (a < 0) != (b < 0) else quotient) & _MASK[size]


def _smod(dst: int, src: int, size: int) -> int:
    a, b = _signed(dst, size), _signed(src, size)
    if b == 0:
        return dst & _MASK[size]
    remainder = abs(a) % abs(b)
    return (-remainder if a < 0 else remainder) & _MASK[size]


def _fault(message: str) -> Fault:
    return Fault(message)


BYTEORDERS = {"little": "<", "big": ">"}


def _namespace(byteorder: str) -> dict[str, object]:
    """What a translated program calls: memory accessors in `byteorder` ("little" or "big") and the helpers."""
    o = BYTEORDERS[byteorder]
    return {
        "_oob": _oob, "_swap": _swap, "_sdiv": _sdiv, "_smod": _smod, "_fault": _fault,
        **{f"_u{n}": struct.Struct(o + c).unpack_from for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))},
        **{f"_s{n}": struct.Struct(o + c).unpack_from for n, c in ((1, "b"), (2, "h"), (4, "i"))},
        **{f"_p{n}": struct.Struct(o + c).pack_into for n, c in ((1, "B"), (2, "H"), (4, "I"), (8, "Q"))},
        **{f"_be{n}": struct.Struct(">" + c).unpack_from for n, c in ((1, "B"), (2, "H"), (4, "I"))},
    }  # fmt: skip


_NAMESPACES = {byteorder: _namespace(byteorder) for byteorder in BYTEORDERS}  # built once, copied per program


class Program:
    """A validated program translated to Python for a machine of `byteorder`; `run` executes it on some memory."""

    def __init__(self, program: bytes, byteorder: str = "little") -> None:
        try:
            insns = bpf.decode(program)
        except FormatError as exc:
            raise Refused(str(exc)) from None
        if not insns:
            raise Refused("the program is empty")
        if len(insns) > MAX_INSNS:
            raise Refused(f"{len(insns)} instructions exceed the reference's limit of {MAX_INSNS}")
        self.source = _Translator(insns, len(program) // 8, byteorder).source()
        namespace = dict(_NAMESPACES[byteorder])
        exec(compile(self.source, "<bpf program>", "exec"), namespace)
        self._run: Callable[[bytearray, int], tuple[int, int]] = namespace["_run"]  # type: ignore[assignment]

    def run(self, memory: bytes, budget: int = DEFAULT_BUDGET) -> Execution:
        """Run on a copy of `memory`; Fault if the program faults or executes more than `budget` instructions."""
        r0, executed = self._run(bytearray(memory), budget)
        return Execution(r0, executed)


@functools.lru_cache(maxsize=2048)
def load(program: bytes, byteorder: str = "little") -> Program:
    """The translated `program` (cached by its bytes and byte order); Refused if the reference does not run it."""
    return Program(program, byteorder)


class ReferenceEngine:
    """The reference interpreter as an Engine, in-process: every RFC 9669 group, cpu v4; memory in `byteorder`."""

    name = "python-reference"
    groups = RFC_GROUPS
    cpu_version = 4

    def __init__(self, budget: int = DEFAULT_BUDGET, byteorder: str = "little") -> None:
        if byteorder not in BYTEORDERS:
            raise ValueError(f"unknown byte order {byteorder!r} (little or big)")
        self.budget, self.byteorder = budget, byteorder

    def run(self, program: bytes, memory: bytes) -> Outcome:
        try:
            return Outcome(load(program, self.byteorder).run(memory, self.budget).r0, None)
        except (Refused, Fault) as exc:
            return Outcome(None, str(exc))

    def close(self) -> None:
        return None


class _Translator:
    """Validates decoded instructions and writes the Python function that runs them."""

    def __init__(self, insns: list[bpf.Insn], slots: int, byteorder: str) -> None:
        self.insns, self.slots, self.byteorder = insns, slots, byteorder
        self.starts = {i.index for i in insns}

    def refuse(self, insn: bpf.Insn, why: str) -> Refused:
        return Refused(f"instruction {insn.index} ({insn.opcode:#04x}): {why}")

    def target(self, insn: bpf.Insn, relative: int) -> int:
        where = insn.index + 1 + relative
        if where not in self.starts:
            what = "outside the program" if not 0 <= where < self.slots else "inside a lddw"
            raise self.refuse(insn, f"jumps to {where}, {what}")
        return where

    def source(self) -> str:
        leaders = {0}
        for insn in self.insns:
            self.check_registers(insn)
            leaders.update(self.successors(insn))
            if insn.cls in ("JMP", "JMP32") and insn.index + 1 < self.slots:
                leaders.add(insn.index + 1)
        starts = sorted(leaders)
        members: dict[int, list[bpf.Insn]] = {start: [] for start in starts}
        current = 0
        for insn in self.insns:
            current = insn.index if insn.index in members else current
            members[current].append(insn)
        ends = [*starts[1:], self.slots]
        blocks = [self.block(members[start], end) for start, end in zip(starts, ends, strict=True)]
        lines = [
            "def _run(mem, budget):",
            f"    stack = bytearray({STACK_FRAME * MAX_FRAMES})",
            "    size = len(mem)",
            f"    end1, end2, end4, end8 = ({', '.join(f'{MEMORY_ADDRESS - n} + size' for n in (1, 2, 4, 8))})",
            "    r0 = r3 = r4 = r5 = r6 = r7 = r8 = r9 = 0",
            f"    r1, r2, r10 = {MEMORY_ADDRESS}, size, {STACK_TOP}",
            "    frames = []",
            "    left = budget",
            "    pc = 0",
            "    while True:",
        ]
        lines += self.dispatch(starts, blocks, 0, len(starts), "        ")
        return "\n".join(lines) + "\n"

    def dispatch(self, starts: list[int], blocks: list[list[str]], lo: int, hi: int, indent: str) -> list[str]:
        if hi - lo == 1:
            return [indent + line for line in blocks[lo]]
        mid = (lo + hi) // 2
        return [
            f"{indent}if pc < {starts[mid]}:",
            *self.dispatch(starts, blocks, lo, mid, indent + "    "),
            f"{indent}else:",
            *self.dispatch(starts, blocks, mid, hi, indent + "    "),
        ]

    def check_registers(self, insn: bpf.Insn) -> None:
        used = [insn.dst_reg]
        if insn.cls in ("LDX", "STX") or (insn.source == "X" and insn.op not in ("call", "exit")):
            used.append(insn.src_reg)
        if max(used) > 10:
            raise self.refuse(insn, f"register r{max(used)} does not exist")

    def successors(self, insn: bpf.Insn) -> list[int]:
        """Where a jump or local call goes (validated); refuses an instruction execution can run off the end from."""
        mnem = insn.mnemonic
        if insn.cls in ("JMP", "JMP32"):
            if mnem not in (*_CONDITIONS, "jset", "ja", "gotol", "call", "exit") or (
                insn.cls == "JMP32" and mnem in ("call", "exit")
            ):
                raise self.refuse(insn, "unknown jump")
            if mnem in ("ja", "gotol"):
                return [self.target(insn, insn.offset if mnem == "ja" else insn.imm)]
            if mnem == "exit":
                return []
        if insn.index + insn.slots >= self.slots:
            raise self.refuse(insn, "execution can run off the end of the program")
        if mnem == "call":
            return [self.target(insn, insn.imm)] if insn.src_reg == 1 and insn.source == "K" else []
        return [self.target(insn, insn.offset)] if insn.cls in ("JMP", "JMP32") else []

    def block(self, insns: list[bpf.Insn], end: int) -> list[str]:
        lines = [
            f"left -= {len(insns)}",
            "if left < 0:",
            "    raise _fault('instruction budget of %d exhausted' % budget)",
        ]
        for insn in insns[:-1]:
            lines += self.straight(insn)
        last = insns[-1]
        if last.cls in ("JMP", "JMP32"):
            lines += self.branch(last)
        else:
            lines += self.straight(last)
            lines.append(f"pc = {end}")
        return lines

    # Straight-line instructions.
    def straight(self, insn: bpf.Insn) -> list[str]:
        cls = insn.cls
        if cls in ("ALU", "ALU64"):
            return self.alu(insn)
        if cls == "LD":
            return self.ld(insn)
        if cls == "LDX":
            return self.ldx(insn)
        if cls in ("ST", "STX"):
            return self.store(insn)
        raise self.refuse(insn, "unknown instruction")

    def writes(self, insn: bpf.Insn, reg: int) -> str:
        if reg == 10:
            raise self.refuse(insn, "r10 is read-only")
        return f"r{reg}"

    def alu(self, insn: bpf.Insn) -> list[str]:
        wide = insn.cls == "ALU64"
        mask, bits = (M64, 63) if wide else (M32, 31)
        op, size = insn.op, 8 if wide else 4
        d = self.writes(insn, insn.dst_reg)
        x = insn.source == "X"
        if op is None:
            raise self.refuse(insn, "unknown ALU operation")
        if op == "end":
            return self.end(insn, d)
        sign_extends = (8, 16, 32) if wide else (8, 16)
        bad_div = op in ("div", "mod") and insn.offset not in (0, 1)
        if bad_div or (op == "mov" and insn.offset and (not x or insn.offset not in sign_extends)):
            raise self.refuse(insn, f"offset {insn.offset} is not defined for {op}")
        if op == "neg":
            if x:
                raise self.refuse(insn, "neg takes no source register")
            return [f"{d} = -{d} & {mask}"]
        s = f"r{insn.src_reg}" if x else str(insn.imm & mask)
        if op == "mov":
            if insn.offset:
                n = insn.offset // 8
                return [f"{d} = ((r{insn.src_reg} & {_MASK[n]} ^ {_SIGN[n]}) - {_SIGN[n]}) & {mask}"]
            return [f"{d} = {s}" if not x or wide else f"{d} = {s} & {M32}"]
        if op in ("add", "sub", "mul"):
            sym = {"add": "+", "sub": "-", "mul": "*"}[op]
            return [f"{d} = ({d} {sym} {s}) & {mask}"]
        if op in ("or", "and", "xor"):
            sym = {"or": "|", "and": "&", "xor": "^"}[op]
            return [f"{d} = ({d} {sym} {s}) & {mask}" if not wide else f"{d} {sym}= {s}"]
        shift = f"({s} & {bits})" if x else str(insn.imm & bits)
        if op == "lsh":
            return [f"{d} = ({d} << {shift}) & {mask}"]
        if op == "rsh":
            return [f"{d} = ({d} & {mask}) >> {shift}" if not wide else f"{d} >>= {shift}"]
        if op == "arsh":
            sign = _SIGN[size]
            return [f"{d} = ((({d} & {mask}) ^ {sign}) - {sign} >> {shift}) & {mask}"]
        if insn.offset == 1:  # sdiv, smod
            return [f"{d} = _{'sdiv' if op == 'div' else 'smod'}({d}, {s}, {size})"]
        divisor = f"({s} & {mask})" if x and not wide else s
        if op == "div":
            return [f"{d} = ({d} & {mask}) // {divisor} if {divisor} else 0"]
        return [f"{d} = ({d} & {mask}) % {divisor} if {divisor} else {d} & {mask}"]

    def end(self, insn: bpf.Insn, d: str) -> list[str]:
        if insn.imm not in (16, 32, 64):
            raise self.refuse(insn, f"byte swap width {insn.imm} is not 16, 32 or 64")
        n = insn.imm // 8
        if insn.cls == "ALU64":
            if insn.source == "X":
                raise self.refuse(insn, "bswap takes no source register")
            return [f"{d} = _swap({d}, {n})"]
        if (insn.source == "K") == (self.byteorder == "little"):  # to the machine's own order: truncates only
            return [f"{d} &= {_MASK[n]}"]
        return [f"{d} = _swap({d}, {n})"]

    def address(self, insn: bpf.Insn, base: int, size: int, access: str) -> list[str]:
        """Lines that leave the buffer in `b` and the offset in it in `a` for an access of `size` bytes."""
        return [
            f"a = (r{base} + {insn.offset}) & {M64}",
            f"if {STACK_ADDRESS} <= a <= {STACK_TOP - size}:",
            f"    b = stack; a -= {STACK_ADDRESS}",
            f"elif {MEMORY_ADDRESS} <= a <= end{size}:",
            f"    b = mem; a -= {MEMORY_ADDRESS}",
            "else:",
            f"    raise _oob({insn.index}, a, {size}, '{access}')",
        ]

    def ld(self, insn: bpf.Insn) -> list[str]:
        if insn.wide:
            if insn.src_reg:
                raise self.refuse(insn, f"lddw with pseudo source {insn.src_reg} ({insn.pseudo}) needs a platform")
            return [f"{self.writes(insn, insn.dst_reg)} = {insn.imm64}"]
        if insn.mode not in ("ABS", "IND") or insn.size == "DW":
            raise self.refuse(insn, "unknown load")
        size = bpf.SIZE_BYTES[insn.size or "W"]
        base = f"(r{insn.src_reg} + {insn.imm}) & {M32}" if insn.mode == "IND" else str(insn.imm & M32)
        return [
            f"a = {base}",
            f"if a > size - {size}:",
            "    return 0, budget - left",
            f"r0 = _be{size}(mem, a)[0]",
        ]

    def ldx(self, insn: bpf.Insn) -> list[str]:
        size = bpf.SIZE_BYTES[insn.size or "W"]
        d = self.writes(insn, insn.dst_reg)
        if insn.mode == "MEM":
            return [*self.address(insn, insn.src_reg, size, "read"), f"{d} = _u{size}(b, a)[0]"]
        if insn.mode == "MEMSX" and size < 8:
            return [*self.address(insn, insn.src_reg, size, "read"), f"{d} = _s{size}(b, a)[0] & {M64}"]
        raise self.refuse(insn, "unknown load")

    def store(self, insn: bpf.Insn) -> list[str]:
        size = bpf.SIZE_BYTES[insn.size or "W"]
        mask = _MASK[size]
        where = self.address(insn, insn.dst_reg, size, "write")
        if insn.mode == "MEM":
            value = str(insn.imm & mask) if insn.cls == "ST" else f"r{insn.src_reg} & {mask}"
            return [*where, f"_p{size}(b, a, {value})"]
        if insn.cls == "ST" or insn.mode != "ATOMIC" or size not in (4, 8):
            raise self.refuse(insn, "unknown store")
        op = bpf.ATOMIC_OPS.get(insn.imm)
        s = f"r{insn.src_reg}"
        old = f"_u{size}(b, a)[0]"
        if op in ("add", "or", "and", "xor", "fetch_add", "fetch_or", "fetch_and", "fetch_xor"):
            sym = {"add": "+", "or": "|", "and": "&", "xor": "^"}[op.removeprefix("fetch_")]
            lines = [*where, f"old = {old}", f"_p{size}(b, a, (old {sym} {s}) & {mask})"]
            return lines + ([f"{self.writes(insn, insn.src_reg)} = old"] if op.startswith("fetch_") else [])
        if op == "xchg":
            return [*where, f"old = {old}", f"_p{size}(b, a, {s} & {mask})", f"{self.writes(insn, insn.src_reg)} = old"]
        if op == "cmpxchg":
            return [*where, f"old = {old}", f"if old == r0 & {mask}:", f"    _p{size}(b, a, {s} & {mask})", "r0 = old"]
        raise self.refuse(insn, f"atomic operation {insn.imm:#x} is not in RFC 9669")

    # Block-ending instructions.
    def branch(self, insn: bpf.Insn) -> list[str]:
        mnem, following = insn.mnemonic, insn.index + 1
        if insn.cls == "JMP32" and insn.op in ("call", "exit", None):
            raise self.refuse(insn, "unknown jump")
        if mnem == "exit":
            if insn.source == "X":
                raise self.refuse(insn, "exit takes no source register")
            return ["if frames:", "    pc, r6, r7, r8, r9, r10 = frames.pop()", "else:", "    return r0, budget - left"]
        if mnem == "call":
            if insn.source == "X":
                raise self.refuse(insn, "a call through a register needs a platform's helpers")
            if insn.src_reg != 1:
                kind = {0: "helper function", 2: "kfunc"}.get(insn.src_reg, f"call kind {insn.src_reg}")
                raise self.refuse(insn, f"{kind} {insn.imm} is not available (the reference has no platform)")
            return [
                f"if len(frames) == {MAX_FRAMES - 1}:",
                f"    raise _fault('instruction {insn.index}: a call deeper than {MAX_FRAMES} frames')",
                f"frames.append(({following}, r6, r7, r8, r9, r10))",
                f"r10 -= {STACK_FRAME}",
                f"pc = {self.target(insn, insn.imm)}",
            ]
        if mnem == "gotol":
            return [f"pc = {self.target(insn, insn.imm)}"]
        if mnem == "ja":
            if insn.source == "X":
                raise self.refuse(insn, "ja takes no source register")
            return [f"pc = {self.target(insn, insn.offset)}"]
        if mnem not in _CONDITIONS and mnem != "jset":
            raise self.refuse(insn, "unknown jump")
        mask = M32 if insn.cls == "JMP32" else M64
        sign = _SIGN[4 if insn.cls == "JMP32" else 8]
        d = f"(r{insn.dst_reg} & {mask})" if mask == M32 else f"r{insn.dst_reg}"
        if insn.source == "X":
            s = f"(r{insn.src_reg} & {mask})" if mask == M32 else f"r{insn.src_reg}"
        else:
            s = str(insn.imm & mask)
        if mnem == "jset":
            condition = f"{d} & {s}"
        elif mnem.startswith("js"):
            right = str((insn.imm & mask) ^ sign) if insn.source == "K" else f"({s} ^ {sign})"
            condition = f"({d} ^ {sign}) {_CONDITIONS[mnem]} {right}"
        else:
            condition = f"{d} {_CONDITIONS[mnem]} {s}"
        return [f"pc = {self.target(insn, insn.offset)} if {condition} else {following}"]
