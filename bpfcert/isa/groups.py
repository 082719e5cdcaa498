"""RFC 9669 conformance groups (section 2.4) and the minimum CPU version a program's opcodes need.

Membership, per the RFC: every instruction is base32 unless noted; ALU64 and JMP-class instructions and every
instruction of size DW (lddw included) are base64, except CALL, JA (and EXIT, which every program needs) that stay
base32; byte swaps are base32 but width 64 is base64; MUL/DIV/SDIV/MOD/SMOD are divmul32 (ALU) or divmul64 (ALU64);
atomics of size W are atomic32 and of size DW atomic64; the legacy ABS/IND loads are packet. bpf_conformance adds
`callx` (CALL with a register operand). CPU versions (v1..v4) come from `bpfcert.insn.Insn.isa_version`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from bpfcert import insn as bi

GROUPS = ("base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet", "callx")
# Each group with the groups it includes (RFC 9669 section 2.4).
INCLUDES = {"base64": ("base32",), "atomic64": ("atomic32",), "divmul64": ("divmul32",)}
_DIVMUL = ("mul", "div", "mod")


def implied(groups: Iterable[str]) -> frozenset[str]:
    """`groups` with the groups they include: base64 gives base32, atomic64 atomic32, divmul64 divmul32."""
    out = set(groups)
    for group in list(out):
        out.update(INCLUDES.get(group, ()))
    return frozenset(out)


def group_of(insn: bi.Insn) -> str:
    """The conformance group of one instruction (an unknown opcode counts as base32: every engine must refuse it)."""
    cls, op = insn.cls, insn.op
    if insn.opcode == 0x8D:  # JMP | CALL | X
        return "callx"
    if not insn.known:
        return "base32"
    if cls in ("ALU", "ALU64"):
        wide = cls == "ALU64"
        if op in _DIVMUL:
            return "divmul64" if wide else "divmul32"
        if op == "end":
            return "base64" if insn.imm == 64 else "base32"
        return "base64" if wide else "base32"
    if cls == "JMP32":
        return "base32"
    if cls == "JMP":
        return "base32" if op in ("ja", "call", "exit") else "base64"
    if insn.mode in ("ABS", "IND"):
        return "packet"
    if insn.mode == "ATOMIC":
        return "atomic64" if insn.size == "DW" else "atomic32"
    return "base64" if insn.size == "DW" else "base32"


def infer(program: bytes) -> tuple[frozenset[str], int]:
    """The groups a program's instructions belong to (base32 always: every program ends in exit) and the minimum
    CPU version they need. Any multiple of 8 bytes is accepted, broken instructions included (negative cases)."""
    groups, version = {"base32"}, 1
    for image in bi.split(program):
        group, needs = _classify(image)
        groups.add(group)
        version = max(version, needs)
    return frozenset(groups), version


@functools.lru_cache(maxsize=8192)  # suites repeat the same instructions
def _classify(image: bytes) -> tuple[str, int]:
    if len(image) == 8 and image[0] == bi.LDDW_OPCODE:  # a cut or malformed lddw: still a DW load
        return "base64", 1
    insn = bi.decode(image)[0]
    return group_of(insn), insn.isa_version
