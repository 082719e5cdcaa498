"""bpfcert.btf: `.BTF` against `bpftool btf dump -j` as the oracle (corpus objects, example objects and
hand-encoded raw BTF covering kinds clang 14 does not emit), the type helpers, `.BTF.ext` contents and
typed errors for malformed bytes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bpfcert.btf import KIND_NAMES, Btf, BtfExt
from bpfcert.elf import BpfObject
from bpfcert.errors import FormatError
from tests import elf_build

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ROOT / "tests" / "data" / "objects"
BTF_OBJECTS = sorted(p for p in OBJECTS.glob("*.o") if p.name != "nobtf.o")
EXAMPLE_OBJECTS = sorted((ROOT / "examples").glob("**/*.o"))
VMLINUX = Path("/sys/kernel/btf/vmlinux")

needs_bpftool = pytest.mark.skipif(
    shutil.which("bpftool") is None, reason="bpftool (the BTF oracle) is not installed"
)


def bpftool_json(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(path), "-j"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout))


def encode_btf(
    types: list[tuple[str, str, int, int, int, bytes]], strings: list[str], order: str = "<"
) -> bytes:
    """Raw BTF: each type is (kind, name, vlen, kind_flag, size_or_type, kind-specific bytes)."""
    table = b"\0"
    offsets = {"": 0}
    for s in strings:
        offsets[s] = len(table)
        table += s.encode() + b"\0"
    body = b"".join(
        struct.pack(
            order + "III", offsets[name], KIND_NAMES.index(kind) << 24 | kflag << 31 | vlen, size_or_type
        )
        + extra
        for kind, name, vlen, kflag, size_or_type, extra in types
    )
    header = struct.pack(order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(table))
    return header + body + table


def synthetic_btf(order: str) -> tuple[bytes, list[str]]:
    """Kinds and flags clang 14 leaves out: ENUM64 (signed and not), signed ENUM, bitfield members with
    kind_flag, union FWD, extern FUNC and VAR, DECL_TAG on a member, FLOAT, TYPE_TAG and a DATASEC."""
    names = [
        "int",
        "u64e",
        "s64e",
        "A",
        "B",
        "senum",
        "M",
        "bits",
        "x",
        "y",
        "fwd_u",
        "ext_fn",
        "p",
        "ext_var",
        "tag",
        "float",
        "user",
        ".kconfig",
    ]
    p = struct.Struct(order + "I").pack
    off = {n: 1 + sum(len(m) + 1 for m in names[:i]) for i, n in enumerate(names)}

    def pack(fmt: str, *values: int) -> bytes:
        return struct.pack(order + fmt, *values)

    types = [
        ("INT", "int", 0, 0, 4, p(1 << 24 | 32)),  # 1: signed int
        (
            "ENUM64",
            "u64e",
            2,
            0,
            8,
            pack("III", off["A"], 0xFFFFFFFF, 0xFFFFFFFF)  # 2
            + pack("III", off["B"], 5, 1),
        ),
        ("ENUM64", "s64e", 1, 1, 8, pack("III", off["A"], 0xFFFFFFFE, 0xFFFFFFFF)),  # 3: value -2
        ("ENUM", "senum", 2, 1, 4, pack("Ii", off["M"], -7) + pack("Ii", off["B"], 3)),  # 4
        (
            "STRUCT",
            "bits",
            2,
            1,
            4,
            pack("III", off["x"], 1, 3 << 24 | 0) + pack("III", off["y"], 1, 5 << 24 | 3),
        ),
        ("FWD", "fwd_u", 0, 1, 0, b""),  # 6
        ("FUNC_PROTO", "", 2, 0, 1, pack("II", off["p"], 1) + pack("II", 0, 0)),  # 7: int (int p, ...)
        ("FUNC", "ext_fn", 2, 0, 7, b""),  # 8: extern
        ("VAR", "ext_var", 0, 0, 1, p(2)),  # 9: extern
        ("DECL_TAG", "tag", 0, 0, 5, pack("i", 1)),  # 10
        ("FLOAT", "float", 0, 0, 4, b""),  # 11
        ("TYPE_TAG", "user", 0, 0, 1, b""),  # 12
        ("DATASEC", ".kconfig", 1, 0, 4, pack("III", 9, 0, 4)),  # 13
    ]
    return encode_btf(types, names, order), names


@needs_bpftool
@pytest.mark.parametrize("path", BTF_OBJECTS + EXAMPLE_OBJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_btf_matches_bpftool(path: Path) -> None:
    obj = BpfObject.open(path)
    if obj.section(".BTF") is None:
        pytest.skip(f"{path.name} has no .BTF section")
    assert obj.btf is not None, obj.btf_error
    assert obj.btf.to_bpftool_json() == bpftool_json(path)


@needs_bpftool
@pytest.mark.slow
@pytest.mark.skipif(not VMLINUX.exists(), reason="the running kernel exposes no /sys/kernel/btf/vmlinux")
def test_kernel_btf_matches_bpftool() -> None:
    """The running kernel's BTF: ~100k types of every kind a kernel build emits."""
    btf = Btf.parse(VMLINUX.read_bytes())
    assert len(btf.types) > 10_000
    assert btf.to_bpftool_json() == bpftool_json(VMLINUX)


