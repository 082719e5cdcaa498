"""Reader for BPF ELF objects: sections, symbols, relocations, programs, maps and externs, named the way
libbpf sees them. The ELF container (header, section headers, symbols, relocations) is decoded by pyelftools;
pyelftools' enum names are mapped back to the numbers and names this module promises, and every error it
raises on malformed input becomes a FormatError. Section contents, `.BTF` and `.BTF.ext` are decoded here."""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.common.utils import struct_parse
from elftools.construct.core import ConstructError
from elftools.elf import enums as _enums
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from bpfcert.btf import Btf, BtfExt
from bpfcert.errors import BpfcertError, FormatError
from bpfcert.knowledge.map_types import map_type_by_value

EM_BPF = 247
ELF_MAGIC = b"\x7fELF"
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
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

# What pyelftools (or construct beneath it) raises on malformed input; all of it becomes FormatError.
_ELF_ERRORS: tuple[type[BaseException], ...] = (
    ELFError, ConstructError, struct.error, ValueError, LookupError, TypeError, AttributeError, ArithmeticError,
    AssertionError, EOFError, MemoryError, RecursionError,
)


def _enum_values(*enums: Mapping[str, Any]) -> dict[str, int]:
    """name -> number for pyelftools enums (which decode known values to names and pass others through)."""
    return {name: value for enum in enums for name, value in enum.items() if isinstance(value, int)}


_MACHINES = _enum_values(_enums.ENUM_E_MACHINE)
_E_TYPE_VALUES = _enum_values(_enums.ENUM_E_TYPE)
_SH_TYPE_VALUES = _enum_values(
    _enums.ENUM_SH_TYPE_BASE, _enums.ENUM_SH_TYPE_AMD64, _enums.ENUM_SH_TYPE_ARM, _enums.ENUM_SH_TYPE_AARCH64,
    _enums.ENUM_SH_TYPE_RISCV, _enums.ENUM_SH_TYPE_MIPS,
)
_BIND_VALUES = _enum_values(_enums.ENUM_ST_INFO_BIND)
_SYMBOL_TYPE_VALUES = _enum_values(_enums.ENUM_ST_INFO_TYPE)
_VISIBILITY_VALUES = _enum_values(_enums.ENUM_ST_VISIBILITY)
_SHNDX_VALUES = _enum_values(_enums.ENUM_ST_SHNDX)


def _number(value: int | str, values: Mapping[str, int]) -> int:
    """The number behind a pyelftools enum field: ints pass through, names are looked up."""
    return value if isinstance(value, int) else values[value]


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


@dataclass(frozen=True)
class Symbol:
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


@dataclass(frozen=True)
class Relocation:
    """A relocation applied at byte `offset` of `section`."""

    section: str
    offset: int
    type: int
    type_name: str
    symbol: Symbol


@dataclass(frozen=True)
class Program:
    """A function: an entry program or a subprogram, located by byte offset and size in its section."""

    name: str
    section: str
    offset: int
    size: int
    insns: bytes
    is_subprogram: bool


