"""The assembler and disassembler of bpf_conformance's test dialect, on `bpfcert.insn`'s encoder.

One instruction a line; `#` starts a comment; `name:` defines a label (the first `exit` is also the label `exit`
unless one is written); jump targets are labels or `+N`/`-N` slots. Registers `%rN` (or `rN`), N up to 15 so
negative cases can name bad ones. Immediates are decimal or `0x` hex, signed or not, cut to the field's width as
bpf_conformance does (`mov32 %r1, 0x876543210` is legal). The forms:

    add|sub|mul|div|sdiv|or|and|lsh|rsh|mod|smod|xor|mov|arsh[32|64] %rD, %rS|imm    neg[32|64] %rD
    movsx{8,16,32}{64,32} %rD, %rS            be16|be32|be64|le16|le32|le64|bswap16|bswap32|bswap64 %rD
    ldx{b,h,w,dw} %rD, [%rS+off]   ldxs{b,h,w} %rD, [%rS+off]   st{b,h,w,dw} [%rD+off], imm   stx{..} [%rD+off], %rS
    lddw %rD, imm64                ldabs{b,h,w,dw} imm          ldind{b,h,w,dw} %rS, imm
    lock [fetch] add|and|or|xor[32] [%rD+off], %rS              lock xchg|cmpxchg[32] [%rD+off], %rS
    ja target   ja32 target (gotol)   j{eq,gt,ge,set,ne,sgt,sge,lt,le,slt,sle}[32] %rD, %rS|imm, target
    call N | call helper N | call local target | call runtime N | call %rS (callx)   exit

`swap16/32/64` is read as bswap (older bpf_conformance spelling). `.raw 0xWORD` (one 64-bit little-endian slot, as
in a `-- raw` section) is bpfcert's own escape: `disassemble` writes it for bytes no mnemonic reproduces exactly
(unknown opcodes, stray bits in unused fields), so its output always assembles back to the same bytes.
"""

from __future__ import annotations

import functools
import re
import struct
from typing import NamedTuple

from bpfcert import insn as bi
from bpfcert.errors import FormatError

# Operation codes from bpfcert.insn's tables; sdiv/smod are div/mod with offset 1.
_ALU = {name: code for code, name in enumerate(bi.ALU_OPS) if name != "end"} | {"sdiv": 3, "smod": 9}
_JMP = {name: code for code, name in enumerate(bi.JMP_OPS) if name not in ("ja", "call", "exit", "jcond")}
_JMP_NAMES = {code: name for name, code in _JMP.items()}
# Atomic operations by their dialect name; `lock fetch op` sets the fetch bit of add/or/and/xor.
_ATOMIC = {name: bi.ATOMIC_CODES[name] for name in ("add", "or", "and", "xor", "xchg", "cmpxchg")}
_ATOMIC_NAMES = {code: name for name, code in _ATOMIC.items()}
_SIZE_BITS = {name.lower(): code << 3 for code, name in enumerate(bi.SIZES)}  # w h b dw
_SIZE_NAMES = {bits: name for name, bits in _SIZE_BITS.items()}

_LABEL = re.compile(r"([A-Za-z_.$][\w.$]*):")
_NUMBER = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_REGISTER = re.compile(r"%?r([0-9]{1,2})")
_MEMORY = re.compile(r"\[\s*(%?r[0-9]{1,2})\s*(?:([+-])\s*(0[xX][0-9a-fA-F]+|[0-9]+)\s*)?\]")
_ALU_FORM = re.compile(r"(add|sub|mul|div|sdiv|or|and|lsh|rsh|neg|mod|smod|xor|mov|arsh)(32|64)?")
_MOVSX_FORM = re.compile(r"movsx(8|16|32)(32|64)")
_END_FORM = re.compile(r"(be|le|bswap|swap)(16|32|64)")
_MEM_FORM = re.compile(r"(ldxs|ldx|stx|st|ldabs|ldind)(dw|b|h|w)")
_JMP_FORM = re.compile(r"(j[a-z]+?)(32)?")
_MAX_TOKEN = 100  # longer numbers or names are refused before Python parses them (bounded cost)


