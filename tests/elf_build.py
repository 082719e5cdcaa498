"""A small ELF64 writer for hand-made BPF objects, and the hostile objects the reader must stay bounded on.

Used by the reader tests and by bench/bench_check.py; the objects' layout is spelled out here so a reader
can see exactly what each one contains."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

EXIT = bytes.fromhex("9500000000000000")
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STB_GLOBAL, STT_FUNC = 1, 2


@dataclass
class Sec:
    """One section to write: `data` is placed in the file unless `at` gives an explicit (offset, size)."""

    name: str
    type: int = SHT_PROGBITS
    flags: int = 0
    data: bytes = b""
    link: int = 0
    info: int = 0
    entsize: int = 0
    at: tuple[int, int] | None = None


def symtab(symbols: list[tuple[str, int, int, int, int]], strtab_index: int) -> tuple[Sec, Sec]:
    """`.symtab` and `.strtab` for (name, section index, value, size, st_info) rows after the null symbol."""
    names = bytearray(b"\0")
    rows = [bytes(24)]
    for name, shndx, value, size, info in symbols:
        offset = len(names)
        names += name.encode() + b"\0"
        rows.append(struct.pack("<IBBHQQ", offset, info, 0, shndx, value, size))
    table = Sec(".symtab", SHT_SYMTAB, data=b"".join(rows), link=strtab_index, info=1, entsize=24)
    return table, Sec(".strtab", SHT_STRTAB, data=bytes(names))


def elf_object(sections: list[Sec], pad_to: int = 0) -> bytes:
    """An ELF64 little-endian ET_REL EM_BPF object: the null section, `sections` (indices 1..n in order), then
    `.shstrtab`; section contents follow the 64-byte header, then zero padding to `pad_to`, then the headers."""
    shstr = bytearray(b"\0")
    offsets: dict[str, int] = {}
    for sec in [*sections, Sec(".shstrtab")]:
        if sec.name not in offsets:
            offsets[sec.name] = len(shstr)
            shstr += sec.name.encode() + b"\0"
    name_offsets = [offsets[sec.name] for sec in [*sections, Sec(".shstrtab")]]
    body = bytearray(64)
    placed = []
    for sec in [*sections, Sec(".shstrtab", SHT_STRTAB, data=bytes(shstr))]:
        if sec.at is not None:
            placed.append(sec.at)
            continue
        body += bytes(-len(body) % 8)
        placed.append((len(body), len(sec.data)))
        body += sec.data
    body += bytes(max(0, pad_to - len(body)) + (-max(len(body), pad_to) % 8))
    shoff = len(body)
    headers = [bytes(64)]
    written = [*sections, Sec(".shstrtab", SHT_STRTAB)]
    for sec, name_off, (offset, size) in zip(written, name_offsets, placed, strict=True):
        headers.append(
            struct.pack(
                "<IIQQQQIIQQ", name_off, sec.type, sec.flags, 0, offset, size, sec.link, sec.info, 8, sec.entsize
            )
        )
    shnum = len(headers)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 1, 247, 1, 0, 0, shoff, 0, 64, 0, 0, 64, shnum, shnum - 1)
    return header + bytes(body[64:]) + b"".join(headers)


def many_zero_size_functions(count: int = 40_000) -> bytes:
    """`count` global zero-size FUNC symbols in one `xdp` section, each one `exit` long: libbpf sizes each by
    the next symbol's offset. ~1.5 MB with the default count, mostly symbol table."""
    text = Sec("xdp", flags=SHF_ALLOC | SHF_EXECINSTR, data=EXIT * count)
    symbols = [(f"f{i}", 1, i * len(EXIT), 0, STB_GLOBAL << 4 | STT_FUNC) for i in range(count)]
    return elf_object([text, *symtab(symbols, strtab_index=3), Sec("license", data=b"GPL\0")])


def overlapping_sections(count: int = 16_000) -> bytes:
    """`count` PROGBITS section headers that each cover the whole file but its last byte (a slice of all of
    a `bytes` object is the object itself in CPython, so a bomb needs one byte less)."""
    size = 64 + 16 + (count + 2) * 64  # header, .shstrtab ("\0x\0.shstrtab\0" padded), section headers
    data = elf_object([Sec("x", at=(0, size - 1)) for _ in range(count)])
    assert len(data) == size
    return data


