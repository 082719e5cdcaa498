"""BPF instructions (RFC 9669): decode bytes to `Insn`, name them, disassemble one line, encode them back.

Encoding (RFC 9669 section 3): 8-byte slots {opcode:8, regs:8, offset:16, imm:32}; the register byte holds
dst in the low nibble and src in the high nibble on little-endian, the other way round on big-endian. The
64-bit immediate load (lddw, opcode 0x18) takes two slots, the second carrying the upper 32 bits.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable
from typing import NamedTuple

from bpfcert.errors import FormatError

# Instruction classes (RFC 9669 section 3.1): the low three bits of the opcode.
CLASSES = ("LD", "LDX", "ST", "STX", "ALU", "JMP", "JMP32", "ALU64")
CLASS_CODES = {name: code for code, name in enumerate(CLASSES)}

# ALU operations: the high four bits of the opcode (RFC 9669 section 4.1).
ALU_OPS = ("add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor", "mov", "arsh", "end")
# Jump operations (RFC 9669 section 4.3); 0xe is the kernel's BPF_JCOND (may_goto, Linux 6.9).
JMP_OPS = (
    "ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge",
    "call", "exit", "jlt", "jle", "jslt", "jsle", "jcond",
)  # fmt: skip
# Load/store size (bits 3-4) and mode (bits 5-7) (RFC 9669 section 5).
SIZES = ("W", "H", "B", "DW")
SIZE_BYTES = {"W": 4, "H": 2, "B": 1, "DW": 8}
MODES = {0: "IMM", 1: "ABS", 2: "IND", 3: "MEM", 4: "MEMSX", 6: "ATOMIC"}
# lddw src_reg values (RFC 9669 section 5.4).
LDDW_PSEUDO = ("imm64", "map_fd", "map_value", "btf_id", "func", "map_idx", "map_idx_value")
# call src_reg values (RFC 9669 section 4.3.1).
CALL_KINDS = ("helper", "local", "kfunc")
# Atomic operations, by imm (RFC 9669 section 5.3); load-acquire/store-release are Linux 6.15 additions.
ATOMIC_FETCH = 0x01
ATOMIC_OPS = {
    0x00: "add", 0x40: "or", 0x50: "and", 0xA0: "xor",
    0x01: "fetch_add", 0x41: "fetch_or", 0x51: "fetch_and", 0xA1: "fetch_xor",
    0xE1: "xchg", 0xF1: "cmpxchg", 0x100: "load_acquire", 0x110: "store_release",
}  # fmt: skip
ATOMIC_CODES = {name: code for code, name in ATOMIC_OPS.items()}

LDDW_OPCODE = 0x18  # BPF_LD | BPF_IMM | BPF_DW
_SLOT = struct.Struct("<BBhi")
_SLOT_BE = struct.Struct(">BBhi")
_ALU_SYMBOLS = {
    "add": "+=", "sub": "-=", "mul": "*=", "div": "/=", "or": "|=", "and": "&=", "lsh": "<<=", "rsh": ">>=",
    "mod": "%=", "xor": "^=", "mov": "=", "arsh": "s>>=", "sdiv": "s/=", "smod": "s%=",
}  # fmt: skip
_JMP_SYMBOLS = {
    "jeq": "==", "jgt": ">", "jge": ">=", "jset": "&", "jne": "!=", "jsgt": "s>", "jsge": "s>=",
    "jlt": "<", "jle": "<=", "jslt": "s<", "jsle": "s<=",
}  # fmt: skip
_ATOMIC_SYMBOLS = {"add": "+=", "or": "|=", "and": "&=", "xor": "^="}
_SIZE_TYPES = {"B": "u8", "H": "u16", "W": "u32", "DW": "u64"}


class Insn(NamedTuple):
    """One instruction. `index` counts 8-byte slots (a lddw occupies two); `imm64` is set only for lddw.

    A NamedTuple, not a dataclass: big objects hold hundreds of thousands, and it builds several times faster.
    """

    index: int  # type: ignore[assignment]  # shadows tuple.index(), which nothing here uses
    opcode: int
    dst_reg: int
    src_reg: int
    offset: int
    imm: int
    imm64: int | None = None

    @property
    def cls(self) -> str:
        return CLASSES[self.opcode & 0x07]

    @property
    def wide(self) -> bool:
        return self.opcode == LDDW_OPCODE

    @property
    def slots(self) -> int:
        return 2 if self.wide else 1

    @property
    def source(self) -> str | None:
        """'K' (immediate) or 'X' (register) for ALU and jump instructions."""
        if self.cls in ("ALU", "ALU64", "JMP", "JMP32"):
            return "X" if self.opcode & 0x08 else "K"
        return None

    @property
    def op(self) -> str | None:
        """The raw ALU or jump operation name ('add', 'end', 'ja', 'call'...), None for loads and stores."""
        code = self.opcode >> 4
        if self.cls in ("ALU", "ALU64"):
            return ALU_OPS[code] if code < len(ALU_OPS) else None
        if self.cls in ("JMP", "JMP32"):
            return JMP_OPS[code] if code < len(JMP_OPS) else None
        return None

    @property
    def size(self) -> str | None:
        if self.cls in ("LD", "LDX", "ST", "STX"):
            return SIZES[(self.opcode >> 3) & 0x03]
        return None

    @property
    def mode(self) -> str | None:
        if self.cls in ("LD", "LDX", "ST", "STX"):
            return MODES.get(self.opcode >> 5)
        return None

    @property
    def pseudo(self) -> str | None:
        """What a lddw's immediate means: 'imm64', 'map_fd', 'map_value', 'btf_id', 'func', 'map_idx'..."""
        if not self.wide:
            return None
        return LDDW_PSEUDO[self.src_reg] if self.src_reg < len(LDDW_PSEUDO) else None

    @property
    def call_kind(self) -> str | None:
        """'helper' (imm = helper id), 'local' (imm = slot offset), 'kfunc' (imm = BTF id) for calls."""
        if self.cls != "JMP" or self.op != "call":
            return None
        return CALL_KINDS[self.src_reg] if self.src_reg < len(CALL_KINDS) else None

    @property
    def atomic_op(self) -> str | None:
        if self.cls == "STX" and self.mode == "ATOMIC":
            return ATOMIC_OPS.get(self.imm)
        return None

    @property
    def mnemonic(self) -> str:
        """The operation, v4 variants told apart: 'sdiv', 'smod', 'movsx', 'bswap', 'gotol', 'ldxsx'..."""
        op = self.op
        if self.cls in ("ALU", "ALU64"):
            if op in ("div", "mod") and self.offset == 1:
                return "s" + op
            if op == "mov" and self.offset:
                return "movsx"
            if op == "end":
                if self.cls == "ALU64":
                    return "bswap"
                return "be" if self.source == "X" else "le"
            return op or "unknown"
        if self.cls in ("JMP", "JMP32"):
            if self.cls == "JMP32" and op == "ja":
                return "gotol"
            return op or "unknown"
        if self.wide:
            return "lddw"
        if self.mode == "ATOMIC":
            return self.atomic_op or "unknown"
        if self.mode == "MEMSX":
            return "ldxsx"
        if self.mode in ("MEM", "IMM"):
            return self.cls.lower()
        return f"ld{(self.mode or 'unknown').lower()}"

    @property
    def known(self) -> bool:
        """Whether the opcode (and its variant fields) is one RFC 9669 or the kernel defines."""
        if self.cls in ("ALU", "ALU64", "JMP", "JMP32"):
            if self.op is None or (self.cls == "JMP32" and self.op in ("call", "exit", "jcond")):
                return False
            if self.op in ("call", "exit"):
                return self.source == "K"  # RFC 9669 has no register-indirect call (bpf_conformance's callx)
            if self.op in ("div", "mod"):
                return self.offset in (0, 1)
            if self.op == "mov":
                return self.offset in ((0, 8, 16, 32) if self.cls == "ALU64" else (0, 8, 16))
            if self.op == "end":
                return self.imm in (16, 32, 64) and not (self.cls == "ALU64" and self.source == "X")
            return True
        mode = self.mode
        if mode is None:
            return False
        if self.cls == "LD":
            return self.wide or mode in ("ABS", "IND")
        if self.cls == "LDX":
            return mode == "MEM" or (mode == "MEMSX" and self.size != "DW")
        if self.cls == "ST":
            return mode == "MEM"
        if mode == "ATOMIC":
            return self.size in ("W", "DW") and self.imm in ATOMIC_OPS
        return mode == "MEM"

    @property
    def isa_version(self) -> int:
        """The minimal BPF CPU version (LLVM -mcpu=v1..v4) that has this instruction (see `_isa_version`)."""
        cls = self.opcode & 0x07
        offset = self.offset if cls in (0x04, 0x07) else 0  # ALU/ALU64: offset selects sdiv/smod/movsx
        imm = self.imm if cls == 0x03 and self.opcode & 0xE0 == 0xC0 else 0  # STX|ATOMIC: imm is the operation
        return _isa_version(self.opcode, offset, imm)

    @property
    def jump_target(self) -> int | None:
        """The slot index a jump or local call goes to (relative offsets resolved), None otherwise."""
        if self.cls not in ("JMP", "JMP32") or self.op in ("exit", None):
            return None
        if self.op == "call":
            return self.index + 1 + self.imm if self.call_kind == "local" else None
        if self.mnemonic == "gotol":
            return self.index + 1 + self.imm
        return self.index + 1 + self.offset