class _Line(NamedTuple):
    """One parsed line: its instruction (or `.raw` word), and the label its jump field ('offset'/'imm') awaits."""

    number: int
    text: str
    insn: bi.Insn | None
    raw: bytes = b""
    target: str | None = None
    field: str = ""


def _fail(number: int, text: str, reason: str) -> FormatError:
    shown = text.strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return FormatError(f"line {number}: {reason}: {shown!r}")


def _number(token: str, bits: int, signed_range: bool = False) -> int:
    """A decimal or 0x literal cut to `bits` (two's complement), returned signed as bpfcert.insn stores it.
    Immediates take anything a 64-bit C parse takes; `signed_range` (offsets) insists the value fits."""
    if len(token) > _MAX_TOKEN or not _NUMBER.fullmatch(token):
        raise ValueError(f"not a number: {token[:_MAX_TOKEN]!r}")
    body = token.lstrip("+-")
    value = int(body, 16) if body[:2].lower() == "0x" else int(body, 10)
    value = -value if token.startswith("-") else value
    low, high = (-(1 << (bits - 1)), 1 << bits) if signed_range else (-(1 << 63), 1 << 64)
    if not low <= value < high:
        raise ValueError(f"{token} does not fit in {bits} bits")
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _register(token: str) -> int:
    m = _REGISTER.fullmatch(token)
    if not m or int(m.group(1)) > 15:
        raise ValueError(f"not a register: {token[:_MAX_TOKEN]!r}")
    return int(m.group(1))


def _memory(token: str) -> tuple[int, int]:
    m = _MEMORY.fullmatch(token)
    if not m:
        raise ValueError(f"not a memory operand [%rN+off]: {token[:_MAX_TOKEN]!r}")
    offset = _number(m.group(2) + m.group(3), 16, signed_range=True) if m.group(2) else 0
    return _register(m.group(1)), offset


def _target(token: str, bits: int) -> tuple[int, str | None]:
    """A jump target: a relative `+N`/`-N` (value, None) or a label (0, name)."""
    if token[:1] in "+-":
        return _number(token, bits, signed_range=True), None
    if not re.fullmatch(r"[A-Za-z_.$][\w.$]*", token) or len(token) > _MAX_TOKEN:
        raise ValueError(f"not a label or +/- offset: {token[:_MAX_TOKEN]!r}")
    return 0, token


def _operands(rest: str, count: int, mnemonic: str) -> list[str]:
    ops = [op.strip() for op in rest.split(",")] if rest.strip() else []
    if len(ops) != count or any(not op for op in ops):
        raise ValueError(f"{mnemonic} takes {count} operand{'s' if count != 1 else ''}, got {len(ops)}")
    return ops


def _insn(opcode: int, dst: int = 0, src: int = 0, offset: int = 0, imm: int = 0) -> bi.Insn:
    return bi.Insn(0, opcode, dst, src, offset, imm)


