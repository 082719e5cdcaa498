"""Decoders for the `.BTF` and `.BTF.ext` sections of BPF objects (format: kernel Documentation/bpf/btf.rst,
include/uapi/linux/btf.h). Both byte orders; every malformed input raises FormatError."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bpfcert.errors import FormatError

BTF_MAGIC = 0xEB9F
_BTF_HEADER_LEN = 24  # magic, version, flags, hdr_len, type_off, type_len, str_off, str_len
_BTF_EXT_MIN_HEADER_LEN = 24  # up to line_info_len; core_relo_off/len follow when hdr_len >= 32
_MAX_TYPE_CHAIN = 64  # qualifier/typedef/array chains longer than this are treated as cycles

KIND_NAMES = (  # index == BTF_KIND_* value
    "UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "VOLATILE", "CONST", "RESTRICT",
    "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64",
)
MODIFIER_KINDS = frozenset({"TYPEDEF", "CONST", "VOLATILE", "RESTRICT", "TYPE_TAG"})
_SIZED_KINDS = frozenset({"INT", "STRUCT", "UNION", "ENUM", "DATASEC", "FLOAT", "ENUM64"})
_REFERENCING_KINDS = MODIFIER_KINDS | {"PTR", "FUNC", "FUNC_PROTO", "VAR", "DECL_TAG"}
_INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_FUNC_LINKAGES = ("static", "global", "extern")
_VAR_LINKAGES = ("static", "global", "extern")
CORE_RELO_KINDS = (  # index == enum bpf_core_relo_kind value
    "field_byte_offset", "field_byte_size", "field_exists", "field_signed", "field_lshift_u64",
    "field_rshift_u64", "type_id_local", "type_id_target", "type_exists", "type_size", "enumval_exists",
    "enumval_value", "type_matches",
)


def _order_prefix(data: bytes, byteorder: str, what: str) -> str:
    """struct prefix for `byteorder`, checked against the 0xeB9F magic at the start of `data`."""
    if byteorder not in ("little", "big"):
        raise FormatError(f"{what}: unknown byte order {byteorder!r}")
    if len(data) < 2:
        raise FormatError(f"{what}: {len(data)} bytes, too short for a header")
    magic = struct.unpack_from("<H" if byteorder == "little" else ">H", data)[0]
    if magic != BTF_MAGIC:
        if magic == 0x9FEB:
            raise FormatError(f"{what}: byte order is not {byteorder}-endian as expected")
        raise FormatError(f"{what}: bad magic 0x{data[:2].hex()}")
    return "<" if byteorder == "little" else ">"


def _slice(data: bytes, start: int, length: int, what: str) -> bytes:
    if start < 0 or length < 0 or start + length > len(data):
        raise FormatError(f"{what} [{start}, {start + length}) lies outside the {len(data)} available bytes")
    return data[start : start + length]


@dataclass(frozen=True)
class Member:
    """A STRUCT/UNION member; `bitfield_size` is 0 unless the type's kind_flag marks bitfields."""

    name: str
    type: int
    bits_offset: int
    bitfield_size: int


