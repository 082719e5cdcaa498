"""Reader for BPF ELF objects: sections, symbols, relocations, programs, maps and externs, named the way
libbpf sees them. The ELF container is decoded here with `struct`: importing pyelftools alone costs ~35 ms,
a quarter of the CLI's 150 ms budget, so pyelftools serves as the independent oracle in the tests instead."""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from bpfcert.btf import Btf, BtfExt, BtfType
from bpfcert.errors import BpfcertError, FormatError
from bpfcert.knowledge.map_types import map_type_by_value

EM_BPF = 247
ELF_MAGIC = b"\x7fELF"
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_XINDEX = 0xFFFF
SHT_NOBITS = 8
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10

RELOCATION_TYPES = {  # the BPF ELF relocation types LLVM emits
    0: "R_BPF_NONE", 1: "R_BPF_64_64", 2: "R_BPF_64_ABS64", 3: "R_BPF_64_ABS32", 4: "R_BPF_64_NODYLD32",
    10: "R_BPF_64_32",
}
_SYMBOL_BINDS = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK"}
_SYMBOL_TYPES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE", 5: "COMMON", 6: "TLS"}
_VISIBILITIES = ("DEFAULT", "INTERNAL", "HIDDEN", "PROTECTED")
_ELF_TYPES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_SECTION_TYPES = {
    0: "SHT_NULL", 1: "SHT_PROGBITS", 2: "SHT_SYMTAB", 3: "SHT_STRTAB", 4: "SHT_RELA", 5: "SHT_HASH",
    6: "SHT_DYNAMIC", 7: "SHT_NOTE", 8: "SHT_NOBITS", 9: "SHT_REL", 11: "SHT_DYNSYM", 14: "SHT_INIT_ARRAY",
    15: "SHT_FINI_ARRAY", 16: "SHT_PREINIT_ARRAY", 17: "SHT_GROUP", 18: "SHT_SYMTAB_SHNDX",
    0x6FFF4C03: "SHT_LLVM_ADDRSIG",
}
_LEGACY_MAP_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags")  # bpf_map_def u32s
_BTF_MAP_INT_FIELDS = ("type", "max_entries", "map_flags", "key_size", "value_size", "pinning")
_PINNING = ("none", "by_name")
_INTERNAL_MAP_PREFIXES = (".rodata", ".data", ".bss")
_LIBBPF_BY_NAME = frozenset({"license", "version", "maps", ".maps", ".BTF", ".BTF.ext"})  # last one wins


@dataclass(frozen=True)
class Section:
    """An ELF section; `data` is b"" for SHT_NOBITS."""

    index: int
    name: str
    type: str
    flags: int
    offset: int
    size: int
    executable: bool
    data: bytes


class Symbol(NamedTuple):
    """A symbol-table entry. `section` is None for undefined and special indices; STT_SECTION symbols,
    nameless in the file, carry their section's name."""

    name: str
    section_index: int
    section: str | None
    value: int
    size: int
    bind: str
    type: str
    visibility: str


class Relocation(NamedTuple):
    """A relocation applied at byte `offset` of `section`."""

    section: str
    offset: int
    type: int
    type_name: str
    symbol: Symbol


class Program(NamedTuple):
    """A function: an entry program or a subprogram, located by byte offset and size in its section."""

    name: str
    section: str
    offset: int
    size: int
    insns: bytes
    is_subprogram: bool


class MapDef(NamedTuple):
    """A map the object defines: BTF-defined (`.maps`), legacy (`maps`, `maps/<x>`) or internal (globals)."""

    name: str
    section: str
    kind: str
    type: str
    key_size: int | None
    value_size: int | None
    max_entries: int | None
    map_flags: int
    pinning: str
    key_type_id: int | None
    value_type_id: int | None


def _map_type_name(number: int) -> str:
    """Kernel map type name for `enum bpf_map_type` value `number` ('unknown(N)' when not one we know)."""
    known = map_type_by_value(number)
    return known.name if known else f"unknown({number})"