def write_package(directory: Path, object_bytes: bytes, name: str = "bomb") -> Path:
    """A directory package holding one object and the smallest manifest that declares it."""
    import hashlib

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prog.bpf.o").write_bytes(object_bytes)
    manifest = {
        "specVersion": "1.0",
        "name": name,
        "version": "1.0.0",
        "summary": "A hostile object.",
        "license": "GPL-2.0-only",
        "artifacts": [
            {
                "path": "prog.bpf.o",
                "sha256": hashlib.sha256(object_bytes).hexdigest(),
                "arch": "bpfel",
                "kind": "elf",
            }
        ],
        "programs": [],
    }
    (directory / "bpfpkg.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return directory


_REFERENCING_KINDS = {2, 8, 9, 10, 11, 12, 13, 14, 17, 18}  # PTR, modifiers, FUNC, FUNC_PROTO, VAR, tags
_EXTRA = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0), 15: (0, 12),
          17: (4, 0), 19: (0, 12)}  # kind -> (fixed bytes, bytes per vlen entry) after the 12-byte header
_ENTRY_REFERENCE = {4: 4, 5: 4, 13: 4, 15: 0}  # kind -> offset of the type id within each vlen entry


def btf_type_references(btf: bytes, order: str = "<") -> list[tuple[int, int]]:
    """(byte offset in `btf`, referring type id) of every type-id field of raw `.BTF` bytes, in type order:
    what a mutation points elsewhere to make a dangling reference."""
    hdr_len, type_off, type_len = struct.unpack_from(order + "III", btf, 4)
    pos, end, type_id, out = hdr_len + type_off, hdr_len + type_off + type_len, 1, []
    while pos < end:
        info = struct.unpack_from(order + "I", btf, pos + 4)[0]
        kind, vlen = info >> 24 & 0x1F, info & 0xFFFF
        if kind in _REFERENCING_KINDS:
            out.append((pos + 8, type_id))
        fixed, per_entry = _EXTRA.get(kind, (0, 0))
        if kind == 3:
            out += [(pos + 12, type_id), (pos + 16, type_id)]  # ARRAY elem and index types
        if kind in _ENTRY_REFERENCE:
            out += [(pos + 12 + i * per_entry + _ENTRY_REFERENCE[kind], type_id) for i in range(vlen)]
        pos += 12 + fixed + per_entry * vlen
        type_id += 1
    return out


def xdp_calling_trace_printk(*licenses: bytes, symbol_tables: int = 1) -> bytes:
    """An `xdp` program that calls bpf_trace_printk (GPL-only) with an 8-byte string on its stack, then one
    `license` section per entry of `licenses` and `symbol_tables` identical symbol tables."""
    code = b"".join(
        struct.pack("<BBhi", *insn)
        for insn in [
            (0x7A, 10, -8, 0),  # *(u64 *)(r10 - 8) = 0
            (0xBF, 10 << 4 | 1, 0, 0),  # r1 = r10
            (0x07, 1, 0, -8),  # r1 += -8
            (0xB7, 2, 0, 8),  # r2 = 8
            (0x85, 0, 0, 6),  # call bpf_trace_printk
            (0xB7, 0, 0, 2),  # r0 = XDP_PASS
            (0x95, 0, 0, 0),  # exit
        ]
    )
    xdp = Sec("xdp", flags=SHF_ALLOC | SHF_EXECINSTR, data=code)
    table, strings = symtab([("prog", 1, 0, len(code), STB_GLOBAL << 4 | STT_FUNC)], strtab_index=2)
    sections = [xdp, strings, *[table] * symbol_tables]
    sections += [Sec("license", flags=SHF_ALLOC, data=text + b"\0") for text in licenses]
    return elf_object(sections)


def programs_sharing_a_call_chain(programs: int, chain: int) -> bytes:
    """One `xdp` section: `programs` entry programs that each call the first of `chain` static subprograms,
    each of which calls the next (every function: a call or nothing, then `exit`)."""
    body, symbols = bytearray(), []
    for p in range(programs):
        symbols.append((f"p{p}", 1, len(body), 16, STB_GLOBAL << 4 | STT_FUNC))
        body += struct.pack("<BBhi", 0x85, 1 << 4, 0, (16 * programs - len(body)) // 8 - 1) + EXIT
    for s in range(chain):
        symbols.insert(s, (f"s{s}", 1, len(body), 16, STT_FUNC))  # locals first, as ELF wants
        body += (struct.pack("<BBhi", 0x85, 1 << 4, 0, 1) if s < chain - 1 else EXIT) + EXIT
    xdp = Sec("xdp", flags=SHF_ALLOC | SHF_EXECINSTR, data=bytes(body))
    return elf_object([xdp, *symtab(symbols, strtab_index=3), Sec("license", data=b"GPL\0")])