@dataclass(frozen=True)
class BtfType:
    """One BTF type. `size` is set for sized kinds, `type` for kinds that reference one type (FUNC_PROTO:
    return type); kind-specific details are in `extra` (INT: encoding/bits/offset; ARRAY: elem_type/
    index_type/nelems; ENUM/ENUM64: signed, values [(name, value)]; FWD: fwd_kind; FUNC/VAR: linkage;
    FUNC_PROTO: params [(name, type)]; DATASEC: vars [(type, offset, size)]; DECL_TAG: component_idx;
    all: kind_flag)."""

    id: int
    kind: str
    name: str
    size: int | None
    type: int | None
    members: tuple[Member, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


class _Strings:
    """The NUL-terminated string section, decoded on demand."""

    def __init__(self, data: bytes, what: str) -> None:
        if data and data[0] != 0:
            raise FormatError(f"{what}: string section does not start with an empty string")
        self.data = data
        self.what = what
        self.cache: dict[int, str] = {}

    def at(self, offset: int) -> str:
        found = self.cache.get(offset)
        if found is not None:
            return found
        end = self.data.find(b"\0", offset)
        if offset >= len(self.data) or end < 0:
            raise FormatError(
                f"{self.what}: string offset {offset} outside the {len(self.data)}-byte string section"
            )
        try:
            text = self.data[offset:end].decode()
        except UnicodeDecodeError:
            raise FormatError(f"{self.what}: string at offset {offset} is not valid UTF-8") from None
        self.cache[offset] = text
        return text


class Btf:
    """Decoded `.BTF`: `types[id]` is the type with that id; `types[0]` is void."""

    def __init__(self, types: list[BtfType], strings: _Strings) -> None:
        self.types = types
        self._strings = strings
        self._by_name: dict[str, list[BtfType]] | None = None  # built on the first find()

    @classmethod
    def parse(cls, data: bytes, byteorder: str = "little") -> Btf:
        """Decode raw `.BTF` bytes (or a raw BTF file such as /sys/kernel/btf/vmlinux)."""
        o = _order_prefix(data, byteorder, ".BTF")
        if len(data) < _BTF_HEADER_LEN:
            raise FormatError(f".BTF: {len(data)} bytes, too short for the {_BTF_HEADER_LEN}-byte header")
        _, version, _, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
            o + "HBBIIIII", data
        )
        if version != 1:
            raise FormatError(f".BTF: unsupported version {version}")
        if hdr_len < _BTF_HEADER_LEN or hdr_len > len(data):
            raise FormatError(f".BTF: header length {hdr_len} is invalid")
        body = data[hdr_len:]
        strings = _Strings(_slice(body, str_off, str_len, ".BTF string section"), ".BTF")
        type_data = _slice(body, type_off, type_len, ".BTF type section")
        types = _decode_types(type_data, strings, o)
        _check_references(types)
        return cls(types, strings)

    def string(self, offset: int) -> str:
        """The string at `offset` in the string section (used by `.BTF.ext`)."""
        return self._strings.at(offset)

    def type(self, type_id: int) -> BtfType:
        """The type with id `type_id`; FormatError when there is none."""
        if not 0 <= type_id < len(self.types):
            raise FormatError(f"BTF type id {type_id} out of range (have {len(self.types)} types)")
        return self.types[type_id]

    def find(self, name: str, kind: str | None = None) -> BtfType | None:
        """The first type named `name` (of `kind`, if given)."""
        if self._by_name is None:
            self._by_name = {}
            for t in self.types:
                self._by_name.setdefault(t.name, []).append(t)
        return next((t for t in self._by_name.get(name, ()) if kind is None or t.kind == kind), None)

    def resolve(self, type_id: int) -> BtfType:
        """The type behind `type_id` with TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG skipped."""
        t = self.type(type_id)
        for _ in range(_MAX_TYPE_CHAIN):
            if t.kind not in MODIFIER_KINDS:
                return t
            t = self.type(t.type or 0)
        raise FormatError(f"BTF type {type_id}: modifier chain too long (cycle?)")

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a value of type `type_id` (pointers are 8 bytes)."""
        return self._size_of(type_id, 0)

    def _size_of(self, type_id: int, depth: int) -> int:
        if depth > _MAX_TYPE_CHAIN:
            raise FormatError(f"BTF type {type_id}: type chain too long (cycle?)")
        t = self.resolve(type_id)
        if t.kind in _SIZED_KINDS and t.size is not None:
            return t.size
        if t.kind == "PTR":
            return 8
        if t.kind == "ARRAY":
            return int(t.extra["nelems"]) * self._size_of(int(t.extra["elem_type"]), depth + 1)
        if t.kind == "VAR":
            return self._size_of(t.type or 0, depth + 1)
        raise FormatError(f"BTF type {type_id} ({t.kind} {t.name or '(anon)'!r}) has no size")

    def to_bpftool_json(self) -> dict[str, Any]:
        """The document `bpftool btf dump file X -j` (bpftool 7.1) prints for this BTF."""
        return {"types": [_bpftool_type(t) for t in self.types[1:]]}


def _decode_types(data: bytes, strings: _Strings, o: str) -> list[BtfType]:
    types = [BtfType(id=0, kind="UNKN", name="", size=None, type=None)]
    head = struct.Struct(o + "III")
    pos = 0
    try:
        while pos < len(data):
            name_off, info, size_or_type = head.unpack_from(data, pos)
            pos += 12
            kind_no = (info >> 24) & 0x1F
            if not 0 < kind_no < len(KIND_NAMES):
                raise FormatError(f".BTF: type {len(types)} has unknown kind {kind_no}")
            t, pos = _decode_type(
                len(types),
                KIND_NAMES[kind_no],
                strings.at(name_off),
                info & 0xFFFF,
                bool(info >> 31),
                size_or_type,
                data,
                pos,
                strings,
                o,
            )
            types.append(t)
    except struct.error:
        raise FormatError(f".BTF: type {len(types)} is truncated at byte {pos} of the type section") from None
    return types


def _check_references(types: list[BtfType]) -> None:
    """Every type id a type refers to exists (the kernel's BTF verifier and libbpf refuse dangling ids), so
    consumers can follow any reference without a bounds check of their own."""
    count = len(types)
    for t in types:
        refs: list[int] = [t.type] if t.type is not None else []
        refs.extend(m.type for m in t.members)
        if t.kind == "ARRAY":
            refs += (t.extra["elem_type"], t.extra["index_type"])
        elif t.kind == "FUNC_PROTO":
            refs.extend(p for _, p in t.extra["params"])
        elif t.kind == "DATASEC":
            refs.extend(v for v, _, _ in t.extra["vars"])
        dangling = next((r for r in refs if r >= count), None)
        if dangling is not None:
            raise FormatError(
                f".BTF: type {t.id} ({t.kind} {t.name or '(anon)'!r}) refers to type {dangling}, which does not "
                f"exist ({count} types)"
            )


def _decode_type(
    type_id: int,
    kind: str,
    name: str,
    vlen: int,
    kflag: bool,
    size_or_type: int,
    data: bytes,
    pos: int,
    strings: _Strings,
    o: str,
) -> tuple[BtfType, int]:
    """Decode the kind-specific data after the common 12-byte header; returns the type and the next offset."""
    extra: dict[str, Any] = {"kind_flag": kflag}
    members: tuple[Member, ...] = ()
    size = size_or_type if kind in _SIZED_KINDS else None
    ref = size_or_type if kind in _REFERENCING_KINDS else None
    if kind == "INT":
        (word,) = struct.unpack_from(o + "I", data, pos)
        pos += 4
        extra.update(encoding=(word >> 24) & 0x0F, offset=(word >> 16) & 0xFF, bits=word & 0xFF)
    elif kind == "ARRAY":
        elem, index, nelems = struct.unpack_from(o + "III", data, pos)
        pos += 12
        extra.update(elem_type=elem, index_type=index, nelems=nelems)
    elif kind in ("STRUCT", "UNION"):
        rows = struct.unpack_from(o + "III" * vlen, data, pos)
        pos += 12 * vlen
        members = tuple(
            Member(
                strings.at(rows[i]),
                rows[i + 1],
                rows[i + 2] & 0xFFFFFF if kflag else rows[i + 2],
                rows[i + 2] >> 24 if kflag else 0,
            )
            for i in range(0, 3 * vlen, 3)
        )
    elif kind == "ENUM":
        rows = struct.unpack_from(o + "Ii" * vlen, data, pos)
        pos += 8 * vlen
        values = [
            (strings.at(rows[i]), rows[i + 1] if kflag else rows[i + 1] & 0xFFFFFFFF)
            for i in range(0, 2 * vlen, 2)
        ]
        extra.update(signed=kflag, values=values)
    elif kind == "ENUM64":
        rows = struct.unpack_from(o + "III" * vlen, data, pos)
        pos += 12 * vlen
        values = []
        for i in range(0, 3 * vlen, 3):
            value = rows[i + 2] << 32 | rows[i + 1]
            values.append((strings.at(rows[i]), value - (1 << 64) if kflag and value >> 63 else value))
        extra.update(signed=kflag, values=values)
    elif kind == "FWD":
        extra["fwd_kind"] = "union" if kflag else "struct"
    elif kind == "FUNC":
        extra["linkage"] = _FUNC_LINKAGES[vlen] if vlen < len(_FUNC_LINKAGES) else f"unknown({vlen})"
    elif kind == "FUNC_PROTO":
        rows = struct.unpack_from(o + "II" * vlen, data, pos)
        pos += 8 * vlen
        extra["params"] = [(strings.at(rows[i]), rows[i + 1]) for i in range(0, 2 * vlen, 2)]
    elif kind == "VAR":
        (linkage,) = struct.unpack_from(o + "I", data, pos)
        pos += 4
        extra["linkage"] = _VAR_LINKAGES[linkage] if linkage < len(_VAR_LINKAGES) else f"unknown({linkage})"
    elif kind == "DATASEC":
        rows = struct.unpack_from(o + "III" * vlen, data, pos)
        pos += 12 * vlen
        extra["vars"] = [(rows[i], rows[i + 1], rows[i + 2]) for i in range(0, 3 * vlen, 3)]
    elif kind == "DECL_TAG":
        (extra["component_idx"],) = struct.unpack_from(o + "i", data, pos)
        pos += 4
    return BtfType(type_id, kind, name, size, ref, members, extra), pos


def _bpftool_type(t: BtfType) -> dict[str, Any]:
    """One entry of bpftool's JSON dump, field for field in bpftool's order."""
    out: dict[str, Any] = {"id": t.id, "kind": t.kind, "name": t.name or "(anon)"}
    x = t.extra
    if t.kind == "INT":
        out.update(
            size=t.size,
            bits_offset=x["offset"],
            nr_bits=x["bits"],
            encoding=_INT_ENCODINGS.get(x["encoding"], "UNKN"),
        )
    elif t.kind in ("PTR", "CONST", "VOLATILE", "RESTRICT", "TYPEDEF", "TYPE_TAG"):
        out["type_id"] = t.type
    elif t.kind == "ARRAY":
        out.update(type_id=x["elem_type"], index_type_id=x["index_type"], nr_elems=x["nelems"])
    elif t.kind in ("STRUCT", "UNION"):
        members = []
        for m in t.members:
            row: dict[str, Any] = {
                "name": m.name or "(anon)",
                "type_id": m.type,
                "bits_offset": m.bits_offset,
            }
            if m.bitfield_size:
                row["bitfield_size"] = m.bitfield_size
            members.append(row)
        out.update(size=t.size, vlen=len(t.members), members=members)
    elif t.kind in ("ENUM", "ENUM64"):
        values = x["values"]
        if t.kind == "ENUM" and not x["signed"]:
            # bpftool 7.1 widens the stored s32 to u64 before printing an unsigned enum value.
            values = [(n, v | 0xFFFFFFFF_00000000 if v >> 31 else v) for n, v in values]
        out.update(
            encoding="SIGNED" if x["signed"] else "UNSIGNED",
            size=t.size,
            vlen=len(values),
            values=[{"name": n or "(anon)", "val": v} for n, v in values],
        )
    elif t.kind == "FWD":
        out["fwd_kind"] = x["fwd_kind"]
    elif t.kind == "FUNC":
        out.update(type_id=t.type, linkage=x["linkage"])
    elif t.kind == "FUNC_PROTO":
        out.update(
            ret_type_id=t.type,
            vlen=len(x["params"]),
            params=[{"name": n or "(anon)", "type_id": p} for n, p in x["params"]],
        )
    elif t.kind == "VAR":
        out.update(type_id=t.type, linkage=x["linkage"])
    elif t.kind == "DATASEC":
        out.update(
            size=t.size,
            vlen=len(x["vars"]),
            vars=[{"type_id": v, "offset": off, "size": sz} for v, off, sz in x["vars"]],
        )
    elif t.kind == "FLOAT":
        out["size"] = t.size
    elif t.kind == "DECL_TAG":
        out.update(type_id=t.type, component_idx=x["component_idx"])
    return out


@dataclass(frozen=True)
class CoreRelo:
    """A CO-RE relocation: `insn_off` is a byte offset in its section, `access` the access string "0:1"."""

    insn_off: int
    type_id: int
    access: str
    kind: int
    kind_name: str


@dataclass(frozen=True)
class LineInfo:
    """A line_info record: `insn_off` is a byte offset in its section."""

    insn_off: int
    file_name: str
    line: int
    col: int
    line_text: str


class BtfExt:
    """Decoded `.BTF.ext`: per-section func_info, line_info and CO-RE relocations (sections keyed by name)."""

    def __init__(
        self,
        func_info: dict[str, list[tuple[int, int]]],
        line_info: dict[str, list[LineInfo]],
        core_relos: dict[str, list[CoreRelo]],
    ) -> None:
        self.func_info = func_info
        self.line_info = line_info
        self.core_relos = core_relos

    @classmethod
    def parse(cls, data: bytes, btf: Btf, byteorder: str = "little") -> BtfExt:
        """Decode raw `.BTF.ext` bytes; strings are looked up in `btf`."""
        o = _order_prefix(data, byteorder, ".BTF.ext")
        if len(data) < 8:
            raise FormatError(f".BTF.ext: {len(data)} bytes, too short for a header")
        _, version, _, hdr_len = struct.unpack_from(o + "HBBI", data)
        if version != 1:
            raise FormatError(f".BTF.ext: unsupported version {version}")
        if hdr_len < _BTF_EXT_MIN_HEADER_LEN or hdr_len > len(data):
            raise FormatError(f".BTF.ext: header length {hdr_len} is invalid")
        fi_off, fi_len, li_off, li_len = struct.unpack_from(o + "IIII", data, 8)
        co_off, co_len = struct.unpack_from(o + "II", data, 24) if hdr_len >= 32 else (0, 0)
        body = data[hdr_len:]

        func_info = {
            sec: [(insn_off, type_id) for insn_off, type_id in recs]
            for sec, recs in _records(_slice(body, fi_off, fi_len, "func_info"), 8, "II", btf, o, "func_info")
        }
        line_info = {}
        for sec, recs in _records(_slice(body, li_off, li_len, "line_info"), 16, "IIII", btf, o, "line_info"):
            line_info[sec] = [
                LineInfo(
                    insn_off, btf.string(file_off), line_col >> 10, line_col & 0x3FF, btf.string(line_off)
                )
                for insn_off, file_off, line_off, line_col in recs
            ]
        core_relos = {}
        for sec, recs in _records(_slice(body, co_off, co_len, "core_relo"), 16, "IIII", btf, o, "core_relo"):
            core_relos[sec] = [
                CoreRelo(
                    insn_off,
                    type_id,
                    btf.string(access_off),
                    kind,
                    CORE_RELO_KINDS[kind] if kind < len(CORE_RELO_KINDS) else f"unknown({kind})",
                )
                for insn_off, type_id, access_off, kind in recs
            ]
        return cls(func_info, line_info, core_relos)


def _records(
    data: bytes,
    min_size: int,
    fmt: str,
    btf: Btf,
    o: str,
    what: str,
) -> list[tuple[str, list[tuple[int, ...]]]]:
    """Split one `.BTF.ext` subsection (rec_size, then per-section blocks) into (section name, records)."""
    if not data:
        return []
    if len(data) < 4:
        raise FormatError(f".BTF.ext {what}: {len(data)} bytes, too short for the record size")
    (rec_size,) = struct.unpack_from(o + "I", data)
    if rec_size < min_size or rec_size % 4:
        raise FormatError(f".BTF.ext {what}: record size {rec_size} is invalid (minimum {min_size})")
    if rec_size > len(data):
        raise FormatError(f".BTF.ext {what}: record size {rec_size} exceeds the {len(data)}-byte subsection")
    record = struct.Struct(o + fmt)  # fields past the ones we know (newer, larger records) are skipped
    blocks = []
    pos = 4
    while pos < len(data):
        if pos + 8 > len(data):
            raise FormatError(f".BTF.ext {what}: block header truncated at byte {pos}")
        sec_off, count = struct.unpack_from(o + "II", data, pos)
        pos += 8
        if count == 0 or pos + count * rec_size > len(data):
            raise FormatError(
                f".BTF.ext {what}: block at byte {pos - 8} has {count} records of {rec_size} bytes, "
                f"but {len(data) - pos} bytes remain"
            )
        blocks.append(
            (btf.string(sec_off), [record.unpack_from(data, pos + i * rec_size) for i in range(count)])
        )
        pos += count * rec_size
    return blocks
