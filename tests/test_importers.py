"""Importers: bpfman image contents and eunomia-bpf package.json become conformant bpfcert packages."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

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


def eunomia_package(obj: Path) -> dict[str, object]:
    data = obj.read_bytes()
    return {
        "bpf_object": base64.b64encode(zlib.compress(data)).decode(),
        "bpf_object_size": len(data),
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
