"""bpfcert.elf: inventories of the committed corpus (tests/data/objects), pyelftools as an independent oracle
for the ELF container, embedded-object extraction, and typed errors for malformed files."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from bpfcert.elf import EM_BPF, BpfObject, MapDef, extract_embedded
from bpfcert.errors import BpfcertError, FormatError
from tests import elf_build

OBJECTS = Path(__file__).parent / "data" / "objects"
RDONLY_MMAPABLE = 0x80 | 0x400
MMAPABLE = 0x400


def _map(
    name: str,
    section: str,
    kind: str,
    type_: str,
    key: int | None,
    value: int | None,
    entries: int | None,
    flags: int = 0,
    pinning: str = "none",
) -> tuple[Any, ...]:
    return (name, section, kind, type_, key, value, entries, flags, pinning)


# What each corpus object contains, as libbpf would see it.
INVENTORY: dict[str, dict[str, Any]] = {
    "multi_prog.o": {
        "arch": "bpfel",
        "license": "Dual BSD/GPL",
        "kern_version": None,
        "btf": True,
        "programs": [
            ("xdp_count", "xdp"),
            ("tc_count", "tc"),
            ("trace_execve", "tracepoint/syscalls/sys_enter_execve"),
            ("kprobe_unlink", "kprobe/do_unlinkat"),
        ],
        "subprograms": [("bump", ".text"), ("emit", ".text")],
        "maps": [
            _map(".rodata", ".rodata", "internal", "array", 4, 18, 1, RDONLY_MMAPABLE),
            _map(".data", ".data", "internal", "array", 4, 8, 1, MMAPABLE),
            _map("counters", ".maps", "btf", "percpu_array", 4, 8, 4),
            _map("pid_table", ".maps", "btf", "hash", 4, 16, 1024, 1, "by_name"),
            _map("lru_sizes", ".maps", "btf", "lru_hash", 8, 4, 128),
            _map("events", ".maps", "btf", "ringbuf", None, None, 256 * 1024),
            _map(".bss", ".bss", "internal", "array", 4, 72, 1, MMAPABLE),
            _map(".rodata.str1.1", ".rodata.str1.1", "internal", "array", 4, 12, 1, RDONLY_MMAPABLE),
            _map(".kconfig", ".kconfig", "internal", "array", 4, 5, 1, RDONLY_MMAPABLE),  # int + bool
        ],
        "externs": ["LINUX_KERNEL_VERSION", "bpf_prog_active", "CONFIG_BPF_JIT"],
    },
    "kfunc_core.o": {
        "arch": "bpfel",
        "license": "GPL",
        "kern_version": None,
        "btf": True,
        "programs": [("on_newtask", "tp_btf/task_newtask"), ("on_exit", "fentry/do_exit")],
        "subprograms": [],
        "maps": [_map("parents", ".maps", "btf", "hash", 4, 4, 64)],
        "externs": ["bpf_task_acquire", "bpf_task_release"],
    },
    "legacy_maps.o": {
        "arch": "bpfel",
        "license": "GPL v2",
        "kern_version": 0x050A00,
        "btf": True,
        "programs": [("sock_count", "socket")],
        "subprograms": [],
        "maps": [
            _map("rx_count", "maps", "legacy", "array", 4, 8, 2),
            _map("flows", "maps", "legacy", "percpu_hash", 8, 16, 4096, 1),
            _map("jump_table", "maps/jump_table", "legacy", "prog_array", 4, 4, 8),
        ],
        "externs": [],
    },
    "nobtf.o": {
        "arch": "bpfel",
        "license": "MIT",
        "kern_version": None,
        "btf": False,
        "programs": [("keep_small", "socket"), ("allow_all", "cgroup_skb/egress")],
        "subprograms": [("is_small", ".text")],
        "maps": [_map(".bss", ".bss", "internal", "array", 4, 8, 1, MMAPABLE)],
        "externs": [],
    },
    "btf_kinds.o": {
        "arch": "bpfel",
        "license": "GPL",
        "kern_version": None,
        "btf": True,
        "programs": [("kinds", "raw_tp/sys_enter")],
        "subprograms": [("classify", ".text")],
        "maps": [
            _map("jumps", ".maps", "btf", "prog_array", 4, 4, 2),  # __array(values, ...): 4-byte fds
            _map("records", ".maps", "btf", "array", 4, 88, 1),
            _map("outer", ".maps", "btf", "array_of_maps", 4, 4, 2),
            _map(".bss", ".bss", "internal", "array", 4, 4, 1, MMAPABLE),
        ],
        "externs": [],
    },
}
# The big-endian build of kfunc_core has the same inventory.
INVENTORY["kfunc_core_eb.o"] = {**INVENTORY["kfunc_core.o"], "arch": "bpfeb"}


def inventory(obj: BpfObject) -> dict[str, Any]:
    """The parts of an object the corpus table describes."""
    return {
        "arch": obj.arch,
        "license": obj.license,
        "kern_version": obj.kern_version,
        "btf": obj.btf is not None,
        "programs": [(p.name, p.section) for p in obj.programs],
        "subprograms": [(p.name, p.section) for p in obj.subprograms],
        "maps": [_map_row(m) for m in obj.maps],
        "externs": [s.name for s in obj.externs],
    }


def _map_row(m: MapDef) -> tuple[Any, ...]:
    sizes = (m.key_size, m.value_size, m.max_entries)
    return _map(m.name, m.section, m.kind, m.type, *sizes, m.map_flags, m.pinning)


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_corpus_inventory(name: str) -> None:
    obj = BpfObject.open(OBJECTS / name)
    assert inventory(obj) == INVENTORY[name]
    assert (obj.machine, obj.elfclass, obj.elf_type) == (EM_BPF, 64, "ET_REL")
    assert obj.endianness == ("big" if obj.arch == "bpfeb" else "little")
    assert obj.btf_error is None and obj.btf_ext_error is None


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_functions_are_exact_slices_ending_in_exit(name: str) -> None:
    obj = BpfObject.open(OBJECTS / name)
    for fn in obj.programs + obj.subprograms:
        section = obj.section(fn.section)
        assert section is not None and section.executable
        assert fn.size > 0 and fn.size % 8 == 0
        assert fn.insns == section.data[fn.offset : fn.offset + fn.size]
        assert fn.insns[-8] == 0x95, f"{fn.name} does not end in BPF_EXIT"


def test_prog_array_slot_is_an_abs64_relocation() -> None:
    """`.values = { [1] = &kinds }` in a BTF-defined prog array: a 64-bit absolute relocation in .maps."""
    obj = BpfObject.open(OBJECTS / "btf_kinds.o")
    [reloc] = obj.relocations_for(".maps")
    assert (reloc.type_name, reloc.type, reloc.symbol.name, reloc.offset) == ("R_BPF_64_ABS64", 2, "kinds", 32)


def test_weak_extern_keeps_its_binding() -> None:
    obj = BpfObject.open(OBJECTS / "multi_prog.o")
    assert {s.name: s.bind for s in obj.externs}["CONFIG_BPF_JIT"] == "WEAK"
    assert all(s.section is None and s.section_index == 0 for s in obj.externs)


def test_btf_map_key_and_value_types() -> None:
    obj = BpfObject.open(OBJECTS / "multi_prog.o")
    assert obj.btf is not None
    pid_table = next(m for m in obj.maps if m.name == "pid_table")
    assert pid_table.key_type_id is not None and pid_table.value_type_id is not None
    assert obj.btf.types[pid_table.key_type_id].name == "__u32"
    assert obj.btf.resolve(pid_table.value_type_id).name == "event"
    lru = next(m for m in obj.maps if m.name == "lru_sizes")
    assert (lru.key_type_id, lru.value_type_id) == (None, None)  # sizes given as key_size/value_size


def test_relocations_are_named_and_point_at_symbols() -> None:
    obj = BpfObject.open(OBJECTS / "multi_prog.o")
    xdp = {(r.type_name, r.symbol.name) for r in obj.relocations_for("xdp")}
    assert xdp == {("R_BPF_64_64", "packets_seen"), ("R_BPF_64_64", "drops"), ("R_BPF_64_32", "bump")}
    execve_section = "tracepoint/syscalls/sys_enter_execve"
    execve = {(r.type_name, r.symbol.name) for r in obj.relocations_for(execve_section)}
    assert {
        ("R_BPF_64_64", "LINUX_KERNEL_VERSION"),
        ("R_BPF_64_64", "bpf_prog_active"),
        ("R_BPF_64_64", "pid_table"),
        ("R_BPF_64_32", ".text"),
    } <= execve
    assert {r.type_name for r in obj.relocations_for(".BTF")} == {"R_BPF_64_ABS32", "R_BPF_64_NODYLD32"}
    for r in obj.relocations:
        section = obj.section(r.section)
        assert section is not None and r.offset < section.size


@pytest.mark.parametrize("name", sorted(INVENTORY))
def test_container_matches_pyelftools(name: str) -> None:
    """Sections, symbols and relocations agree with pyelftools, an independent ELF reader."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    obj = BpfObject.open(OBJECTS / name)
    with open(OBJECTS / name, "rb") as f:
        elf = ELFFile(f)
        assert [(s.name, s.offset, s.size, s.flags) for s in obj.sections] == [
            (s.name, s["sh_offset"], s["sh_size"], s["sh_flags"]) for s in elf.iter_sections()
        ]
        symtab = elf.get_section_by_name(".symtab")
        theirs = [
            (s.name, s["st_value"], s["st_size"], s["st_info"]["bind"], s["st_info"]["type"])
            for s in symtab.iter_symbols()
        ]
        ours = [(s.name, s.value, s.size, "STB_" + s.bind, "STT_" + s.type) for s in obj.symbols]
        # pyelftools leaves STT_SECTION symbols nameless; we name them after their section.
        assert [o if o[4] != "STT_SECTION" else ("", *o[1:]) for o in ours] == theirs
        relocs = [
            (elf.get_section(s["sh_info"]).name, r["r_offset"], r["r_info_type"], r["r_info_sym"])
            for s in elf.iter_sections()
            if isinstance(s, RelocationSection)
            for r in s.iter_relocations()
        ]
        assert [(r.section, r.offset, r.type, obj.symbols.index(r.symbol)) for r in obj.relocations] == relocs