class BpfObject:
    """A parsed BPF ELF object. Build with `open` or `from_bytes`; every malformed input raises FormatError,
    except an undecodable `.BTF`/`.BTF.ext`, which is reported in `btf_error`/`btf_ext_error`."""

    def __init__(self, data: bytes, path: str) -> None:
        self.path = path
        self.data = data
        self._header = _parse_elf_header(data, 0, path)
        self.elfclass = 64 if self._header.wide else 32
        self.endianness = "little" if self._header.order == "<" else "big"
        self.arch = "bpfel" if self.endianness == "little" else "bpfeb"
        self.machine = self._header.machine
        self.elf_type = _ELF_TYPES.get(self._header.elf_type, f"0x{self._header.elf_type:x}")
        self._o = self._header.order
        self.sections = self._read_sections()
        self._by_name = {s.name: s for s in reversed(self.sections)}
        self.symbols = self._read_symbols()
        self._symbols_by_section: dict[int, list[Symbol]] = {}
        for sym in self.symbols:
            if sym.section is not None:
                self._symbols_by_section.setdefault(sym.section_index, []).append(sym)
        self.relocations = self._read_relocations()
        self.license = self._read_license()
        self.kern_version = self._read_kern_version()
        self.btf, self.btf_error = self._read_btf()
        self._map_layouts: dict[int, tuple[dict[str, int], dict[str, int], bool]] = {}
        self.btf_ext, self.btf_ext_error = self._read_btf_ext()
        is_bpf = self.machine == EM_BPF
        functions = self._read_functions() if is_bpf else []
        self.programs = [f for f in functions if not f.is_subprogram]
        self.subprograms = [f for f in functions if f.is_subprogram]
        self.externs = [
            s
            for s in self.symbols
            if s.section_index == SHN_UNDEF and s.bind in ("GLOBAL", "WEAK") and s.name
        ]
        self.maps = self._read_maps() if is_bpf else []

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> BpfObject:
        """Read and parse the object at `path`."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise BpfcertError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
        return cls.from_bytes(data, os.fspath(path))

    @classmethod
    def from_bytes(cls, data: bytes, path: str = "<bytes>") -> BpfObject:
        """Parse an object held in memory; `path` only names it in messages."""
        return cls(bytes(data), path)

    def section(self, name: str) -> Section | None:
        """The first section called `name`, if any."""
        return self._by_name.get(name)

    def relocations_for(self, section: str) -> list[Relocation]:
        """Relocations applied to `section`, in file order."""
        return [r for r in self.relocations if r.section == section]

    def _fail(self, message: str) -> FormatError:
        return FormatError(f"{self.path}: {message}")

    def _read_sections(self) -> list[Section]:
        h = self._header
        size = len(self.data)
        raw = []
        for index in range(h.shnum):
            try:
                raw.append(h.section_header.unpack_from(self.data, h.shoff + index * h.shentsize))
            except struct.error:
                raise self._fail(f"section header {index} lies beyond the {size}-byte file") from None
        if not raw:
            return []
        names = raw[h.shstrndx] if h.shstrndx < len(raw) else None
        if names is None or names[4] + names[5] > size:
            raise self._fail(f"section name table (section {h.shstrndx}) is missing or beyond the file")
        name_table = self.data[names[4] : names[4] + names[5]]
        self._check_no_overlap(raw)
        sections = []
        self._links: list[tuple[int, int]] = []
        for index, (name_off, sh_type, flags, _, offset, length, link, info, *_) in enumerate(raw):
            type_name = _SECTION_TYPES.get(sh_type, f"0x{sh_type:x}")
            has_bytes = type_name not in ("SHT_NOBITS", "SHT_NULL")
            data = self.data[offset : offset + length] if has_bytes else b""  # no overlaps: <= file size in all
            name = _c_string(name_table, name_off, f"{self.path}: section {index} name") if index else ""
            sections.append(
                Section(index, name, type_name, flags, offset, length, bool(flags & SHF_EXECINSTR), data)
            )
            self._links.append((link, info))
        self._check_unambiguous(sections)
        return sections

    def _check_no_overlap(self, raw: list[tuple[int, ...]]) -> None:
        """Every section with bytes lies inside the file and shares none of them (the ELF gABI: "no byte in a
        file resides in more than one section"); checked by sorting once, before any bytes are copied."""
        spans = []
        for index, (_, sh_type, _, _, offset, length, *_) in enumerate(raw):
            if sh_type in (0, SHT_NOBITS):
                continue
            if offset + length > len(self.data):
                raise self._fail(
                    f"section {index} [{offset}, {offset + length}) lies beyond the {len(self.data)}-byte file"
                )
            if length:
                spans.append((offset, offset + length, index))
        spans.sort()
        reach = (0, 0, 0)  # the span reaching furthest so far
        for span in spans:
            if span[0] < reach[1]:
                (a_start, a_end, a), (b_start, b_end, b) = sorted((reach, span), key=lambda s: s[2])
                raise self._fail(
                    f"sections {a} [{a_start}, {a_end}) and {b} [{b_start}, {b_end}) overlap; "
                    "the ELF gABI puts no byte in two sections"
                )
            if span[1] > reach[1]:
                reach = span

    def _check_unambiguous(self, sections: list[Section]) -> None:
        """Refuse what loaders read differently: libbpf refuses a second symbol table, and for a repeated section
        name it reads only the last `license`/`version`/`.maps`/`.BTF`/... while other readers (this one, and
        programs and relocations, which are named by section) would take the first or mix them up."""
        symtabs = [s.index for s in sections if s.type == "SHT_SYMTAB"]
        if len(symtabs) > 1:
            raise self._fail(
                f"sections {symtabs[0]} and {symtabs[1]} are both symbol tables; libbpf refuses such an object"
            )
        seen: dict[str, int] = {}
        for sec in sections:
            if not sec.name or sec.type == "SHT_GROUP":
                continue
            first = seen.setdefault(sec.name, sec.index)
            if first != sec.index:
                why = (
                    "libbpf reads only the last, other loaders the first"
                    if sec.name in _LIBBPF_BY_NAME
                    else "programs and relocations are known by their section's name"
                )
                raise self._fail(f"sections {first} and {sec.index} are both named {sec.name!r}; {why}")

    def _section_at(self, index: int, what: str) -> Section:
        if not 0 < index < len(self.sections):
            raise self._fail(f"{what} refers to section {index}, which does not exist")
        return self.sections[index]

    def _read_symbols(self) -> list[Symbol]:
        symtab = next((s for s in self.sections if s.type == "SHT_SYMTAB"), None)
        if symtab is None:
            return []
        strtab = self._section_at(self._links[symtab.index][0], "the symbol table's string table link").data
        if self.elfclass == 64:
            entry = struct.Struct(self._o + "IBBHQQ")
            rows: Iterator[tuple[int, ...]] = entry.iter_unpack(symtab.data[: len(symtab.data) // 24 * 24])
        else:
            entry = struct.Struct(self._o + "IIIBBH")
            rows = (
                (n, i, ot, sh, v, sz)
                for n, v, sz, i, ot, sh in entry.iter_unpack(symtab.data[: len(symtab.data) // 16 * 16])
            )
        names: dict[int, str] = {}
        section_names = {s.index: s.name for s in self.sections[1:]}
        symbols: list[Symbol] = []
        for name_off, info, other, shndx, value, size in rows:
            name = names.get(name_off)
            if name is None:
                name = names[name_off] = _c_string(strtab, name_off, f"{self.path}: symbol name")
            section: str | None = None
            if SHN_UNDEF < shndx < SHN_LORESERVE:
                section = section_names.get(shndx)
                if section is None:
                    raise self._fail(f"symbol {name or len(symbols)} refers to section {shndx}, which does not exist")
            sym_type = _SYMBOL_TYPES.get(info & 0xF) or str(info & 0xF)
            if sym_type == "SECTION" and not name and section is not None:
                name = section
            bind = _SYMBOL_BINDS.get(info >> 4) or str(info >> 4)
            symbols.append(Symbol(name, shndx, section, value, size, bind, sym_type, _VISIBILITIES[other & 3]))
        return symbols

    def _read_relocations(self) -> list[Relocation]:
        """Static relocations (against .symtab); dynamic ones (.rela.dyn against .dynsym) are skipped."""
        wide = self.elfclass == 64
        relocations = []
        for sec in self.sections:
            if sec.type not in ("SHT_REL", "SHT_RELA"):
                continue
            link, info = self._links[sec.index]
            if self._section_at(link, f"relocation section {sec.name}").type != "SHT_SYMTAB":
                continue
            target = self._section_at(info, f"relocation section {sec.name}").name
            addend = sec.type == "SHT_RELA"
            record = struct.Struct(self._o + ("QQ" if wide else "II") + ("q" if wide else "i") * addend)
            for offset, r_info, *_ in record.iter_unpack(
                sec.data[: len(sec.data) // record.size * record.size]
            ):
                sym_index, r_type = (
                    (r_info >> 32, r_info & 0xFFFFFFFF) if wide else (r_info >> 8, r_info & 0xFF)
                )
                if sym_index >= len(self.symbols):
                    raise self._fail(
                        f"relocation in {sec.name} refers to symbol {sym_index}, which does not exist"
                    )
                type_name = RELOCATION_TYPES.get(r_type) or f"R_BPF_{r_type}"
                relocations.append(Relocation(target, offset, r_type, type_name, self.symbols[sym_index]))
        return relocations

    def _read_license(self) -> str | None:
        sec = self.section("license")
        if sec is None:
            return None
        return sec.data.split(b"\0", 1)[0].decode(errors="replace")

    def _read_kern_version(self) -> int | None:
        sec = self.section("version")
        if sec is None:
            return None
        if len(sec.data) != 4:
            raise self._fail(f"'version' section is {len(sec.data)} bytes, expected 4")
        return int(struct.unpack(self._o + "I", sec.data)[0])

    def _read_btf(self) -> tuple[Btf | None, str | None]:
        sec = self.section(".BTF")
        if sec is None:
            return None, None
        try:
            return Btf.parse(sec.data, self.endianness), None
        except FormatError as exc:
            return None, str(exc)

    def _read_btf_ext(self) -> tuple[BtfExt | None, str | None]:
        sec = self.section(".BTF.ext")
        if sec is None:
            return None, None
        if self.btf is None:
            return None, ".BTF.ext: cannot decode without a valid .BTF"
        try:
            return BtfExt.parse(sec.data, self.btf, self.endianness), None
        except FormatError as exc:
            return None, str(exc)

    def _read_functions(self) -> list[Program]:
        """Entry programs and subprograms, by libbpf's rules, ordered by section and offset. A zero-size
        function runs to the next function's start (bisected in the starts, sorted once per section).
        Functions may share a range (and its bytes) but not overlap, so the code read is at most the file."""
        functions = []
        for index, syms in sorted(self._symbols_by_section.items()):
            sec = self.sections[index]
            if not (sec.executable and sec.type == "SHT_PROGBITS"):
                continue
            funcs = sorted((s for s in syms if s.type == "FUNC"), key=lambda s: s.value)
            starts = sorted({s.value for s in funcs})
            reach: tuple[int, int, str] = (0, 0, "")  # the range reaching furthest so far, and its function
            code: dict[tuple[int, int], bytes] = {}
            for sym in funcs:
                after = bisect.bisect_right(starts, sym.value)
                end = sym.value + sym.size if sym.size else starts[after] if after < len(starts) else sec.size
                if end > sec.size:
                    raise self._fail(
                        f"function {sym.name} [{sym.value}, {end}) overruns section {sec.name} ({sec.size} bytes)"
                    )
                if sym.value < reach[1] and (sym.value, end) != reach[:2]:
                    raise self._fail(
                        f"functions {reach[2]} [{reach[0]}, {reach[1]}) and {sym.name} [{sym.value}, {end}) "
                        f"overlap in section {sec.name}"
                    )
                if end > reach[1]:
                    reach = (sym.value, end, sym.name)
                insns = code.get((sym.value, end))
                if insns is None:
                    insns = code[(sym.value, end)] = sec.data[sym.value : end]
                subprogram = sec.name == ".text" or sym.bind == "LOCAL"
                functions.append(Program(sym.name, sec.name, sym.value, end - sym.value, insns, subprogram))
        return functions

    def _read_maps(self) -> list[MapDef]:
        maps: list[MapDef] = []
        for sec in self.sections:
            if sec.name == ".maps":
                maps.extend(self._btf_maps(sec))
            elif sec.name == "maps" or sec.name.startswith("maps/"):
                maps.extend(self._legacy_maps(sec))
            elif _is_global_data(sec):
                maps.append(_internal_map(sec.name, sec.size))
        kconfig = self._kconfig_size()
        if kconfig:
            maps.append(_internal_map(".kconfig", kconfig))
        return maps

    def _btf_maps(self, sec: Section) -> list[MapDef]:
        """Maps from the `.maps` DATASEC: each VAR's STRUCT encodes ints as `int (*name)[N]` and key/value
        as pointers to their types."""
        symbols = sorted(
            (s for s in self._symbols_by_section.get(sec.index, ()) if s.type == "OBJECT"), key=lambda s: s.value
        )
        if self.btf is None:
            return [
                MapDef(s.name, sec.name, "btf", "unknown", None, None, None, 0, "none", None, None)
                for s in symbols
            ]
        datasec = self.btf.find(".maps", "DATASEC")
        if datasec is None:
            raise self._fail("'.maps' section but no '.maps' DATASEC in .BTF")
        maps = [self._btf_map(self.btf, var_id, sec.name) for var_id, _, _ in datasec.extra["vars"]]
        file_order = {s.name: i for i, s in enumerate(symbols)}
        return sorted(maps, key=lambda m: file_order.get(m.name, len(file_order)))

    def _btf_map(self, btf: Btf, var_id: int, section: str) -> MapDef:
        var = btf.type(var_id)
        if var.kind != "VAR" or not var.name:
            raise self._fail(f"'.maps' DATASEC entry {var_id} is not a named VAR")
        struct_t = btf.resolve(var.type or 0)
        if struct_t.kind != "STRUCT":
            raise self._fail(f"map {var.name}: definition is a {struct_t.kind}, not a STRUCT")
        if struct_t.id not in self._map_layouts:  # maps sharing one definition read it once
            self._map_layouts[struct_t.id] = self._btf_map_layout(btf, struct_t, var.name)
        ints, types, has_values = self._map_layouts[struct_t.id]
        key_size = btf.size_of(types["key"]) if "key" in types else ints.get("key_size")
        value_size = btf.size_of(types["value"]) if "value" in types else ints.get("value_size")
        if value_size is None and has_values:
            value_size = 4  # libbpf: a `values` array makes the value a 4-byte prog/map fd
        pinning = ints.get("pinning", 0)
        return MapDef(
            name=var.name,
            section=section,
            kind="btf",
            type=_map_type_name(ints.get("type", 0)),
            key_size=key_size,
            value_size=value_size,
            max_entries=ints.get("max_entries"),
            map_flags=ints.get("map_flags", 0),
            pinning=_PINNING[pinning] if pinning < len(_PINNING) else f"unknown({pinning})",
            key_type_id=types.get("key"),
            value_type_id=types.get("value"),
        )

    def _btf_map_layout(
        self, btf: Btf, struct_t: BtfType, map_name: str
    ) -> tuple[dict[str, int], dict[str, int], bool]:
        """The integer fields and key/value type ids a map STRUCT encodes, and whether it has `values`."""
        ints: dict[str, int] = {}
        types: dict[str, int] = {}
        for m in struct_t.members:
            if m.name not in _BTF_MAP_INT_FIELDS and m.name not in ("key", "value"):
                continue  # `values` (prog-array / map-in-map slots) and fields newer than we know
            ptr = btf.resolve(m.type)
            if ptr.kind != "PTR":
                raise self._fail(f"map {map_name}: field {m.name} is a {ptr.kind}, not a pointer")
            if m.name in ("key", "value"):
                types[m.name] = ptr.type or 0
                continue
            array = btf.resolve(ptr.type or 0)
            if array.kind != "ARRAY":
                raise self._fail(f"map {map_name}: field {m.name} does not encode an integer")
            ints[m.name] = int(array.extra["nelems"])
        return ints, types, any(m.name == "values" for m in struct_t.members)

    def _legacy_maps(self, sec: Section) -> list[MapDef]:
        """One `struct bpf_map_def` per symbol; each is the section size divided by the number of maps."""
        syms = sorted(
            (
                s
                for s in self._symbols_by_section.get(sec.index, ())
                if s.type in ("OBJECT", "NOTYPE") and s.name
            ),
            key=lambda s: s.value,
        )
        if not syms:
            return []
        def_size = len(sec.data) // len(syms)
        if def_size < 16 or sec.type == "SHT_NOBITS":
            raise self._fail(f"legacy map section {sec.name}: {len(sec.data)} bytes for {len(syms)} map(s)")
        maps = []
        for sym in syms:
            if sym.value + def_size > len(sec.data):
                raise self._fail(f"legacy map {sym.name} at offset {sym.value} overruns section {sec.name}")
            count = min(def_size // 4, len(_LEGACY_MAP_FIELDS))
            values = dict(
                zip(
                    _LEGACY_MAP_FIELDS,
                    struct.unpack_from(self._o + "I" * count, sec.data, sym.value),
                    strict=False,
                )
            )
            maps.append(
                MapDef(
                    name=sym.name,
                    section=sec.name,
                    kind="legacy",
                    type=_map_type_name(values["type"]),
                    key_size=values["key_size"],
                    value_size=values["value_size"],
                    max_entries=values["max_entries"],
                    map_flags=values.get("map_flags", 0),
                    pinning="none",
                    key_type_id=None,
                    value_type_id=None,
                )
            )
        return maps

    def _kconfig_size(self) -> int:
        """Size of the `.kconfig` map libbpf builds for `__kconfig` externs (each aligned to its size)."""
        datasec = self.btf.find(".kconfig", "DATASEC") if self.btf is not None else None
        if datasec is None:
            return 0
        size = 0
        for var_id, _, _ in datasec.extra["vars"]:
            var_size = self.btf.size_of(var_id) if self.btf is not None else 0
            align = min(8, 1 << max(var_size - 1, 0).bit_length())
            size = (size + align - 1) // align * align + var_size
        return size


def _is_global_data(sec: Section) -> bool:
    """`.rodata`, `.data`, `.bss` and their `.<prefix>.<suffix>` variants, when allocated and not empty."""
    named = any(sec.name == p or sec.name.startswith(p + ".") for p in _INTERNAL_MAP_PREFIXES)
    return named and bool(sec.flags & SHF_ALLOC) and sec.size > 0


def _internal_map(name: str, size: int) -> MapDef:
    """The one-entry array libbpf creates for a global-data section (read-only to programs for .rodata*)."""
    read_only = name.startswith(".rodata") or name == ".kconfig"
    return MapDef(
        name=name,
        section=name,
        kind="internal",
        type="array",
        key_size=4,
        value_size=size,
        max_entries=1,
        map_flags=BPF_F_MMAPABLE | (BPF_F_RDONLY_PROG if read_only else 0),
        pinning="none",
        key_type_id=None,
        value_type_id=None,
    )


def _c_string(table: bytes, offset: int, what: str) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise FormatError(f"{what} at offset {offset} lies outside its {len(table)}-byte string table")
    return table[offset:end].decode(errors="replace")


def extract_embedded(data: bytes) -> list[bytes]:
    """BPF ELF objects embedded in `data` (an executable or shared library), in file order.

    Each `\\x7fELF` header with e_machine EM_BPF is a candidate; its length runs to the end of its section
    header table (or of its last section, if later); candidates that do not parse are skipped."""
    found = []
    start = data.find(ELF_MAGIC)
    while start >= 0:
        length = _embedded_length(data, start)
        if length:
            candidate = data[start : start + length]
            try:
                BpfObject.from_bytes(candidate)
            except FormatError:
                length = 0
            else:
                found.append(candidate)
        start = data.find(ELF_MAGIC, start + max(length, 1))
    return found


def _embedded_length(data: bytes, start: int) -> int:
    """Length of the BPF ELF object whose header starts at `start`, or 0 when it is not one."""
    try:
        h = _parse_elf_header(data, start, "embedded object")
        end = h.shoff + h.shentsize * h.shnum
        for index in range(h.shnum):
            row = h.section_header.unpack_from(data, start + h.shoff + index * h.shentsize)
            if row[1] != SHT_NOBITS:
                end = max(end, row[4] + row[5])
    except (FormatError, struct.error):
        return 0
    return end if h.machine == EM_BPF and start + end <= len(data) else 0


class _ElfHeader(NamedTuple):
    """The fields of the ELF header the reader needs, with the section count and name index resolved."""

    wide: bool
    order: str
    elf_type: int
    machine: int
    shoff: int
    shentsize: int
    shnum: int
    shstrndx: int
    section_header: struct.Struct


def _parse_elf_header(data: bytes, start: int, path: str) -> _ElfHeader:
    """Decode the ELF header at `start`, resolving extended section numbering; FormatError if not ELF."""
    ident = data[start : start + 16]
    if len(ident) < 16 or ident[:4] != ELF_MAGIC:
        raise FormatError(f"{path}: not an ELF file")
    if ident[4] not in (1, 2) or ident[5] not in (1, 2):
        raise FormatError(f"{path}: unknown ELF class {ident[4]} or data encoding {ident[5]}")
    wide = ident[4] == 2
    order = "<" if ident[5] == 1 else ">"
    layout = order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH")
    try:
        elf_type, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = struct.unpack_from(
            layout, data, start + 16
        )
    except struct.error:
        raise FormatError(f"{path}: ELF header truncated ({len(data) - start} bytes)") from None
    section_header = struct.Struct(order + ("IIQQQQIIQQ" if wide else "IIIIIIIIII"))
    if shoff and shentsize < section_header.size:
        raise FormatError(f"{path}: section header entry size {shentsize} is below {section_header.size}")
    if shoff and (shnum == 0 or shstrndx == SHN_XINDEX):  # extended numbering: real values in section 0
        try:
            first = section_header.unpack_from(data, start + shoff)
        except struct.error:
            raise FormatError(f"{path}: section header table at {shoff} lies beyond the file") from None
        shnum = shnum or first[5]
        shstrndx = first[6] if shstrndx == SHN_XINDEX else shstrndx
    if not shoff:
        shnum = 0
    if start + shoff + shnum * shentsize > len(data):
        raise FormatError(f"{path}: section header table ({shnum} entries at {shoff}) lies beyond the file")
    return _ElfHeader(wide, order, elf_type, machine, shoff, shentsize, shnum, shstrndx, section_header)
