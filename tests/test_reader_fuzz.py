"""Property tests for the readers: mutated and truncated objects, `.BTF` and `.BTF.ext` bytes either decode
or raise FormatError, never anything else. Mutations aim deep: ELF and section header fields, symbol and
relocation records, BTF header fields, type records and string offsets.

Example counts scale with the Hypothesis profile: under `ci` (300) the tests here run 300 x 35 = 10,500."""

from __future__ import annotations

import struct
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfcert.btf import Btf, BtfExt
from bpfcert.elf import BpfObject, extract_embedded
from bpfcert.errors import FormatError
from bpfcert.usage import analyze
from tests import elf_build

OBJECTS = Path(__file__).parent / "data" / "objects"
CORPUS = {p.name: p.read_bytes() for p in sorted(OBJECTS.glob("*.o"))}
PARSED = {name: BpfObject.from_bytes(data, name) for name, data in CORPUS.items()}
WITH_BTF = sorted(name for name, obj in PARSED.items() if obj.btf is not None)
REFERENCES = {  # offsets of the type-id fields in each object's .BTF
    name: [o for o, _ in elf_build.btf_type_references(
        PARSED[name].section(".BTF").data,  # type: ignore[union-attr]
        "<" if PARSED[name].endianness == "little" else ">",
    )]
    for name in WITH_BTF
}
BASE = settings.default.max_examples
T = TypeVar("T")

# (offset, width) of ELF64 header fields and section header fields worth corrupting.
ELF_HEADER_FIELDS = [(4, 1), (5, 1), (16, 2), (18, 2), (40, 8), (58, 2), (60, 2), (62, 2)]
BTF_HEADER_FIELDS = [(2, 1), (3, 1), (4, 4), (8, 4), (12, 4), (16, 4), (20, 4)]
SECTION_HEADER_FIELDS = [(0, 4), (4, 4), (8, 8), (24, 8), (32, 8), (40, 4), (44, 4)]
INTERESTING = [
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    12,
    16,
    24,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    1 << 32,
    1 << 63,
    (1 << 64) - 1,
]
values = st.one_of(st.sampled_from(INTERESTING), st.integers(0, (1 << 64) - 1))


def outcome(parse: Callable[[], T]) -> T | None:
    """The parse result, or None when it raised FormatError; any other exception fails the test."""
    try:
        return parse()
    except FormatError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return None


def overwrite(data: bytes, offset: int, width: int, value: int, order: str = "<") -> bytes:
    """`data` with the `width`-byte field at `offset` set to `value` (cut to the field's width); `data` itself
    when the field lies past its end (after an earlier truncation)."""
    if offset + width > len(data):
        return data
    fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[width]
    out = bytearray(data)
    struct.pack_into(order + fmt, out, offset, value & ((1 << (8 * width)) - 1))
    return bytes(out)


class Mutant:
    """Damaged bytes, shown in Hypothesis reports by what was done to which object rather than as 20 KB."""

    def __init__(self, origin: str, change: str, data: bytes) -> None:
        self.origin, self.change, self.data = origin, change, data

    def __repr__(self) -> str:
        return f"Mutant({self.origin}: {self.change})"