def test_zero_size_function_extends_to_next_symbol() -> None:
    """A FUNC symbol with st_size 0 runs to the next function in its section (or the section's end)."""
    path = OBJECTS / "multi_prog.o"
    original = BpfObject.open(path)
    data = bytearray(original.data)
    symtab = next(s for s in original.sections if s.type == "SHT_SYMTAB")
    index = next(i for i, s in enumerate(original.symbols) if s.name == "bump")
    struct.pack_into("<Q", data, symtab.offset + index * 24 + 16, 0)  # st_size of `bump`
    patched = BpfObject.from_bytes(bytes(data))
    before = {p.name: p for p in original.subprograms}
    after = {p.name: p for p in patched.subprograms}
    assert after["bump"].size == before["emit"].offset - before["bump"].offset
    assert after["emit"] == before["emit"]


def elf32_object(order: str) -> bytes:
    """A hand-assembled ELF32 BPF object: an `xdp` section with one global function (r0 = 2; call 1;
    exit), a relocation of its call against an undefined `helper` symbol, and a license."""
    insns = struct.pack(order + "BBhi", 0xB7, 0, 0, 2) + struct.pack(order + "BBhi", 0x85, 0, 0, 1)
    insns += struct.pack(order + "BBhi", 0x95, 0, 0, 0)
    strtab = b"\0prog\0helper\0"
    shstrtab = b"\0xdp\0.relxdp\0.symtab\0.strtab\0.shstrtab\0license\0"
    symtab = bytes(16) + struct.pack(order + "IIIBBH", 1, 0, 24, 0x12, 0, 1)  # prog: GLOBAL FUNC in xdp
    symtab += struct.pack(order + "IIIBBH", 6, 0, 0, 0x10, 0, 0)  # helper: GLOBAL NOTYPE, undefined
    rel = struct.pack(order + "II", 8, 2 << 8 | 10)  # R_BPF_64_32 against symbol 2 at insn 1
    license_ = b"GPL\0"
    # (name offset in shstrtab, type, flags, data, link, info, entsize)
    sections = [(1, 1, 0x6, insns, 0, 0, 0), (5, 9, 0, rel, 3, 1, 8), (13, 2, 0, symtab, 4, 2, 16),
                (21, 3, 0, strtab, 0, 0, 0), (29, 3, 0, shstrtab, 0, 0, 0), (39, 1, 0x3, license_, 0, 0, 0)]
    body = b""
    headers = bytes(40)
    for name, sh_type, flags, data, link, info, entsize in sections:
        offset = 52 + len(body)
        body += data
        headers += struct.pack(order + "10I", name, sh_type, flags, 0, offset, len(data), link, info, 1, entsize)
    ident = b"\x7fELF" + bytes([1, 1 if order == "<" else 2, 1]) + bytes(9)
    header = ident + struct.pack(order + "HHIIIIIHHHHHH", 1, EM_BPF, 1, 0, 0, 52 + len(body), 0, 52, 0, 0, 40,
                                 len(sections) + 1, 5)
    return header + body + headers


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_elf32_objects(order: str) -> None:
    obj = BpfObject.from_bytes(elf32_object(order))
    assert (obj.elfclass, obj.arch, obj.license, obj.btf) == (32, "bpfel" if order == "<" else "bpfeb", "GPL", None)
    [prog] = obj.programs
    assert (prog.name, prog.section, prog.offset, prog.size, prog.is_subprogram) == ("prog", "xdp", 0, 24, False)
    [reloc] = obj.relocations
    assert (reloc.section, reloc.offset, reloc.type_name, reloc.symbol.name) == ("xdp", 8, "R_BPF_64_32", "helper")
    assert [s.name for s in obj.externs] == ["helper"]
    assert [s.name for s in obj.sections] == ["", "xdp", ".relxdp", ".symtab", ".strtab", ".shstrtab", "license"]


