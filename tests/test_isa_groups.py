"""RFC 9669 conformance groups and minimum CPU versions, one row per opcode family."""

from __future__ import annotations

import struct

import pytest

from bpfcert.isa.asm import assemble
from bpfcert.isa.groups import GROUPS, implied, infer

# (instruction, the group it adds besides base32, minimum cpu version)
FAMILIES = [
    ("add32 %r0, 1", "base32", 1),
    ("mov32 %r0, %r1", "base32", 1),
    ("neg32 %r0", "base32", 1),
    ("add %r0, 1", "base64", 1),
    ("neg %r0", "base64", 1),
    ("arsh %r0, %r1", "base64", 1),
    ("mul32 %r0, 3", "divmul32", 1),
    ("div32 %r0, %r1", "divmul32", 1),
    ("mod32 %r0, 3", "divmul32", 1),
    ("mul %r0, 3", "divmul64", 1),
    ("div %r0, %r1", "divmul64", 1),
    ("mod %r0, 3", "divmul64", 1),
    ("sdiv32 %r0, 3", "divmul32", 4),
    ("smod %r0, %r1", "divmul64", 4),
    ("le16 %r0", "base32", 1),
    ("be32 %r0", "base32", 1),
    ("be64 %r0", "base64", 1),  # width 64 swaps are base64 (RFC 9669 section 4.2)
    ("bswap16 %r0", "base32", 4),
    ("bswap64 %r0", "base64", 4),
    ("movsx832 %r0, %r1", "base32", 4),
    ("movsx3264 %r0, %r1", "base64", 4),
    ("ldxw %r0, [%r1]", "base32", 1),
    ("ldxdw %r0, [%r1]", "base64", 1),
    ("ldxsb %r0, [%r1]", "base32", 4),
    ("stb [%r1], 1", "base32", 1),
    ("stdw [%r1], 1", "base64", 1),
    ("stxh [%r1], %r2", "base32", 1),
    ("stxdw [%r1], %r2", "base64", 1),
    ("lddw %r0, 1", "base64", 1),
    ("lock add32 [%r1], %r2", "atomic32", 1),
    ("lock add [%r1], %r2", "atomic64", 1),
    ("lock fetch add32 [%r1], %r2", "atomic32", 3),
    ("lock or [%r1], %r2", "atomic64", 3),
    ("lock xchg32 [%r1], %r2", "atomic32", 3),
    ("lock cmpxchg [%r1], %r2", "atomic64", 3),
    ("ldabsb 1", "packet", 1),
    ("ldindw %r1, 1", "packet", 1),
    ("ja +0", "base32", 1),
    ("ja32 +0", "base32", 4),
    ("call 1", "base32", 1),
    ("call local +0", "base32", 1),
    ("call %r1", "callx", 1),
    ("exit", "base32", 1),
    ("jeq %r0, 0, +0", "base64", 1),
    ("jset %r0, %r1, +0", "base64", 1),
    ("jlt %r0, 0, +0", "base64", 2),
    ("jsle %r0, %r1, +0", "base64", 2),
    ("jeq32 %r0, 0, +0", "base32", 3),
    ("jslt32 %r0, %r1, +0", "base32", 3),
]


@pytest.mark.parametrize(("text", "group", "cpu"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_each_opcode_family(text: str, group: str, cpu: int) -> None:
    assert infer(assemble(text)) == (frozenset({"base32", group}), cpu)


def test_a_program_takes_the_union_and_the_highest_version() -> None:
    program = assemble("lock fetch add [%r1], %r2\nmul32 %r0, 3\njlt %r0, 1, +0\nldxsh %r0, [%r1]\nexit")
    assert infer(program) == (frozenset({"base32", "atomic64", "divmul32", "base64"}), 4)


def test_broken_programs_are_classified_not_refused() -> None:
    cut_lddw = struct.pack("<BBhi", 0x18, 0, 0, 1)
    assert infer(cut_lddw) == (frozenset({"base32", "base64"}), 1)
    assert infer(struct.pack("<BBhi", 0xFF, 0, 0, 0)) == (frozenset({"base32"}), 1)
    assert infer(b"") == (frozenset({"base32"}), 1)


def test_implied_expands_the_rfc_inclusions_only() -> None:
    assert implied({"base64", "atomic64", "divmul64"}) == {
        "base64", "base32", "atomic64", "atomic32", "divmul64", "divmul32",
    }  # fmt: skip
    assert implied({"base32", "atomic32", "packet", "callx"}) == {"base32", "atomic32", "packet", "callx"}
    assert GROUPS[:7] == ("base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet")