@st.composite
def mutated_objects(draw: st.DrawFn) -> Mutant:
    """A corpus object with one kind of damage: byte flips, truncation, an ELF header field, a section header
    field, or a word inside a section (symbols, relocations, BTF, maps...)."""
    name = draw(st.sampled_from(sorted(CORPUS)))
    data, obj = CORPUS[name], PARSED[name]
    order = "<" if obj.endianness == "little" else ">"
    how = draw(st.sampled_from(["flip", "truncate", "elf_header", "section_header", "section_word"]))
    if how == "flip":
        out = bytearray(data)
        flips = [
            (draw(st.integers(0, len(out) - 1)), draw(st.integers(1, 255)))
            for _ in range(draw(st.integers(1, 8)))
        ]
        for position, mask in flips:
            out[position] ^= mask
        return Mutant(name, f"xor {flips}", bytes(out))
    if how == "truncate":
        length = draw(st.integers(0, len(data) - 1))
        return Mutant(name, f"truncated to {length} bytes", data[:length])
    value = draw(values)
    if how == "elf_header":
        offset, width = draw(st.sampled_from(ELF_HEADER_FIELDS))
        return Mutant(
            name,
            f"ELF header u{8 * width} at {offset} = {value:#x}",
            overwrite(data, offset, width, value, order),
        )
    if how == "section_header":
        shoff = struct.unpack_from(order + "Q", data, 40)[0]
        index = draw(st.integers(0, len(obj.sections) - 1))
        offset, width = draw(st.sampled_from(SECTION_HEADER_FIELDS))
        change = f"section header {index} ({obj.sections[index].name}) u{8 * width} at +{offset} = {value:#x}"
        return Mutant(name, change, overwrite(data, shoff + index * 64 + offset, width, value, order))
    section = draw(st.sampled_from([s for s in obj.sections if s.data and not s.name.startswith(".debug")]))
    width = draw(st.sampled_from([w for w in (1, 2, 4, 8) if w <= section.size]))
    offset = draw(st.integers(0, (section.size - width) // width)) * width
    change = f"{section.name} u{8 * width} at +{offset} = {value:#x}"
    return Mutant(name, change, overwrite(data, section.offset + offset, width, value, order))


def exercise(obj: BpfObject) -> None:
    """Touch every derived part of a parsed object, as a consumer would."""
    names = {s.name for s in obj.sections}
    for fn in obj.programs + obj.subprograms:
        assert len(fn.insns) == fn.size and fn.section in names
    assert {r.section for r in obj.relocations} <= names
    assert all(m.name for m in obj.maps)
    outcome(partial(analyze, obj))
    if obj.btf is not None:
        exercise_btf(obj.btf)


def exercise_btf(btf: Btf) -> None:
    doc = btf.to_bpftool_json()
    assert len(doc["types"]) == len(btf.types) - 1
    for t in btf.types:  # every type id a type names leads to a type: consumers index without checking
        ids = [t.type or 0, *(m.type for m in t.members), *(v for v, _, _ in t.extra.get("vars", ()))]
        ids += [p for _, p in t.extra.get("params", ())] + [t.extra.get("elem_type", 0), t.extra.get("index_type", 0)]
        assert all(btf.types[i].id == i for i in ids)
    for t in btf.types[:100]:
        outcome(partial(btf.size_of, t.id))
        outcome(partial(btf.resolve, t.id))


@pytest.mark.slow
@settings(max_examples=BASE * 20)
@given(mutant=mutated_objects())
def test_mutated_objects_raise_only_format_error(mutant: Mutant) -> None:
    obj = outcome(lambda: BpfObject.from_bytes(mutant.data))
    if obj is not None:
        exercise(obj)


@st.composite
def mutated_btf(draw: st.DrawFn) -> tuple[Mutant, str]:
    """`.BTF` bytes of a corpus object with header fields, type-record words, type ids (often dangling: one
    past the last type or beyond) or string bytes changed."""
    name = draw(st.sampled_from(WITH_BTF))
    obj = PARSED[name]
    section = obj.section(".BTF")
    assert section is not None
    data, order = section.data, "<" if obj.endianness == "little" else ">"
    hdr_len, type_off, type_len, str_off = struct.unpack_from(order + "IIII", data, 4)
    out = data
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["header", "types", "reference", "strings", "truncate"]))
        if where == "reference":
            offset, width = draw(st.sampled_from(REFERENCES[name])), 4
            count = len(PARSED[name].btf.types)  # type: ignore[union-attr]
            value = draw(st.one_of(st.sampled_from([count, count + 1, 0xFFFFFFFF]), st.integers(0, 2 * count)))
            out = overwrite(out, offset, width, value, order)
            changes.append(f"type id at {offset} = {value}")
            continue
        if where == "header":
            offset, width = draw(st.sampled_from(BTF_HEADER_FIELDS))
        elif where == "types":
            offset, width = hdr_len + type_off + 4 * draw(st.integers(0, type_len // 4 - 1)), 4
        elif where == "strings":
            offset, width = hdr_len + str_off + draw(st.integers(0, len(data) - hdr_len - str_off - 1)), 1
        else:
            length = draw(st.integers(0, len(out)))
            out = out[:length]
            changes.append(f"truncated to {length}")
            continue
        value = draw(values if width == 4 else st.sampled_from([0, 1, 2, 0x80, 0xFF, ord("a")]))
        out = overwrite(out, offset, width, value, order)
        changes.append(f"u{8 * width} at {offset} = {value:#x}")
    return Mutant(f"{name} .BTF", ", ".join(changes), out), obj.endianness


@settings(max_examples=BASE * 9)
@given(case=mutated_btf())
def test_mutated_btf_raises_only_format_error(case: tuple[Mutant, str]) -> None:
    mutant, byteorder = case
    btf = outcome(lambda: Btf.parse(mutant.data, byteorder))
    if btf is not None:
        exercise_btf(btf)


@st.composite
def mutated_btf_ext(draw: st.DrawFn) -> tuple[Mutant, str]:
    """`.BTF.ext` bytes of a corpus object with words changed (header, record sizes, counts, offsets)."""
    name = draw(st.sampled_from(WITH_BTF))
    obj = PARSED[name]
    section = obj.section(".BTF.ext")
    assert section is not None
    order = "<" if obj.endianness == "little" else ">"
    out = section.data
    changes = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            offset, value = 4 * draw(st.integers(0, len(section.data) // 4 - 1)), draw(values)
            out = overwrite(out, offset, 4, value, order)
            changes.append(f"u32 at {offset} = {value:#x}")
        else:
            length = draw(st.integers(0, len(out)))
            out = out[:length]
            changes.append(f"truncated to {length}")
    return Mutant(name, ", ".join(changes), out), obj.endianness


@settings(max_examples=BASE * 5)
@given(case=mutated_btf_ext())
def test_mutated_btf_ext_raises_only_format_error(case: tuple[Mutant, str]) -> None:
    mutant, byteorder = case
    btf = PARSED[mutant.origin].btf
    assert btf is not None
    ext = outcome(lambda: BtfExt.parse(mutant.data, btf, byteorder))
    if ext is not None:
        records = [*ext.func_info.values(), *ext.line_info.values(), *ext.core_relos.values()]
        assert all(len(r) > 0 for r in records)


HOST = (OBJECTS / "embed_host").read_bytes()


@settings(max_examples=BASE)
@given(position=st.integers(0, len(HOST) - 1), value=st.integers(0, 255), cut=st.integers(0, len(HOST)))
def test_extract_embedded_on_damaged_hosts(position: int, value: int, cut: int) -> None:
    damaged = bytearray(HOST)
    damaged[position] = value
    found = extract_embedded(bytes(damaged[:cut]))
    assert len(found) <= 2
    for blob in found:
        parsed: Any = BpfObject.from_bytes(blob)
        assert parsed.machine == 247