@needs_bpftool
@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_synthetic_btf_matches_bpftool(order: str, tmp_path: Path) -> None:
    raw, _ = synthetic_btf(order)
    path = tmp_path / "raw.btf"
    path.write_bytes(raw)
    btf = Btf.parse(raw, "little" if order == "<" else "big")
    assert btf.to_bpftool_json() == bpftool_json(path)


def test_synthetic_btf_decodes_kinds_and_flags() -> None:
    btf = Btf.parse(synthetic_btf("<")[0])
    assert [t.kind for t in btf.types[1:]] == [
        "INT",
        "ENUM64",
        "ENUM64",
        "ENUM",
        "STRUCT",
        "FWD",
        "FUNC_PROTO",
        "FUNC",
        "VAR",
        "DECL_TAG",
        "FLOAT",
        "TYPE_TAG",
        "DATASEC",
    ]
    assert btf.types[2].extra["values"] == [("A", 2**64 - 1), ("B", 1 << 32 | 5)]
    assert btf.types[3].extra["values"] == [("A", -2)]
    assert btf.types[4].extra["values"] == [("M", -7), ("B", 3)]
    assert [(m.name, m.bits_offset, m.bitfield_size) for m in btf.types[5].members] == [
        ("x", 0, 3),
        ("y", 3, 5),
    ]
    assert btf.types[6].extra["fwd_kind"] == "union"
    assert btf.types[7].extra["params"] == [("p", 1), ("", 0)]
    assert (btf.types[8].extra["linkage"], btf.types[9].extra["linkage"]) == ("extern", "extern")
    assert btf.types[10].extra["component_idx"] == 1
    assert btf.types[13].extra["vars"] == [(9, 0, 4)]
    assert Btf.parse(synthetic_btf(">")[0], "big").to_bpftool_json() == btf.to_bpftool_json()


def test_type_helpers_on_corpus_btf() -> None:
    obj = BpfObject.open(OBJECTS / "btf_kinds.o")
    btf = obj.btf
    assert btf is not None
    record = btf.find("record", "STRUCT")
    assert record is not None and btf.size_of(record.id) == record.size == 88
    members = {m.name: m for m in record.members}
    assert btf.resolve(members["hits"].type).name == "unsigned int"  # volatile counter_t -> unsigned int
    assert btf.size_of(members["name"].type) == 8  # char[8]
    assert btf.size_of(members["flags"].type) == 8
    assert btf.resolve(members["user_ptr"].type).kind == "PTR"
    flags = btf.resolve(members["flags"].type)
    assert [(m.name, m.bitfield_size) for m in flags.members[:3]] == [("a", 3), ("b", 5), ("c", 12)]
    assert btf.find("record", "UNION") is None and btf.find("no_such_type") is None
    classify = btf.find("classify", "FUNC")
    assert classify is not None and classify.extra["linkage"] == "static"
    tags = {t.name: t.extra["component_idx"] for t in btf.types if t.kind == "DECL_TAG"}
    assert tags == {"name_field": 11, "arg": 0, "helper_fn": -1, "packed_flags": -1}
    colour = btf.find("colour", "ENUM")
    assert colour is not None and colour.extra["values"] == [("RED", 0xFFFFFFFF), ("GREEN", 0), ("BLUE", 7)]
    with pytest.raises(FormatError, match="has no size"):
        btf.size_of(classify.id)
    with pytest.raises(FormatError, match="out of range"):
        btf.resolve(len(btf.types))