def test_extract_embedded_finds_both_objects() -> None:
    host = (OBJECTS / "embed_host").read_bytes()
    host_obj = BpfObject.from_bytes(host)
    assert host_obj.machine != EM_BPF and host_obj.programs == [] and host_obj.maps == []
    expected = [(OBJECTS / "multi_prog.o").read_bytes(), (OBJECTS / "nobtf.o").read_bytes()]
    assert extract_embedded(host) == expected


def test_extract_embedded_ignores_non_bpf_and_broken_candidates() -> None:
    bpf = (OBJECTS / "nobtf.o").read_bytes()
    assert extract_embedded(Path(sys.executable).read_bytes()) == []
    assert extract_embedded(b"junk\x7fELF\x02\x01" + bytes(100)) == []
    truncated = bpf[: len(bpf) - 10]
    assert extract_embedded(b"pad" + truncated + b"tail") == []
    assert extract_embedded(b"pad" + bpf + b"\x7fELF" + bpf) == [bpf, bpf]


def test_open_reports_unreadable_and_non_elf_files(tmp_path: Path) -> None:
    with pytest.raises(BpfcertError, match="cannot read"):
        BpfObject.open(tmp_path / "missing.o")
    (tmp_path / "text.o").write_text("not an object\n" * 10)
    with pytest.raises(FormatError, match="not an ELF file"):
        BpfObject.open(tmp_path / "text.o")