def decode(data: bytes, byteorder: str = "little") -> list[Insn]:
    """Decode an instruction stream; FormatError on a length not a multiple of 8 or a cut/malformed lddw."""
    if byteorder not in ("little", "big"):
        raise FormatError(f"unknown byte order {byteorder!r} (little or big)")
    if len(data) % 8:
        raise FormatError(f"instruction stream of {len(data)} bytes is not a multiple of 8")
    slots = list((_SLOT if byteorder == "little" else _SLOT_BE).iter_unpack(data))
    little = byteorder == "little"
    count = len(slots)
    out: list[Insn] = []
    i = 0
    while i < count:
        opcode, regs, offset, imm = slots[i]
        dst, src = (regs & 0x0F, regs >> 4) if little else (regs >> 4, regs & 0x0F)
        if opcode != LDDW_OPCODE:
            out.append(Insn(i, opcode, dst, src, offset, imm))
            i += 1
            continue
        if i + 1 >= count:
            raise FormatError(f"lddw at instruction {i} is truncated: its second half is missing")
        opcode2, regs2, offset2, imm2 = slots[i + 1]
        if opcode2 or regs2 or offset2:
            raise FormatError(f"lddw at instruction {i} is malformed: its second half must be 0 except imm")
        imm64 = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
        out.append(Insn(i, opcode, dst, src, offset, imm, imm64))
        i += 2
    return out


