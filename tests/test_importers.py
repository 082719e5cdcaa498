"""Importers: bpfman image contents and eunomia-bpf package.json become conformant bpfcert packages."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bpfcert.checks import check_package
from bpfcert.cli import main
from bpfcert.errors import BpfcertError
from bpfcert.importers.bpfman import import_bpfman
from bpfcert.importers.eunomia import import_eunomia
from bpfcert.package import open_package

ROOT = Path(__file__).resolve().parent.parent
XDP_OBJ = ROOT / "examples" / "xdp-counter-v1" / "xdp_counter.bpf.o"
CORE_OBJ = ROOT / "examples" / "core-tracing" / "exec_trace.bpf.o"


def verdict(pkg_dir: Path) -> str:
    with open_package(pkg_dir) as pkg:
        return check_package(pkg).verdict


def test_bpfman_import_is_conformant(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    code = main(
        ["import", "bpfman", str(XDP_OBJ), "--programs", '{"count_packets":"xdp"}',
         "--maps", '{"proto_counters":"hash"}', "-o", str(out)]
    )  # fmt: skip
    assert code == 0
    manifest = json.loads((out / "bpfpkg.json").read_text())
    assert manifest["x-bpfman"]["io.ebpf.programs"] == {"count_packets": "xdp"}
    assert verdict(out) == "conformant"


@pytest.mark.parametrize(
    ("programs", "maps", "message"),
    [
        ('{"nope":"xdp"}', "{}", "does not define"),
        ('{"count_packets":"kprobe"}', "{}", "makes it 'xdp'"),
        ('{"count_packets":"xdp"}', '{"proto_counters":"per_cpu_array"}', "defines a hash"),
        ("[1]", "{}", "JSON object"),
        ("{not json", "{}", "not JSON"),
    ],
)
def test_bpfman_labels_that_lie_are_refused(programs: str, maps: str, message: str) -> None:
    with pytest.raises(BpfcertError, match=message):
        import_bpfman(str(XDP_OBJ), programs, maps)


def eunomia_object(data: bytes) -> dict[str, object]:
    return {"bpf_object": base64.b64encode(zlib.compress(data)).decode(), "bpf_object_size": len(data)}


def eunomia_package(obj: Path) -> dict[str, object]:
    return {
        **eunomia_object(obj.read_bytes()),
        "eunomia_version": "1.0.0",
        "meta": {
            "bpf_skel": {
                "obj_name": "exec_trace",
                "doc": {"version": "2.1.0", "brief": "exec tracer", "details": "Reports every exec."},
                "progs": [{"name": "trace_exec", "attach": "tp/sched/sched_process_exec", "link": True}],
                "maps": [{"name": "exec_events", "ident": "exec_events"}],
                "data_sections": [
                    {"name": ".rodata", "variables": [{"name": "parent_tgid_filter", "type": "unsigned int",
                                                       "value": 0, "description": "only children of this tgid"}]}
                ],
            },
            "export_types": [
                {"name": "exec_event", "size": 32, "type_id": 1, "members": [
                    {"name": "timestamp_ns", "type": "unsigned long long"}, {"name": "pid", "type": "unsigned int"},
                    {"name": "tgid", "type": "unsigned int"}, {"name": "ppid", "type": "unsigned int"},
                    {"name": "comm", "type": "char[16]"}]}
            ],
        },
    }  # fmt: skip


def test_eunomia_import_is_conformant(tmp_path: Path) -> None:
    src = tmp_path / "package.json"
    src.write_text(json.dumps(eunomia_package(CORE_OBJ)))
    out = tmp_path / "pkg"
    assert main(["import", "eunomia", str(src), "-o", str(out)]) == 0
    manifest = json.loads((out / "bpfpkg.json").read_text())
    assert manifest["version"] == "2.1.0"
    assert manifest["service"]["tunables"][0] == {
        "name": "parent_tgid_filter", "type": "u32", "default": 0, "description": "only children of this tgid"
    }  # fmt: skip
    assert manifest["service"]["exports"][0]["kind"] == "ringbuf"
    assert "package-service" in manifest["conformsTo"]
    assert verdict(out) == "conformant"


def test_eunomia_bad_object_is_refused(tmp_path: Path) -> None:
    pkg = eunomia_package(CORE_OBJ)
    pkg["bpf_object"] = "!!not base64!!"
    src = tmp_path / "package.json"
    src.write_text(json.dumps(pkg))
    with pytest.raises(BpfcertError, match="base64"):
        import_eunomia(str(src))


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> str:
    """Run the CLI in-process: exit 2, one line on stderr, no package written. Returns the line."""
    out = tmp_path / "pkg"
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bpfcert {argv[0]}: error: "), err
    assert not out.exists() and not list(tmp_path.glob(".pkg.*"))
    return err


HOSTILE_JSON = {
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "huge-integer": b'{"a": ' + b"9" * 5000 + b"}",
    "not-utf8": b'{"a": "\xff"}',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_JSON))
def test_hostile_json_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    """Deep nesting, > 4,300-digit integers and non-UTF-8 bytes: one-line refusals, not crashes."""
    src = tmp_path / "in.json"
    src.write_bytes(HOSTILE_JSON[case])
    refused(capsys, tmp_path, "import", "eunomia", str(src))
    refused(capsys, tmp_path, "import", "bpfman", str(XDP_OBJ), "--programs", f"@{src}")


def test_label_file_must_be_regular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    label = ("--programs", "@/dev/zero")
    assert "not a regular file" in refused(capsys, tmp_path, "import", "bpfman", str(XDP_OBJ), *label)
    assert "not a regular file" in refused(capsys, tmp_path, "import", "eunomia", "/dev/zero")


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(pkg: dict[str, Any]) -> None:
        node: Any = pkg
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _drop(path: tuple[str | int, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(pkg: dict[str, Any]) -> None:
        node: Any = pkg
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


VARIABLE = ("meta", "bpf_skel", "data_sections", 0, "variables", 0)
MEMBER = ("meta", "export_types", 0, "members", 0)
MALFORMED_EUNOMIA = {
    "export_types-not-a-list": (_set(("meta", "export_types"), 5), "export_types"),
    "meta-not-an-object": (_set(("meta",), [1]), "meta"),
    "data_sections-not-a-list": (_set(("meta", "bpf_skel", "data_sections"), "x"), "data_sections"),
    "variable-without-name": (_drop((*VARIABLE, "name")), "name"),
    "variable-name-not-a-string": (_set((*VARIABLE, "name"), 7), "name"),
    "member-without-name": (_drop((*MEMBER, "name")), "name"),
    "member-without-type": (_drop((*MEMBER, "type")), "type"),
    "bpf_object-not-a-string": (_set(("bpf_object",), 5), "bpf_object"),
    "bpf_object-not-an-elf": (lambda pkg: pkg.update(eunomia_object(b"hello")), "ELF"),
    "bpf_object-too-large": (lambda pkg: pkg.update(eunomia_object(bytes((64 << 20) + 1))), "64 MiB"),
    "tunable-default-of-wrong-type": (_set((*VARIABLE, "value"), [1, 2]), "variables[0].value must be"),
    "brief-lone-surrogate": (_set(("meta", "bpf_skel", "doc", "brief"), "exec \ud800 tracer"), "lone surrogate"),
    "tunable-default-nan": (_set((*VARIABLE, "value"), float("nan")), "NaN is not JSON"),
    "tunable-default-nested-deep": (_set((*VARIABLE, "value"), json.loads("[" * 500 + "]" * 500)), "value must"),
    "eunomia_version-nested-deep": (_set(("eunomia_version",), json.loads("[" * 500 + "]" * 500)), "version"),
    "tunable-type-not-in-btf": (_set((*VARIABLE, "type"), "unsigned long long"), "PKG-SVC-003"),
    "export-name-not-allowed": (_set(("meta", "export_types", 0, "name"), "Exec Event"), "$.service.exports[0].name"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_EUNOMIA))
def test_eunomia_malformed_package_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    """Wrong types and missing keys are named; what the schema or `check` would refuse is not written."""
    mutate, reason = MALFORMED_EUNOMIA[case]
    pkg = eunomia_package(CORE_OBJ)
    mutate(pkg)
    src = tmp_path / "package.json"
    src.write_text(json.dumps(pkg))
    assert reason in refused(capsys, tmp_path, "import", "eunomia", str(src))


def test_bpfman_import_is_checked_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Like pack, the importer checks the package before writing it: an object whose license section says MIT
    while its code calls GPL-only helpers (PKG-LIC-003) is refused."""
    data = CORE_OBJ.read_bytes()
    assert data.count(b"\0GPL\0") == 1
    obj = tmp_path / "mit.bpf.o"
    obj.write_bytes(data.replace(b"\0GPL\0", b"\0MIT\0"))
    assert "PKG-LIC-003" in refused(capsys, tmp_path, "import", "bpfman", str(obj), "--programs", "{}")