@pytest.mark.parametrize("length", [0, 4, 16, 63, 500, 5000])
def test_truncated_objects_raise_format_error(length: int) -> None:
    with pytest.raises(FormatError):
        BpfObject.from_bytes((OBJECTS / "multi_prog.o").read_bytes()[:length])


def _patched(name: str, section_name: str, field_offset: int, fmt: str, value: int) -> bytes:
    """The object with one field of `section_name`'s section header overwritten."""
    obj = BpfObject.open(OBJECTS / name)
    data = bytearray(obj.data)
    shoff = struct.unpack_from("<Q", data, 40)[0]
    index = next(s.index for s in obj.sections if s.name == section_name)
    struct.pack_into(fmt, data, shoff + index * 64 + field_offset, value)
    return bytes(data)


def test_broken_btf_is_reported_not_raised() -> None:
    """A .BTF that does not decode leaves the rest of the object readable, with the reason in btf_error."""
    obj = BpfObject.open(OBJECTS / "kfunc_core.o")
    btf = obj.section(".BTF")
    assert btf is not None
    broken = bytearray(obj.data)
    broken[btf.offset : btf.offset + 2] = b"\0\0"
    # The map definitions need BTF: without it, .maps entries are listed with an unknown type.
    parsed = BpfObject.from_bytes(bytes(broken))
    assert parsed.btf is None and parsed.btf_error is not None and "bad magic" in parsed.btf_error
    assert parsed.btf_ext is None and parsed.btf_ext_error is not None
    assert [(m.name, m.type) for m in parsed.maps] == [("parents", "unknown")]
    assert [p.name for p in parsed.programs] == ["on_newtask", "on_exit"]