def test_modifier_cycle_is_a_format_error() -> None:
    raw = encode_btf([("TYPEDEF", "a", 0, 0, 2, b""), ("CONST", "", 0, 0, 1, b"")], ["a"])
    with pytest.raises(FormatError, match="cycle"):
        Btf.parse(raw).resolve(1)
    arrays = encode_btf([("ARRAY", "", 0, 0, 0, struct.pack("<III", 1, 1, 2))], [])
    with pytest.raises(FormatError, match="cycle"):
        Btf.parse(arrays).size_of(1)


@pytest.mark.parametrize("path", BTF_OBJECTS, ids=lambda p: p.name)
def test_func_info_names_every_function(path: Path) -> None:
    obj = BpfObject.open(path)
    assert obj.btf is not None and obj.btf_ext is not None
    named = {
        (sec, off, obj.btf.types[type_id].name)
        for sec, records in obj.btf_ext.func_info.items()
        for off, type_id in records
    }
    assert all(
        obj.btf.types[t].kind == "FUNC" for records in obj.btf_ext.func_info.values() for _, t in records
    )
    assert named == {(f.section, f.offset, f.name) for f in obj.programs + obj.subprograms}


@pytest.mark.parametrize("name", ["kfunc_core.o", "kfunc_core_eb.o"])
def test_core_relocations_of_the_core_object(name: str) -> None:
    obj = BpfObject.open(OBJECTS / name)
    assert obj.btf is not None and obj.btf_ext is not None
    relos = obj.btf_ext.core_relos
    assert set(relos) == {"tp_btf/task_newtask", "fentry/do_exit"}
    task = obj.btf.find("task_struct", "STRUCT")
    assert task is not None
    rows = {(sec, r.kind_name, r.access) for sec, rs in relos.items() for r in rs if r.type_id == task.id}
    # BPF_CORE_READ(acquired, pid), ->real_parent, ->tgid; task->pid; bpf_core_field_exists(task->comm)
    assert rows == {
        ("tp_btf/task_newtask", "field_byte_offset", "0:0"),
        ("tp_btf/task_newtask", "field_byte_offset", "0:2"),
        ("tp_btf/task_newtask", "field_byte_offset", "0:1"),
        ("fentry/do_exit", "field_byte_offset", "0:0"),
        ("fentry/do_exit", "field_exists", "0:3"),
    }
    for sec, rs in relos.items():
        section = obj.section(sec)
        assert section is not None
        size = section.size
        assert all(r.insn_off % 8 == 0 and r.insn_off < size for r in rs)


@pytest.mark.parametrize("path", BTF_OBJECTS, ids=lambda p: p.name)
def test_line_info_points_into_the_source(path: Path) -> None:
    obj = BpfObject.open(path)
    assert obj.btf_ext is not None
    source = path.name.removesuffix("_eb.o").removesuffix(".o") + ".bpf.c"
    lines = (OBJECTS / "src" / source).read_text().splitlines()
    records = [r for rs in obj.btf_ext.line_info.values() for r in rs]
    assert records and {r.file_name for r in records} == {f"./src/{source}"}
    for r in records:  # line 0 marks compiler-generated code
        assert r.line_text == (lines[r.line - 1] if r.line else "")
        assert 0 <= r.line <= len(lines) and 0 <= r.col < 1024
    assert set(obj.btf_ext.line_info) == {f.section for f in obj.programs + obj.subprograms}


def test_no_core_relocations_without_core() -> None:
    obj = BpfObject.open(OBJECTS / "multi_prog.o")
    assert obj.btf_ext is not None and obj.btf_ext.core_relos == {}


def _btf_bytes(name: str) -> tuple[bytes, bytes, Btf]:
    obj = BpfObject.open(OBJECTS / name)
    btf, ext = obj.section(".BTF"), obj.section(".BTF.ext")
    assert btf is not None and ext is not None and obj.btf is not None
    return btf.data, ext.data, obj.btf


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ((0, "<H", 0x1234), "bad magic"),
        ((2, "<B", 2), "unsupported version"),
        ((4, "<I", 10), "header length"),
        ((12, "<I", 1 << 20), "type section"),
        ((20, "<I", 1 << 20), "string section"),
        ((24 + 0, "<I", 1 << 20), "string offset"),  # name_off of type 1
        ((24 + 4, "<I", 25 << 24), "unknown kind 25"),  # info of type 1
    ],
)
def test_malformed_btf_raises_format_error(patch: tuple[int, str, int], message: str) -> None:
    data = bytearray(_btf_bytes("multi_prog.o")[0])
    offset, fmt, value = patch
    struct.pack_into(fmt, data, offset, value)
    with pytest.raises(FormatError, match=message):
        Btf.parse(bytes(data))