def split(data: bytes) -> list[bytes]:
    """Cut a stream into instruction images without judging them: 16 bytes for a lddw whose second half is
    well-formed, else 8 (a cut or malformed lddw comes out as its lone first slot, which decode() refuses).
    FormatError on a length not a multiple of 8."""
    if len(data) % 8:
        raise FormatError(f"instruction stream of {len(data)} bytes is not a multiple of 8")
    out: list[bytes] = []
    i, end = 0, len(data)
    while i < end:
        wide = data[i] == LDDW_OPCODE and i + 16 <= end and not any(data[i + 8 : i + 12])
        out.append(data[i : i + (16 if wide else 8)])
        i += len(out[-1])
    return out


def encode(insn: Insn, byteorder: str = "little") -> bytes:
    """The bytes of one instruction (16 for a lddw)."""
    slot = _SLOT if byteorder == "little" else _SLOT_BE
    regs = (insn.src_reg << 4 | insn.dst_reg) if byteorder == "little" else (insn.dst_reg << 4 | insn.src_reg)
    try:
        first = slot.pack(insn.opcode, regs, insn.offset, insn.imm)
        if not insn.wide:
            return first
        upper = ((insn.imm64 or 0) >> 32) & 0xFFFFFFFF
        return first + slot.pack(0, 0, 0, upper - (1 << 32) if upper & 0x80000000 else upper)
    except struct.error as exc:
        raise FormatError(f"instruction {insn} does not encode: {exc}") from None