@pytest.mark.skipif(not (shutil.which("clang") and shutil.which("gcc")), reason="rebuild needs clang and gcc")
def test_rebuilt_corpus_has_the_committed_inventories(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("corpus_build", OBJECTS / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.build(tmp_path)
    for name, expected in INVENTORY.items():
        assert inventory(BpfObject.open(tmp_path / name)) == expected, name
    assert len(extract_embedded((tmp_path / "embed_host").read_bytes())) == 2


# Hostile objects: the reader's cost stays near-linear in the file size, and ambiguous objects fail.


def run_check(package: Path, *options: str) -> tuple[int, str, float, int]:
    """`bpfcert check PACKAGE [OPTIONS]` in a child process: exit code, stdout, CPU seconds and the child's own peak RSS
    in MB (os.wait4 gives that child's rusage, unlike getrusage(RUSAGE_CHILDREN), which keeps the maximum of
    every child this test process ever waited for). CPU rather than wall time, as CI machines are shared.
    Address space capped at 4 GB so a regression fails the test rather than the machine."""

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bpfcert", "check", str(package), *options],
            stdout=out,
            stderr=err,
            preexec_fn=cap_memory,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    assert "Traceback" not in stderr and "Error" not in stderr, stderr
    return proc.returncode, stdout, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024


def test_check_of_40000_zero_size_functions_is_fast(tmp_path: Path) -> None:
    """Each zero-size function ends where the next begins: found by sorting once, not by a scan of every
    symbol per symbol (> 50 s before). Then 40,000 entry programs to analyse and judge: ~0.8 s of CPU with
    bytecode compiled, start-up included (target 1 s; 1.7-2.1 s before per-program costs were cut). The
    bound leaves room for shared CI machines."""
    data = elf_build.many_zero_size_functions(40_000)
    assert len(data) > 1_500_000
    code, out, seconds, _ = run_check(elf_build.write_package(tmp_path / "pkg", data))
    print(f"check of 40,000 zero-size functions: {seconds:.2f} s of CPU")
    assert code == 1 and "f39999" in out
    assert seconds < 3


def test_a_symbol_in_a_section_that_does_not_exist_is_refused() -> None:
    """Symbols take their section's name from a table built once; an index outside it is a FormatError."""
    xdp = elf_build.Sec("xdp", flags=elf_build.SHF_ALLOC | elf_build.SHF_EXECINSTR, data=elf_build.EXIT)
    for shndx in (4, 99):  # sections 1-4: xdp, .symtab, .strtab, .shstrtab
        symbols = [("f0", 1, 0, 8, elf_build.STB_GLOBAL << 4 | elf_build.STT_FUNC), ("f1", shndx, 0, 8, 0)]
        data = elf_build.elf_object([xdp, *elf_build.symtab(symbols, strtab_index=3)])
        if shndx == 4:
            assert [s.section for s in BpfObject.from_bytes(data).symbols[1:]] == ["xdp", ".shstrtab"]
        else:
            with pytest.raises(FormatError, match="<bytes>: symbol f1 refers to section 99, which does not exist"):
                BpfObject.from_bytes(data)


def test_declared_programs_are_found_by_index(tmp_path: Path) -> None:
    """PKG-PRG-001 looks each declared program up in an index of the object's functions built once, not by a
    scan of all 40,000 functions per declared program (4,000 declared: ~9 s of CPU before)."""
    data = elf_build.many_zero_size_functions(40_000)
    package = elf_build.write_package(tmp_path / "pkg", data)
    manifest = json.loads((package / "bpfpkg.json").read_text())
    manifest["programs"] = [
        {"name": f"f{i}", "artifact": "prog.bpf.o", "section": "xdp", "type": "xdp"} for i in range(0, 40_000, 10)
    ]
    (package / "bpfpkg.json").write_text(json.dumps(manifest))
    code, out, seconds, _ = run_check(package, "--format", "json")
    print(f"check of 40,000 functions, 4,000 of them declared: {seconds:.2f} s of CPU")
    rows = [(r["id"], r["status"], r["message"]) for r in json.loads(out)["results"] if r["id"].startswith("PKG-PRG")]
    assert code == 1
    found = {m for i, s, m in rows if (i, s) == ("PKG-PRG-001", "pass")}
    assert found == {f"program f{i} found in section xdp" for i in range(0, 40_000, 10)}
    assert ("PKG-PRG-003", "pass", "program f39990 is declared") in rows
    assert sum((i, s) == ("PKG-PRG-003", "fail") for i, s, _ in rows) == 36_000
    assert seconds < 4


def test_check_of_16000_overlapping_sections_stays_small(tmp_path: Path) -> None:
    """16,000 section headers that all cover the whole file: the gABI says no byte belongs to two sections,
    so PKG-ELF-001 fails with the pair, found after sorting once, before any section's bytes are copied
    (11 GB before)."""
    data = elf_build.overlapping_sections(16_000)
    code, out, seconds, rss_mb = run_check(elf_build.write_package(tmp_path / "pkg", data))
    print(f"check of 16,000 overlapping sections: {rss_mb} MB peak RSS, {seconds:.2f} s of CPU")
    assert code == 1
    assert re.search(r"FAIL +PKG-ELF-001 .*sections 1 \[0, \d+\) and 2 \[0, \d+\) overlap", out), out
    assert rss_mb <= 200


def libbpf_open_and_load(path: Path) -> tuple[bool, bool]:
    """(libbpf opened the object, the kernel then loaded it), through libbpf.so.1 itself."""
    import ctypes

    libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
    libbpf.bpf_object__open_file.restype = ctypes.c_void_p
    libbpf.bpf_object__load.argtypes = [ctypes.c_void_p]
    libbpf.bpf_object__close.argtypes = [ctypes.c_void_p]
    obj = libbpf.bpf_object__open_file(str(path).encode(), None)
    if not obj:
        return False, False
    try:
        return True, libbpf.bpf_object__load(obj) == 0
    finally:
        libbpf.bpf_object__close(obj)


def _has_libbpf_and_bpf() -> bool:
    import ctypes.util

    return os.geteuid() == 0 and ctypes.util.find_library("bpf") is not None


needs_libbpf = pytest.mark.skipif(not _has_libbpf_and_bpf(), reason="needs libbpf.so.1 and root for bpf()")


@needs_libbpf
@pytest.mark.parametrize(
    ("licenses", "kernel_loads"),
    [((b"GPL",), True), ((b"MIT",), False), ((b"GPL", b"MIT"), False), ((b"MIT", b"GPL"), True)],
)
def test_license_sections_as_libbpf_reads_them(tmp_path: Path, licenses: tuple[bytes, ...], kernel_loads: bool) -> None:
    """libbpf keeps the LAST `license` section: with "GPL" then "MIT" the kernel refuses the GPL-only
    bpf_trace_printk, with "MIT" then "GPL" it loads it. A reader taking the first (as ours did) gets both
    wrong; two license sections are ambiguous, so PKG-ELF-001 fails and names them."""
    data = elf_build.xdp_calling_trace_printk(*licenses)
    path = tmp_path / "prog.o"
    path.write_bytes(data)
    assert libbpf_open_and_load(path) == (True, kernel_loads)
    if len(licenses) == 1:
        assert BpfObject.from_bytes(data).license == licenses[0].decode()
        return
    with pytest.raises(FormatError, match="sections 4 and 5 are both named 'license'; libbpf reads only the last"):
        BpfObject.from_bytes(data)
    code, out, _, _ = run_check(elf_build.write_package(tmp_path / "pkg", data))
    assert code == 1 and re.search(r"FAIL +PKG-ELF-001 +MUST +prog.bpf.o: .*both named 'license'", out), out


@needs_libbpf
def test_two_symbol_tables_are_refused_like_libbpf(tmp_path: Path) -> None:
    """libbpf refuses an object with two SHT_SYMTAB sections ("multiple symbol tables"); so does the reader."""
    path = tmp_path / "prog.o"
    path.write_bytes(elf_build.xdp_calling_trace_printk(b"GPL", symbol_tables=2))
    assert libbpf_open_and_load(path) == (False, False)
    with pytest.raises(FormatError, match="sections 3 and 4 are both symbol tables; libbpf refuses"):
        BpfObject.open(path)
    path.write_bytes(elf_build.xdp_calling_trace_printk(b"GPL"))
    assert libbpf_open_and_load(path) == (True, True)
    assert [p.name for p in BpfObject.open(path).programs] == ["prog"]


@pytest.mark.parametrize("name", [".maps", "version", ".BTF", "xdp"])
def test_repeated_section_names_are_refused(name: str) -> None:
    """A second section with a name loaders look up (libbpf keeps the last `version`, `.maps`, `.BTF`...) or
    that programs and relocations are known by: refused, with both indices."""
    sections = [elf_build.Sec(name, data=bytes(8)), elf_build.Sec("other"), elf_build.Sec(name, data=bytes(8))]
    with pytest.raises(FormatError, match=f"sections 1 and 3 are both named {name!r}"):
        BpfObject.from_bytes(elf_build.elf_object(sections))


def test_call_graphs_are_walked_within_the_kernel_limit() -> None:
    """Each program's call graph is walked once per program: a program reaching more than the 256 functions
    the verifier accepts (BPF_MAX_SUBPROGS) stops the walk with the reason (2,000 programs on one 2,000-long
    chain took 8.6 s of CPU before, quadratic in the size); calls resolve by bisection, not a scan."""
    from bpfcert.usage import analyze

    within = BpfObject.from_bytes(elf_build.programs_sharing_a_call_chain(200, 255))
    usage = analyze(within)
    assert len(usage.programs) == 200 and all(len(p.calls) == 255 for p in usage.programs)
    beyond = BpfObject.from_bytes(elf_build.programs_sharing_a_call_chain(2_000, 2_000))
    start = time.process_time()
    with pytest.raises(FormatError, match="program p0 calls more than 255 functions; the kernel refuses it"):
        analyze(beyond)
    assert time.process_time() - start < 1


def test_shared_callees_are_summarised_once() -> None:
    """What a function reaches (and the helpers, maps... used there) is summarised once and shared by all its
    callers: 8,000 programs calling one 255-long chain cost ~0.2 s of CPU, not a walk of 256 functions each
    (~2 s before)."""
    from bpfcert.usage import analyze

    obj = BpfObject.from_bytes(elf_build.programs_sharing_a_call_chain(8_000, 255))
    start = time.process_time()
    usage = analyze(obj)
    seconds = time.process_time() - start
    print(f"usage of 8,000 programs sharing a 255-function chain: {seconds:.2f} s of CPU")
    chain = {f"s{i}" for i in range(255)}
    assert len(usage.programs) == 8_000
    assert all(p.calls == chain and p.insn_count == 2 * 256 for p in usage.programs)
    assert seconds < 1