@functools.lru_cache(maxsize=8192)  # suites repeat the same lines; an Insn is immutable
def _encode(mnemonic: str, rest: str) -> tuple[bi.Insn, str | None, str]:
    """One instruction from its mnemonic and operand text: (insn, label to resolve, field the label fills)."""
    if m := _ALU_FORM.fullmatch(mnemonic):
        name, width = m.groups()
        cls = 0x04 if width == "32" else 0x07
        offset = 1 if name in ("sdiv", "smod") else 0
        if name == "neg":
            (dst,) = _operands(rest, 1, mnemonic)
            return _insn(0x80 | cls, _register(dst)), None, ""
        dst, src = _operands(rest, 2, mnemonic)
        code = _ALU[name] << 4 | cls
        if _REGISTER.fullmatch(src):
            return _insn(code | 0x08, _register(dst), _register(src), offset), None, ""
        return _insn(code, _register(dst), 0, offset, _number(src, 32)), None, ""
    if m := _MOVSX_FORM.fullmatch(mnemonic):
        dst, src = _operands(rest, 2, mnemonic)
        cls = 0x04 if m.group(2) == "32" else 0x07
        return _insn(0xB8 | cls, _register(dst), _register(src), int(m.group(1))), None, ""
    if m := _END_FORM.fullmatch(mnemonic):
        (dst,) = _operands(rest, 1, mnemonic)
        opcode = {"le": 0xD4, "be": 0xDC}.get(m.group(1), 0xD7)
        return _insn(opcode, _register(dst), imm=int(m.group(2))), None, ""
    if m := _MEM_FORM.fullmatch(mnemonic):
        kind, size = m.group(1), _SIZE_BITS[m.group(2)]
        if kind in ("ldx", "ldxs"):
            target, where = _operands(rest, 2, mnemonic)
            base, offset = _memory(where)
            return _insn((0x60 if kind == "ldx" else 0x80) | size | 0x01, _register(target), base, offset), None, ""
        if kind in ("st", "stx"):
            where, value = _operands(rest, 2, mnemonic)
            base, offset = _memory(where)
            if kind == "st":
                return _insn(0x62 | size, base, 0, offset, _number(value, 32)), None, ""
            return _insn(0x63 | size, base, _register(value), offset), None, ""
        if kind == "ldabs":
            (value,) = _operands(rest, 1, mnemonic)
            return _insn(0x20 | size, imm=_number(value, 32)), None, ""
        index, value = _operands(rest, 2, mnemonic)
        return _insn(0x40 | size, 0, _register(index), 0, _number(value, 32)), None, ""
    if mnemonic == "lddw":
        dst, value = _operands(rest, 2, mnemonic)
        imm64 = _number(value, 64) & 0xFFFFFFFFFFFFFFFF
        return bi.ld_imm64(_register(dst), imm64), None, ""
    if mnemonic == "lock":
        return _encode_atomic(rest)
    if mnemonic in ("ja", "ja32"):
        (where,) = _operands(rest, 1, mnemonic)
        if mnemonic == "ja":
            offset, label = _target(where, 16)
            return _insn(0x05, offset=offset), label, "offset"
        imm, label = _target(where, 32)
        return _insn(0x06, imm=imm), label, "imm"
    if mnemonic == "exit":
        _operands(rest, 0, mnemonic)
        return _insn(0x95), None, ""
    if mnemonic in ("call", "callx"):
        return _encode_call(mnemonic, rest)
    if (m := _JMP_FORM.fullmatch(mnemonic)) and m.group(1) in _JMP:
        dst, src, where = _operands(rest, 3, mnemonic)
        code = _JMP[m.group(1)] << 4 | (0x06 if m.group(2) else 0x05)
        offset, label = _target(where, 16)
        if _REGISTER.fullmatch(src):
            return _insn(code | 0x08, _register(dst), _register(src), offset), label, "offset"
        return _insn(code, _register(dst), 0, offset, _number(src, 32)), label, "offset"
    raise ValueError(f"unknown mnemonic {mnemonic[:_MAX_TOKEN]!r}")


def _encode_atomic(rest: str) -> tuple[bi.Insn, str | None, str]:
    words = rest.split(None, 1)
    fetch = words[:1] == ["fetch"]
    if fetch:
        words = words[1].split(None, 1) if len(words) == 2 else []
    if len(words) != 2:
        raise ValueError("lock takes [fetch] op [%rD+off], %rS")
    op_text, operands = words
    m = re.fullmatch(r"(add|and|or|xor|xchg|cmpxchg)(32|64)?", op_text)
    if not m:
        raise ValueError(f"unknown atomic operation {op_text[:_MAX_TOKEN]!r}")
    name = m.group(1)
    if fetch and name in ("xchg", "cmpxchg"):
        raise ValueError(f"{name} always fetches: write 'lock {name}'")
    mem, src = _operands(operands, 2, f"lock {op_text}")
    dst, offset = _memory(mem)
    opcode = 0xC3 | (0x00 if m.group(2) == "32" else 0x18)
    return _insn(opcode, dst, _register(src), offset, _ATOMIC[name] | fetch), None, ""