def assemble(insns: Iterable[Insn], byteorder: str = "little") -> bytes:
    """Concatenate encoded instructions into a program image."""
    return b"".join(encode(i, byteorder) for i in insns)


def reorder(data: bytes, source: str, target: str) -> bytes:
    """An instruction stream encoded in byte order `source` re-encoded slot by slot in `target` (offset and imm
    change byte order, the register nibbles swap places); what is not a valid program stays as invalid, for the
    verifier to judge. FormatError on an unknown byte order or a length not a multiple of 8."""
    for order in (source, target):
        if order not in ("little", "big"):
            raise FormatError(f"unknown byte order {order!r} (little or big)")
    if source == target:
        return data
    if len(data) % 8:
        raise FormatError(f"instruction stream of {len(data)} bytes is not a multiple of 8")
    read, write = (_SLOT, _SLOT_BE) if source == "little" else (_SLOT_BE, _SLOT)
    return b"".join(
        write.pack(op, (regs << 4 | regs >> 4) & 0xFF, off, imm) for op, regs, off, imm in read.iter_unpack(data)
    )


def _s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


# Construction helpers (for probes and tests); `index` is 0 because assemble() does not use it.
def alu64_imm(op: str, dst: int, imm: int) -> Insn:
    return Insn(0, ALU_OPS.index(op) << 4 | CLASS_CODES["ALU64"], dst, 0, 0, _s32(imm))


def alu64_reg(op: str, dst: int, src: int) -> Insn:
    return Insn(0, ALU_OPS.index(op) << 4 | 0x08 | CLASS_CODES["ALU64"], dst, src, 0, 0)


def alu32_imm(op: str, dst: int, imm: int) -> Insn:
    return Insn(0, ALU_OPS.index(op) << 4 | CLASS_CODES["ALU"], dst, 0, 0, _s32(imm))


def alu32_reg(op: str, dst: int, src: int) -> Insn:
    return Insn(0, ALU_OPS.index(op) << 4 | 0x08 | CLASS_CODES["ALU"], dst, src, 0, 0)


def mov64_imm(dst: int, imm: int) -> Insn:
    return alu64_imm("mov", dst, imm)


def mov64_reg(dst: int, src: int) -> Insn:
    return alu64_reg("mov", dst, src)


def ld_imm64(dst: int, imm64: int, pseudo: int = 0) -> Insn:
    """lddw dst, imm64; `pseudo` is the src_reg meaning (1 = map fd, 2 = map value, ...)."""
    imm64 &= 0xFFFFFFFFFFFFFFFF
    return Insn(0, LDDW_OPCODE, dst, pseudo, 0, _s32(imm64), imm64)


def ld_map_fd(dst: int, fd: int) -> Insn:
    return ld_imm64(dst, fd, pseudo=1)


def ldx_mem(size: str, dst: int, src: int, offset: int) -> Insn:
    return Insn(0, 0x60 | SIZES.index(size) << 3 | CLASS_CODES["LDX"], dst, src, offset, 0)


