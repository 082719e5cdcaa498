"""Hypothesis strategies for well-formed BPF programs and their memory, for differential fuzzing.

`programs(groups, cpu_version)` draws (program, memory) pairs that any engine claiming those groups and that cpu
version must run, with one right answer, and that a verifier like Linux's can prove safe:

- r6 holds the memory's address (copied from r1 first: callee-saved, so it survives calls); memory accesses go
  through r6 at aligned offsets inside the memory, or through r10 inside the 64 bytes the prologue zeroes;
  atomics go to the stack only (Linux allows no atomics on packet memory); pointers never enter arithmetic;
- every register an instruction reads was written first (the prologue sets r0-r5 and r7-r9), and after a call
  r1-r5 are set again (a callee clobbers them);
- jumps go forward over a few instructions; the one backward jump closes a bounded loop counted down in r9,
  which nothing else writes; local calls go to functions that use r0-r5 and their own zeroed stack only;
  every instruction is reachable (a function nothing calls is left out);
- immediate shift amounts stay below the operand width (verifiers refuse the others).

The program ends by folding every register and a stack and memory word into r0, so that any difference in state
shows in the result. Instructions are drawn only from the groups and cpu version given.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from hypothesis import strategies as st

from bpfcert import insn as b
from bpfcert.errors import BpfcertError
from bpfcert.isa.groups import implied

MEMORY_SIZES = (16, 32, 64)
STACK_USED = 64  # bytes below r10 the prologue zeroes (32 in a function)
MAIN_WRITES = (0, 2, 3, 4, 5, 7, 8)
MAIN_READS = (*MAIN_WRITES, 9)
CALLEE_REGS = (0, 1, 2, 3, 4, 5)
_BASE_ALU = ("add", "sub", "or", "and", "lsh", "rsh", "xor", "mov", "arsh", "neg")
_V1_JUMPS = ("jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge")
_V2_JUMPS = ("jlt", "jle", "jslt", "jsle")

# Values where ISA implementations go wrong (signs, widths, carries) are drawn as often as any others.
EDGES = (0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7FFF_FFFF, -0x8000_0000, 0xFF, 0x80, 0x8000, -2, -0x8000)
EDGES64 = (0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000, 0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_8000_0000)
imm32 = st.one_of(st.sampled_from(EDGES), st.integers(-(2**31), 2**31 - 1))
imm64 = st.one_of(
    st.sampled_from([e & (2**64 - 1) for e in EDGES] + list(EDGES64)),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**31), -1).map(lambda v: v & (2**64 - 1)),
)
shifts64 = st.one_of(st.sampled_from((1, 4, 31, 32, 63)), st.integers(0, 63))
shifts32 = st.one_of(st.sampled_from((1, 4, 16, 31)), st.integers(0, 31))


@dataclass(frozen=True)
class Claims:
    """What the drawn instructions may use."""

    groups: frozenset[str]
    cpu_version: int

    def has(self, group: str) -> bool:
        return group in self.groups

    @property
    def alu_ops(self) -> tuple[str, ...]:
        ops = [*_BASE_ALU, "end"]
        if self.has("divmul32") or self.has("divmul64"):
            ops += ["mul", "div", "mod"] + (["sdiv", "smod"] if self.cpu_version >= 4 else [])
        if self.cpu_version >= 4:
            ops += ["movsx"]
        return tuple(ops)

    @property
    def jumps(self) -> tuple[str, ...]:
        return _V1_JUMPS + (_V2_JUMPS if self.cpu_version >= 2 else ())

    @property
    def atomic_sizes(self) -> tuple[str, ...]:
        return tuple(size for size, group in (("W", "atomic32"), ("DW", "atomic64")) if self.has(group))

    @property
    def atomic_ops(self) -> tuple[str, ...]:
        if self.cpu_version < 3:
            return ("add",)  # v1-v2 have only the plain add (BPF_XADD)
        fetching = ("fetch_add", "fetch_or", "fetch_and", "fetch_xor", "xchg", "cmpxchg")
        return ("add", "or", "and", "xor", *fetching)


def _raw(opcode: int, dst: int = 0, src: int = 0, offset: int = 0, imm: int = 0) -> b.Insn:
    return b.Insn(0, opcode, dst, src, offset, imm)


# A fragment is a list of instructions and nested markers: ("if", jump, inner) jumps over `inner`;
# ("loop", count, body) repeats `body`; ("call", n) calls function n. `_emit` lays them out.
Fragment = list[object]


@st.composite
def _alu(draw: st.DrawFn, claims: Claims, writes: tuple[int, ...], reads: tuple[int, ...]) -> Fragment:
    op = draw(st.sampled_from(claims.alu_ops))
    widths = [False, True]
    if op in ("mul", "div", "mod", "sdiv", "smod"):
        widths = [wide for wide, group in ((False, "divmul32"), (True, "divmul64")) if claims.has(group)]
    wide = draw(st.sampled_from(widths))
    dst = draw(st.sampled_from(writes))
    cls = 0x07 if wide else 0x04
    if op == "end":
        width = draw(st.sampled_from((16, 32, 64)))
        if claims.cpu_version >= 4 and wide:
            return [_raw(0xD7, dst, imm=width)]  # bswap
        return [_raw(0xD4 | draw(st.sampled_from((0, 8))), dst, imm=width)]  # le / be
    if op == "neg":
        return [_raw(0x80 | cls, dst)]
    if op == "movsx":
        bits = draw(st.sampled_from((8, 16, 32) if wide else (8, 16)))
        return [_raw(0xB8 | cls, dst, draw(st.sampled_from(reads)), bits)]
    signed = op in ("sdiv", "smod")
    code = b.ALU_OPS.index(op[1:] if signed else op) << 4 | cls
    offset = 1 if signed else 0
    if draw(st.booleans()):
        return [_raw(code | 0x08, dst, draw(st.sampled_from(reads)), offset)]
    if op in ("lsh", "rsh", "arsh"):
        return [_raw(code, dst, imm=draw(shifts64 if wide else shifts32))]
    return [_raw(code, dst, offset=offset, imm=draw(imm32))]


@st.composite
def _lddw(draw: st.DrawFn, writes: tuple[int, ...]) -> Fragment:
    return [b.ld_imm64(draw(st.sampled_from(writes)), draw(imm64))]


@st.composite
def _memory_access(
    draw: st.DrawFn, claims: Claims, writes: tuple[int, ...], reads: tuple[int, ...], memory: int, stack: int
) -> Fragment:
    size = draw(st.sampled_from(b.SIZES))
    n = b.SIZE_BYTES[size]
    on_stack = memory == 0 or draw(st.booleans())
    if on_stack:
        base, offset = 10, -n * draw(st.integers(1, stack // n))
    else:
        base, offset = 6, n * draw(st.integers(0, memory // n - 1))
    kind = draw(st.sampled_from(("load", "store", "store-imm")))
    if kind == "load":
        if claims.cpu_version >= 4 and size != "DW" and draw(st.booleans()):
            return [_raw(0x81 | b.SIZES.index(size) << 3, draw(st.sampled_from(writes)), base, offset)]  # ldxs
        return [b.ldx_mem(size, draw(st.sampled_from(writes)), base, offset)]
    if kind == "store":
        return [b.stx_mem(size, base, draw(st.sampled_from(reads)), offset)]
    return [b.st_mem(size, base, offset, draw(imm32))]


@st.composite
def _atomic(draw: st.DrawFn, claims: Claims, writes: tuple[int, ...], stack: int) -> Fragment:
    size = draw(st.sampled_from(claims.atomic_sizes))
    n = b.SIZE_BYTES[size]
    src = draw(st.sampled_from(writes))  # fetching atomics write their source
    return [b.atomic(size, draw(st.sampled_from(claims.atomic_ops)), 10, src, -n * draw(st.integers(1, stack // n)))]


@functools.lru_cache(maxsize=64)
def _simple(
    claims: Claims, writes: tuple[int, ...], reads: tuple[int, ...], memory: int, stack: int
) -> st.SearchStrategy[Fragment]:
    alu = _alu(claims, writes, reads)
    choices = [alu, alu, _memory_access(claims, writes, reads, memory, stack)]
    if claims.has("base64"):
        choices.append(_lddw(writes))
    if claims.atomic_sizes:
        choices.append(_atomic(claims, writes, stack))
    return st.one_of(choices)


@st.composite
def _branch(draw: st.DrawFn, claims: Claims, reads: tuple[int, ...], inner: st.SearchStrategy[Fragment]) -> Fragment:
    op = draw(st.sampled_from(claims.jumps))
    cls = 0x06 if claims.cpu_version >= 3 and draw(st.booleans()) else 0x05
    code = b.JMP_OPS.index(op) << 4 | cls
    dst = draw(st.sampled_from(reads))
    if draw(st.booleans()):
        jump = _raw(code | 0x08, dst, draw(st.sampled_from(reads)))
    else:
        jump = _raw(code, dst, imm=draw(imm32))
    return [("if", jump, draw(st.lists(inner, min_size=1, max_size=3)))]


@st.composite
def _loop(draw: st.DrawFn, inner: st.SearchStrategy[Fragment]) -> Fragment:
    return [("loop", draw(st.integers(1, 6)), draw(st.lists(inner, min_size=1, max_size=4)))]


def _emit(fragments: list[Fragment], out: list[b.Insn], calls: list[tuple[int, int]]) -> None:
    """Append `fragments` to `out`; record (index in out, function number) for each call."""
    for fragment in fragments:
        for item in fragment:
            if isinstance(item, b.Insn):
                out.append(item)
            elif isinstance(item, tuple) and item[0] == "if":
                _, jump, inner = item
                body: list[b.Insn] = []
                _emit(inner, body, [])
                out.append(jump._replace(offset=_slots(body)))
                out.extend(body)
            elif isinstance(item, tuple) and item[0] == "loop":
                _, count, inner = item
                body = []
                _emit(inner, body, [])
                out.append(b.mov64_imm(9, count))
                out.extend(body)
                out.append(b.alu64_imm("sub", 9, 1))
                out.append(b.jmp_imm("jne", 9, 0, -(_slots(body) + 2)))
            elif isinstance(item, tuple) and item[0] == "call":
                calls.append((len(out), item[1]))
                out.append(b.call_local(0))
                out.extend(b.mov64_imm(r, 0x1000 + r) for r in range(1, 6))


def _slots(insns: list[b.Insn]) -> int:
    return sum(i.slots for i in insns)


def _init(regs: tuple[int, ...], values: list[int]) -> list[b.Insn]:
    return [b.ld_imm64(r, v) if v >> 31 else b.mov64_imm(r, v) for r, v in zip(regs, values, strict=True)]


def _zero_stack(size: int) -> list[b.Insn]:
    return [b.st_mem("DW", 10, -off, 0) for off in range(8, size + 1, 8)]


@functools.lru_cache(maxsize=64)
def _main_part(claims: Claims, memory: int, functions: int) -> st.SearchStrategy[Fragment]:
    simple = _simple(claims, MAIN_WRITES, MAIN_READS, memory, STACK_USED)
    parts = [simple, simple, simple, _branch(claims, MAIN_READS, simple), _loop(simple)]
    if functions:
        parts.append(st.sampled_from([[("call", n)] for n in range(functions)]))
    return st.one_of(parts)


@st.composite
def _programs(draw: st.DrawFn, claims: Claims) -> tuple[bytes, bytes]:
    size = draw(st.sampled_from(MEMORY_SIZES))
    memory = draw(st.binary(min_size=size, max_size=size))
    callee = _simple(claims, CALLEE_REGS, CALLEE_REGS, 0, 32)
    functions = [draw(st.lists(callee, min_size=1, max_size=4)) for _ in range(draw(st.integers(0, 2)))]
    body = draw(st.lists(_main_part(claims, size, len(functions)), min_size=2, max_size=16))
    values = draw(st.lists(imm64, min_size=9, max_size=9))
    out = [b.mov64_reg(6, 1), *_init((0, 1, 2, 3, 4, 5, 7, 8, 9), values), *_zero_stack(STACK_USED)]
    calls: list[tuple[int, int]] = []
    _emit(body, out, calls)
    fold = [b.alu64_reg("xor" if n % 2 else "add", 0, r) for n, r in enumerate(MAIN_READS[1:])]
    words = [b.ldx_mem("DW", 2, 10, -8), b.alu64_reg("xor", 0, 2), b.ldx_mem("DW", 2, 6, 0), b.alu64_reg("add", 0, 2)]
    out += [*fold, *words, b.exit_()]
    starts = {}
    for number in sorted({number for _, number in calls}):  # only functions called: verifiers refuse dead code
        starts[number] = _slots(out)
        out += [*_zero_stack(32), b.mov64_imm(0, 0)]
        _emit(functions[number], out, [])
        out.append(b.exit_())
    for index, number in calls:
        here = _slots(out[:index])
        out[index] = b.call_local(starts[number] - here - 1)
    return b.assemble(out), memory


def programs(groups: frozenset[str], cpu_version: int) -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(program, memory) pairs using only `groups` (with what they include) and instructions up to `cpu_version`.
    BpfcertError if the groups lack base64, which the generated programs' 64-bit bookkeeping needs."""
    claims = Claims(implied(groups), cpu_version)
    if not claims.has("base64"):
        raise BpfcertError("fuzzing needs an engine claiming base64 (the generated programs use 64-bit registers)")
    return _programs(claims)