def _encode_call(mnemonic: str, rest: str) -> tuple[bi.Insn, str | None, str]:
    words = rest.split()
    if mnemonic == "callx" or (len(words) == 1 and _REGISTER.fullmatch(words[0])):
        (reg,) = _operands(rest, 1, mnemonic)
        return _insn(0x8D, _register(reg)), None, ""
    if len(words) not in (1, 2):
        raise ValueError("call takes N, helper N, local target, runtime N or %rN")
    mode, target = ("helper", words[0]) if len(words) == 1 else (words[0], words[1])
    if mode == "helper":
        if _REGISTER.fullmatch(target):
            return _insn(0x8D, _register(target)), None, ""
        return _insn(0x85, imm=_number(target, 32)), None, ""
    if mode == "local":
        imm, label = _target(target, 32)
        return _insn(0x85, src=1, imm=imm), label, "imm"
    if mode == "runtime":
        return _insn(0x85, src=2, imm=_number(target, 32)), None, ""
    raise ValueError(f"unknown call mode {mode[:_MAX_TOKEN]!r} (helper, local or runtime)")


def assemble_lines(lines: list[tuple[int, str]]) -> bytes:
    """Assemble (line number, text) pairs; FormatError naming the line on the first bad one."""
    parsed: list[_Line] = []
    labels: dict[str, int] = {}
    slot, first_exit = 0, None
    for number, raw in lines:
        text = raw.split("#", 1)[0].strip()
        while m := _LABEL.match(text):
            if m.group(1) in labels:
                raise _fail(number, raw, f"label {m.group(1)!r} defined twice")
            labels[m.group(1)] = slot
            text = text[m.end() :].strip()
        if not text:
            continue
        mnemonic, _, rest = text.replace("\t", " ").partition(" ")
        mnemonic = mnemonic.lower()
        try:
            if mnemonic == ".raw":
                word = _number(rest.strip(), 64) & 0xFFFFFFFFFFFFFFFF
                parsed.append(_Line(number, raw, None, struct.pack("<Q", word)))
                slot += 1
                continue
            insn, label, field = _encode(mnemonic, rest)
        except ValueError as exc:
            raise _fail(number, raw, str(exc)) from None
        if mnemonic == "exit" and first_exit is None:
            first_exit = slot
        parsed.append(_Line(number, raw, insn._replace(index=slot), b"", label, field))
        slot += insn.slots
    if first_exit is not None:
        labels.setdefault("exit", first_exit)
    out = bytearray()
    for line in parsed:
        if line.insn is None:
            out += line.raw
            continue
        insn = line.insn
        if line.target is not None:
            if line.target not in labels:
                raise _fail(line.number, line.text, f"unknown label {line.target!r}")
            delta = labels[line.target] - insn.index - 1
            limit = 1 << (15 if line.field == "offset" else 31)
            if not -limit <= delta < limit:
                raise _fail(line.number, line.text, f"label {line.target!r} is {delta} slots away, out of range")
            insn = insn._replace(**{line.field: delta})
        out += bi.encode(insn)
    return bytes(out)


def assemble(text: str) -> bytes:
    """Assemble bpf_conformance-dialect text into a little-endian program; FormatError naming the bad line."""
    return assemble_lines(list(enumerate(text.split("\n"), start=1)))  # lines end at \n only, as there


def _imm(value: int) -> str:
    return str(value) if value < 0 or value <= 4096 else hex(value)


def _mem(reg: int, offset: int) -> str:
    return f"[%r{reg}{offset:+d}]" if offset else f"[%r{reg}]"