def stx_mem(size: str, dst: int, src: int, offset: int) -> Insn:
    return Insn(0, 0x60 | SIZES.index(size) << 3 | CLASS_CODES["STX"], dst, src, offset, 0)


def st_mem(size: str, dst: int, offset: int, imm: int) -> Insn:
    return Insn(0, 0x60 | SIZES.index(size) << 3 | CLASS_CODES["ST"], dst, 0, offset, _s32(imm))


def atomic(size: str, op: str, dst: int, src: int, offset: int) -> Insn:
    """An atomic read-modify-write on *(size *)(dst + offset) with src ('add', 'fetch_or', 'cmpxchg'...)."""
    return Insn(0, 0xC0 | SIZES.index(size) << 3 | CLASS_CODES["STX"], dst, src, offset, ATOMIC_CODES[op])


def jmp_imm(op: str, dst: int, imm: int, offset: int) -> Insn:
    return Insn(0, JMP_OPS.index(op) << 4 | CLASS_CODES["JMP"], dst, 0, offset, _s32(imm))


def jmp_reg(op: str, dst: int, src: int, offset: int) -> Insn:
    return Insn(0, JMP_OPS.index(op) << 4 | 0x08 | CLASS_CODES["JMP"], dst, src, offset, 0)


def jmp32_imm(op: str, dst: int, imm: int, offset: int) -> Insn:
    return Insn(0, JMP_OPS.index(op) << 4 | CLASS_CODES["JMP32"], dst, 0, offset, _s32(imm))


def ja(offset: int) -> Insn:
    return Insn(0, CLASS_CODES["JMP"], 0, 0, offset, 0)


def call(helper_id: int) -> Insn:
    return Insn(0, 0x85, 0, 0, 0, helper_id)


def call_local(offset: int) -> Insn:
    """A bpf-to-bpf call to the slot `offset` + 1 after this one."""
    return Insn(0, 0x85, 0, 1, 0, offset)


def call_kfunc(btf_id: int) -> Insn:
    return Insn(0, 0x85, 0, 2, 0, btf_id)


def exit_() -> Insn:
    return Insn(0, 0x95, 0, 0, 0, 0)


def _mem(size: str | None, reg: int, offset: int) -> str:
    sign = "-" if offset < 0 else "+"
    return f"*({_SIZE_TYPES.get(size or '', '?')} *)(r{reg} {sign} {abs(offset)})"


def _addr(reg: int, offset: int) -> str:
    return f"r{reg} {'-' if offset < 0 else '+'} {abs(offset)}"