@dataclass(frozen=True)
class MapDef:
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
        try:
            elf = _open_elf(data, path)
            self.elfclass: int = elf.elfclass
            self.endianness = "little" if elf.little_endian else "big"
            self.arch = "bpfel" if self.endianness == "little" else "bpfeb"
            self.machine = _number(elf["e_machine"], _MACHINES)
            elf_type = _number(elf["e_type"], _E_TYPE_VALUES)
            self.elf_type = _ELF_TYPES.get(elf_type, f"0x{elf_type:x}")
            self._o = "<" if elf.little_endian else ">"
            self.sections = self._read_sections(elf)
            self._by_name = {s.name: s for s in reversed(self.sections)}
            self.symbols = self._read_symbols(elf)
            self.relocations = self._read_relocations(elf)
        except FormatError:
            raise
        except _ELF_ERRORS as exc:
            raise self._fail(f"malformed ELF ({type(exc).__name__}: {_one_line(exc)})") from None
        self.license = self._read_license()
        self.kern_version = self._read_kern_version()
        self.btf, self.btf_error = self._read_btf()
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

    def _read_sections(self, elf: ELFFile) -> list[Section]:
        """Sections from pyelftools' parsed section headers. Section objects are built only for the tables
        whose records pyelftools decodes (symbols, relocations): building all of them costs ~50 us each."""
        size = len(self.data)
        headers = _section_headers(elf, size, self.path)
        if not headers:
            return []
        shstrndx = elf.get_shstrndx()
        names = headers[shstrndx] if shstrndx < len(headers) else None
        if names is None or names["sh_offset"] + names["sh_size"] > size:
            raise self._fail(f"section name table (section {shstrndx}) is missing or beyond the file")
        name_table = self.data[names["sh_offset"] : names["sh_offset"] + names["sh_size"]]
        sections = []
        self._links: list[tuple[int, int]] = []
        for index, h in enumerate(headers):
            sh_type = _number(h["sh_type"], _SH_TYPE_VALUES)
            type_name = _SECTION_TYPES.get(sh_type, f"0x{sh_type:x}")
            flags, offset, length = h["sh_flags"], h["sh_offset"], h["sh_size"]
            if type_name in ("SHT_NOBITS", "SHT_NULL"):
                data = b""
            elif offset + length > size:
                raise self._fail(
                    f"section {index} [{offset}, {offset + length}) lies beyond the {size}-byte file"
                )
            else:  # as stored (SHF_COMPRESSED included, as libbpf sees it): what Section.data() reads
                data = self.data[offset : offset + length]
            name = _c_string(name_table, h["sh_name"], f"{self.path}: section {index} name") if index else ""
            sections.append(
                Section(index, name, type_name, flags, offset, length, bool(flags & SHF_EXECINSTR), data)
            )
            self._links.append((h["sh_link"], h["sh_info"]))
        return sections

    def _section_at(self, index: int, what: str) -> Section:
        if not 0 < index < len(self.sections):
            raise self._fail(f"{what} refers to section {index}, which does not exist")
        return self.sections[index]

    def _read_symbols(self, elf: ELFFile) -> list[Symbol]:
        symtab = next((s for s in self.sections if s.type == "SHT_SYMTAB"), None)
        if symtab is None:
            return []
        what = "the symbol table's string table link"
        strtab = self._section_at(self._links[symtab.index][0], what)
        if strtab.type != "SHT_STRTAB":  # pyelftools insists
            raise self._fail(f"{what} refers to section {strtab.index}, a {strtab.type}, not a string table")
        table = elf.get_section(symtab.index)
        assert isinstance(table, SymbolTableSection)
        entry_size = table.structs.Elf_Sym.sizeof()
        if table["sh_entsize"] != entry_size:
            raise self._fail(f"symbol table entry size is {table['sh_entsize']}, expected {entry_size}")
        last_nul = strtab.data.rfind(b"\0")  # names must end inside the string table
        symbols: list[Symbol] = []
        for sym in table.iter_symbols():
            if sym["st_name"] > last_nul:
                raise self._fail(
                    f"symbol name at offset {sym['st_name']} lies outside its {strtab.size}-byte string table"
                )
            name = sym.name
            shndx = _number(sym["st_shndx"], _SHNDX_VALUES)
            section: str | None = None
            if SHN_UNDEF < shndx < SHN_LORESERVE:
                section = self._section_at(shndx, f"symbol {name or len(symbols)}").name
            info = sym["st_info"]
            bind = _number(info["bind"], _BIND_VALUES)
            sym_type = _number(info["type"], _SYMBOL_TYPE_VALUES)
            type_name = _SYMBOL_TYPES.get(sym_type, str(sym_type))
            if type_name == "SECTION" and not name and section is not None:
                name = section
            symbols.append(
                Symbol(
                    name,
                    shndx,
                    section,
                    sym["st_value"],
                    sym["st_size"],
                    _SYMBOL_BINDS.get(bind, str(bind)),
                    type_name,
                    _VISIBILITIES[_number(sym["st_other"]["visibility"], _VISIBILITY_VALUES) & 3],
                )
            )
        return symbols

    def _read_relocations(self, elf: ELFFile) -> list[Relocation]:
        """Static relocations (against .symtab); dynamic ones (.rela.dyn against .dynsym) are skipped."""
        relocations = []
        for sec in self.sections:
            if sec.type not in ("SHT_REL", "SHT_RELA"):
                continue
            link, info = self._links[sec.index]
            if self._section_at(link, f"relocation section {sec.name}").type != "SHT_SYMTAB":
                continue
            target = self._section_at(info, f"relocation section {sec.name}").name
            table = elf.get_section(sec.index)
            assert isinstance(table, RelocationSection)
            for reloc in table.iter_relocations():
                sym_index, r_type = reloc["r_info_sym"], reloc["r_info_type"]
                if sym_index >= len(self.symbols):
                    raise self._fail(
                        f"relocation in {sec.name} refers to symbol {sym_index}, which does not exist"
                    )
                type_name = RELOCATION_TYPES.get(r_type) or f"R_BPF_{r_type}"
                relocations.append(Relocation(target, reloc["r_offset"], r_type, type_name, self.symbols[sym_index]))
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
        """Entry programs and subprograms, by libbpf's rules, ordered by section and offset."""
        code = {s.index for s in self.sections if s.executable and s.type == "SHT_PROGBITS"}
        by_section: dict[int, list[Symbol]] = {}
        for sym in self.symbols:
            if sym.type == "FUNC" and sym.section is not None and sym.section_index in code:
                by_section.setdefault(sym.section_index, []).append(sym)
        functions = []
        for index, syms in sorted(by_section.items()):
            sec = self.sections[index]
            starts = {s.value for s in syms}
            for sym in sorted(syms, key=lambda s: s.value):
                size = sym.size or min((v for v in starts if v > sym.value), default=sec.size) - sym.value
                if sym.value + size > sec.size or size < 0:
                    raise self._fail(
                        f"function {sym.name} [{sym.value}, {sym.value + size}) overruns section "
                        f"{sec.name} ({sec.size} bytes)"
                    )
                subprogram = sec.name == ".text" or sym.bind == "LOCAL"
                functions.append(
                    Program(
                        sym.name,
                        sec.name,
                        sym.value,
                        size,
                        sec.data[sym.value : sym.value + size],
                        subprogram,
                    )
                )
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
            (s for s in self.symbols if s.section_index == sec.index and s.type == "OBJECT"),
            key=lambda s: s.value,
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
        ints: dict[str, int] = {}
        types: dict[str, int] = {}
        for m in struct_t.members:
            if m.name not in _BTF_MAP_INT_FIELDS and m.name not in ("key", "value"):
                continue  # `values` (prog-array / map-in-map slots) and fields newer than we know
            ptr = btf.resolve(m.type)
            if ptr.kind != "PTR":
                raise self._fail(f"map {var.name}: field {m.name} is a {ptr.kind}, not a pointer")
            if m.name in ("key", "value"):
                types[m.name] = ptr.type or 0
                continue
            array = btf.resolve(ptr.type or 0)
            if array.kind != "ARRAY":
                raise self._fail(f"map {var.name}: field {m.name} does not encode an integer")
            ints[m.name] = int(array.extra["nelems"])
        key_size = btf.size_of(types["key"]) if "key" in types else ints.get("key_size")
        value_size = btf.size_of(types["value"]) if "value" in types else ints.get("value_size")
        if value_size is None and any(m.name == "values" for m in struct_t.members):
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

    def _legacy_maps(self, sec: Section) -> list[MapDef]:
        """One `struct bpf_map_def` per symbol; each is the section size divided by the number of maps."""
        syms = sorted(
            (
                s
                for s in self.symbols
                if s.section_index == sec.index and s.type in ("OBJECT", "NOTYPE") and s.name
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


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line, at most 200 characters."""
    text = " ".join(str(exc).split())
    return text[:200] or "no detail"


def _c_string(table: bytes, offset: int, what: str) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise FormatError(f"{what} at offset {offset} lies outside its {len(table)}-byte string table")
    return table[offset:end].decode(errors="replace")


def _open_elf(data: bytes, path: str) -> ELFFile:
    """pyelftools' view of `data` (its ELF header parsed); FormatError when `data` is not ELF at all."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise FormatError(f"{path}: not an ELF file")
    return ELFFile(io.BytesIO(data))


def _section_headers(elf: ELFFile, size: int, path: str) -> list[Any]:
    """The parsed section headers, extended numbering resolved, after checking the table lies in the file."""
    shoff, entsize = elf["e_shoff"], elf["e_shentsize"]
    if not shoff:
        return []
    minimum = elf.structs.Elf_Shdr.sizeof()
    if entsize < minimum:
        raise FormatError(f"{path}: section header entry size {entsize} is below {minimum}")
    if shoff + minimum > size:
        raise FormatError(f"{path}: section header table at {shoff} lies beyond the file")
    count = elf.num_sections()  # e_shnum, or section 0's sh_size under extended numbering
    if shoff + count * entsize > size:
        raise FormatError(f"{path}: section header table ({count} entries at {shoff}) lies beyond the file")
    return [struct_parse(elf.structs.Elf_Shdr, elf.stream, shoff + i * entsize) for i in range(count)]


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
    rest = data[start:]
    try:
        elf = _open_elf(rest, "embedded object")
        if _number(elf["e_machine"], _MACHINES) != EM_BPF:
            return 0
        headers = _section_headers(elf, len(rest), "embedded object")
        end = int(elf["e_shoff"]) + int(elf["e_shentsize"]) * len(headers)
        for h in headers:
            if _number(h["sh_type"], _SH_TYPE_VALUES) != SHT_NOBITS:
                end = max(end, h["sh_offset"] + h["sh_size"])
    except FormatError:
        return 0
    except _ELF_ERRORS:
        return 0
    return end if end <= len(rest) else 0