def _text(insn: bi.Insn) -> str | None:
    """The dialect's spelling of one instruction, None when it has none."""
    cls, op, code = insn.cls, insn.op, insn.opcode
    d, s = f"%r{insn.dst_reg}", f"%r{insn.src_reg}"
    if cls in ("ALU", "ALU64"):
        width = "32" if cls == "ALU" else ""
        if op == "end":
            name = "bswap" if cls == "ALU64" else ("be" if insn.source == "X" else "le")
            return f"{name}{insn.imm} {d}"
        if op == "neg":
            return f"neg{width} {d}"
        if op == "mov" and insn.offset:
            return f"movsx{insn.offset}{width or '64'} {d}, {s}"
        if op is None:
            return None
        name = ("s" + op) if op in ("div", "mod") and insn.offset == 1 else op
        return f"{name}{width} {d}, {s if insn.source == 'X' else _imm(insn.imm)}"
    if cls in ("JMP", "JMP32"):
        if code == 0x95:
            return "exit"
        if code == 0x85:
            kind = {0: "", 1: "local ", 2: "runtime "}.get(insn.src_reg)
            if kind is None:
                return None
            return f"call {kind}{insn.imm:+d}" if kind == "local " else f"call {kind}{_imm(insn.imm)}"
        if code == 0x8D:
            return f"call {d}"
        if code == 0x05:
            return f"ja {insn.offset:+d}"
        if code == 0x06:
            return f"ja32 {insn.imm:+d}"
        jump = _JMP_NAMES.get(code >> 4)
        if jump is None:
            return None
        width = "32" if cls == "JMP32" else ""
        operand = s if insn.source == "X" else _imm(insn.imm)
        return f"{jump}{width} {d}, {operand}, {insn.offset:+d}"
    size, mode = _SIZE_NAMES[code & 0x18], code & 0xE0
    if insn.wide:
        return f"lddw {d}, {hex(insn.imm64 or 0)}"
    if cls == "LD":
        if mode == 0x20:
            return f"ldabs{size} {_imm(insn.imm)}"
        return f"ldind{size} {s}, {_imm(insn.imm)}" if mode == 0x40 else None
    if cls == "LDX":
        return f"ldx{'s' if mode == 0x80 else ''}{size} {d}, {_mem(insn.src_reg, insn.offset)}"
    if cls == "ST":
        return f"st{size} {_mem(insn.dst_reg, insn.offset)}, {_imm(insn.imm)}"
    if mode != 0xC0:
        return f"stx{size} {_mem(insn.dst_reg, insn.offset)}, {s}"
    width = "32" if size == "w" else ""
    atomic = _ATOMIC_NAMES.get(insn.imm & ~1 if insn.imm not in (0xE1, 0xF1) else insn.imm)
    if atomic is None:
        return None
    fetch = "fetch " if insn.imm & 1 and atomic not in ("xchg", "cmpxchg") else ""
    return f"lock {fetch}{atomic}{width} {_mem(insn.dst_reg, insn.offset)}, {s}"


def _raw(image: bytes) -> list[str]:
    return [f".raw {word:#018x}" for (word,) in struct.iter_unpack("<Q", image)]


def disassemble(program: bytes) -> str:
    """The program as dialect text, one line an instruction, jumps as relative offsets; assembles back to exactly
    `program` (bytes without an exact spelling come out as `.raw` lines). FormatError if not a multiple of 8."""
    out: list[str] = []
    for image in bi.split(program):
        text = None if len(image) == 8 and image[0] == bi.LDDW_OPCODE else _text(bi.decode(image)[0])
        if text is not None:
            try:
                same = bi.encode(_encode(*text.partition(" ")[::2])[0]) == image
            except ValueError:
                same = False
            if same:
                out.append(text)
                continue
        out.extend(_raw(image))
    return "\n".join(out) + ("\n" if out else "")