def disasm(insn: Insn) -> str:
    """A readable one-liner in llvm-objdump's syntax, e.g. 'r1 = *(u32 *)(r2 + 4)', 'if r0 == 0 goto +4'."""
    cls, mnem = insn.cls, insn.mnemonic
    if not insn.known:
        regs = f"dst=r{insn.dst_reg} src=r{insn.src_reg}"
        return f".insn {insn.opcode:#04x} {regs} off={insn.offset} imm={insn.imm}"
    if cls in ("ALU", "ALU64"):
        r = "w" if cls == "ALU" else "r"
        dst = f"{r}{insn.dst_reg}"
        if mnem in ("le", "be", "bswap"):
            return f"r{insn.dst_reg} = {mnem}{insn.imm} r{insn.dst_reg}"
        if mnem == "neg":
            return f"{dst} = -{dst}"
        operand = f"{r}{insn.src_reg}" if insn.source == "X" else str(insn.imm)
        if mnem == "movsx":
            return f"{dst} = (s{insn.offset}){operand}"
        return f"{dst} {_ALU_SYMBOLS[mnem]} {operand}"
    if cls in ("JMP", "JMP32"):
        if mnem in ("exit", "call"):
            return "exit" if mnem == "exit" else f"call {insn.imm}"
        if mnem in ("ja", "gotol"):
            return f"goto {insn.offset:+d}" if mnem == "ja" else f"gotol {insn.imm:+d}"
        if mnem == "jcond":
            return f"may_goto {insn.offset:+d}"
        r = "w" if cls == "JMP32" else "r"
        operand = f"{r}{insn.src_reg}" if insn.source == "X" else str(insn.imm)
        return f"if {r}{insn.dst_reg} {_JMP_SYMBOLS[mnem]} {operand} goto {insn.offset:+d}"
    if insn.wide:
        suffix = "" if insn.pseudo == "imm64" else f" ({insn.pseudo})"
        return f"r{insn.dst_reg} = {insn.imm64} ll{suffix}"
    if insn.mode in ("ABS", "IND"):
        where = str(insn.imm) if insn.mode == "ABS" else f"r{insn.src_reg} + {insn.imm}"
        return f"r0 = *({_SIZE_TYPES[insn.size or 'W']} *)skb[{where}]"
    if cls == "LDX":
        cast = f"(s{SIZE_BYTES[insn.size or 'W'] * 8})" if insn.mode == "MEMSX" else ""
        return f"r{insn.dst_reg} = {cast}{_mem(insn.size, insn.src_reg, insn.offset)}"
    mem = _mem(insn.size, insn.dst_reg, insn.offset)
    if cls == "ST":
        return f"{mem} = {insn.imm}"
    if insn.mode != "ATOMIC":
        return f"{mem} = r{insn.src_reg}"
    r, bits = ("w", "32") if insn.size == "W" else ("r", "64")
    op, src = insn.atomic_op or "", f"{r}{insn.src_reg}"
    if op in _ATOMIC_SYMBOLS:  # llvm-objdump writes the source of a plain lock op as rN at both sizes
        return f"lock {mem} {_ATOMIC_SYMBOLS[op]} r{insn.src_reg}"
    if op.startswith("fetch_"):
        return f"{src} = atomic_{op}(({mem[2:-1]}), {src})"
    if op == "xchg":
        return f"{src} = xchg{'32' if r == 'w' else ''}_{bits}({_addr(insn.dst_reg, insn.offset)}, {src})"
    if op == "cmpxchg":
        name = f"cmpxchg{'32' if r == 'w' else ''}_{bits}"
        return f"{r}0 = {name}({_addr(insn.dst_reg, insn.offset)}, {r}0, {src})"
    if op == "load_acquire":
        return f"{r}{insn.dst_reg} = load_acquire({_mem(insn.size, insn.src_reg, insn.offset)})"
    return f"store_release({mem}, {src})"


@functools.lru_cache(maxsize=4096)
def _isa_version(opcode: int, offset: int, imm: int) -> int:
    """The minimal BPF CPU version (LLVM -mcpu=v1..v4) that has this instruction.

    Per RFC 9669 and the kernel's Documentation/bpf/standardization/instruction-set.rst: v2 added
    jlt/jle/jslt/jsle (JMP class); v3 added the JMP32 class and, in the atomic32/atomic64 groups,
    every atomic beyond the plain 32/64-bit add (BPF_XADD, the only atomic of v1); v4 added
    sign-extending loads (MEMSX) and moves (movsx), sdiv/smod (offset 1), bswap (ALU64 | END) and
    gotol (JMP32 | JA). Load-acquire/store-release (Linux 6.15) count as v4, as LLVM emits them.
    """
    insn = Insn(0, opcode, 0, 0, offset, imm)  # registers never change the version
    cls, mnem = insn.cls, insn.mnemonic
    if mnem in ("sdiv", "smod", "movsx", "bswap", "gotol", "ldxsx", "load_acquire", "store_release"):
        return 4
    if cls == "JMP32":
        return 3
    if insn.mode == "ATOMIC" and insn.imm != 0x00:
        return 3
    if cls == "JMP" and mnem in ("jlt", "jle", "jslt", "jsle"):
        return 2
    return 1