def test_btf_byte_order_and_truncation_errors() -> None:
    data = _btf_bytes("kfunc_core_eb.o")[0]
    assert (
        Btf.parse(data, "big").to_bpftool_json() == Btf.parse(_btf_bytes("kfunc_core.o")[0]).to_bpftool_json()
    )
    with pytest.raises(FormatError, match="byte order"):
        Btf.parse(data, "little")
    with pytest.raises(FormatError, match="too short"):
        Btf.parse(data[:10], "big")
    with pytest.raises(FormatError, match="lies outside"):
        Btf.parse(data[:-1], "big")


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ((0, "<H", 0), "bad magic"),
        ((4, "<I", 4), "header length"),
        ((8, "<I", 1 << 20), "func_info"),  # func_info_off
        ((24, "<I", 1 << 20), "core_relo"),  # core_relo_off
        ((32, "<I", 3), "record size 3"),  # func_info rec_size
        ((36, "<I", 1 << 24), "string offset"),  # first func_info block's section name
        ((40, "<I", 1 << 20), "records of 8 bytes"),  # first func_info block's record count
    ],
)
def test_malformed_btf_ext_raises_format_error(patch: tuple[int, str, int], message: str) -> None:
    _, ext, btf = _btf_bytes("kfunc_core.o")
    data = bytearray(ext)
    offset, fmt, value = patch
    struct.pack_into(fmt, data, offset, value)
    with pytest.raises(FormatError, match=message):
        BtfExt.parse(bytes(data), btf)


def test_btf_ext_big_endian_matches_little_endian() -> None:
    _, ext_le, btf_le = _btf_bytes("kfunc_core.o")
    _, ext_be, btf_be = _btf_bytes("kfunc_core_eb.o")
    le, be = BtfExt.parse(ext_le, btf_le), BtfExt.parse(ext_be, btf_be, "big")
    assert (le.func_info, le.core_relos) == (be.func_info, be.core_relos)
    assert le.line_info == be.line_info


def test_dangling_type_reference_is_a_format_error() -> None:
    """Every type-id field pointed past the last type: FormatError naming both ids, whatever the kind."""
    data, _, btf = _btf_bytes("multi_prog.o")
    references = elf_build.btf_type_references(data)
    assert {btf.types[t].kind for _, t in references} >= {"PTR", "ARRAY", "STRUCT", "FUNC_PROTO", "VAR", "DATASEC"}
    for offset, type_id in references:
        broken = bytearray(data)
        struct.pack_into("<I", broken, offset, len(btf.types) + 7)
        with pytest.raises(FormatError, match=rf"type {type_id} \(.*\) refers to type {len(btf.types) + 7},"):
            Btf.parse(bytes(broken))


def test_check_of_a_rodata_datasec_with_a_dangling_variable(tmp_path: Path) -> None:
    """A `.rodata` DATASEC entry naming a type id that does not exist (IndexError in the tunables check
    before): `bpfcert check` reports the undecodable .BTF under PKG-PORT-001 and the tunable as missing."""
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "examples" / "core-tracing", package, ignore=shutil.ignore_patterns("src"))
    path = package / "exec_trace.bpf.o"
    obj = BpfObject.open(path)
    assert obj.btf is not None
    rodata = obj.btf.find(".rodata", "DATASEC")
    assert rodata is not None and rodata.extra["vars"]
    btf_section = obj.section(".BTF")
    assert btf_section is not None
    offset = next(o for o, t in elf_build.btf_type_references(btf_section.data) if t == rodata.id)
    data = bytearray(obj.data)
    struct.pack_into("<I", data, btf_section.offset + offset, 99_999)
    path.write_bytes(data)
    manifest = json.loads((package / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = hashlib.sha256(data).hexdigest()
    (package / "bpfpkg.json").write_text(json.dumps(manifest))
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "check", str(package)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    assert re.search(r"FAIL +PKG-PORT-001 .*\(DATASEC '.rodata'\) refers to type 99999", proc.stdout)
    assert re.search(r"FAIL +PKG-SVC-003 .*tunable parent_tgid_filter", proc.stdout)
