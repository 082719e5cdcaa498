"""`bpfcert pack`: manifests derived from real objects pass `check` (round trip), and say what the code uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bpfcert.checks import Report, check_package
from bpfcert.cli import main
from bpfcert.package import open_package
from bpfcert.results import Status

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_OBJECTS = sorted((ROOT / "examples").glob("*/*.o"))
CORPUS = sorted((ROOT / "tests" / "data" / "objects").glob("*.o"))


def pack_and_check(
    tmp_path: Path, *objects: Path, extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], Report]:
    out = tmp_path / "pkg"
    assert main(["pack", *map(str, objects), "-o", str(out), *extra]) == 0
    manifest = json.loads((out / "bpfpkg.json").read_text())
    with open_package(out) as pkg:
        return manifest, check_package(pkg)


def _has_license(obj: Path) -> bool:
    from bpfcert.elf import BpfObject

    return BpfObject.open(obj).license is not None


@pytest.mark.parametrize("obj", EXAMPLE_OBJECTS + CORPUS, ids=lambda p: p.name)
def test_round_trip(tmp_path: Path, obj: Path) -> None:
    licensed = _has_license(obj)
    manifest, report = pack_and_check(tmp_path, obj, extra=() if licensed else ("--license", "MIT"))
    failed = {r.id for r in report.results if r.level == "MUST" and r.status in (Status.FAIL, Status.ERROR)}
    assert failed == (set() if licensed else {"PKG-LIC-001"}), report.results
    assert manifest["programs"], "every corpus object defines programs"


def test_pack_fills_requires_from_code(tmp_path: Path) -> None:
    manifest, _ = pack_and_check(tmp_path, ROOT / "examples" / "core-tracing" / "exec_trace.bpf.o")
    requires = manifest["requires"]
    assert "bpf_ringbuf_reserve" in requires["helpers"]
    assert "ringbuf" in requires["map_types"]
    assert requires["kernel"] == ">=5.8"
    assert "package-portable" in manifest["conformsTo"]


def test_kfunc_object_requires_kfuncs_and_fails_without(tmp_path: Path) -> None:
    """PKG-REQ-002: a kfunc the code calls must be listed in requires.kfuncs."""
    obj = tmp_path.parent / "kfunc_core.o"
    obj.write_bytes((ROOT / "tests" / "data" / "objects" / "kfunc_core.o").read_bytes())
    manifest, _ = pack_and_check(tmp_path, obj)
    assert manifest["requires"]["kfuncs"], "the corpus kfunc object calls a kfunc"
    manifest["requires"]["kfuncs"] = []
    (tmp_path / "pkg" / "bpfpkg.json").write_text(json.dumps(manifest))
    with open_package(tmp_path / "pkg") as pkg:
        failed = {r.id for r in check_package(pkg).results if r.status is Status.FAIL}
    assert "PKG-REQ-002" in failed


def test_legacy_maps_are_a_warning(tmp_path: Path) -> None:
    """PKG-MAP-002 (SHOULD): legacy map sections are flagged, the package stays conformant."""
    _, report = pack_and_check(tmp_path, ROOT / "tests" / "data" / "objects" / "legacy_maps.o")
    legacy = [r for r in report.results if r.id == "PKG-MAP-002"]
    assert legacy and all(r.status is Status.FAIL and r.level == "SHOULD" for r in legacy)


@pytest.mark.parametrize(
    ("tunables", "passes"),
    [
        ([{"name": "target_pid", "type": "u32"}, {"name": "banner", "type": "char[11]"}], True),
        ([{"name": "target_pid", "type": "s32"}], False),
        ([{"name": "target_pid", "type": "u64"}], False),
        ([{"name": "banner", "type": "char[12]"}], False),
        ([{"name": "banner", "type": "u8"}], False),
    ],
)
def test_tunable_types_against_btf(tmp_path: Path, tunables: list[dict[str, str]], passes: bool) -> None:
    """PKG-SVC-003 on a packed real object: integer signedness and size, and char[N] strings."""
    manifest, _ = pack_and_check(tmp_path, ROOT / "tests" / "data" / "objects" / "multi_prog.o")
    manifest["service"] = {"tunables": tunables}
    manifest["conformsTo"] = ["package-core", "package-service"]
    (tmp_path / "pkg" / "bpfpkg.json").write_text(json.dumps(manifest))
    with open_package(tmp_path / "pkg") as pkg:
        results = [r for r in check_package(pkg).results if r.id == "PKG-SVC-003"]
    assert len(results) == len(tunables)
    assert all(r.status is (Status.PASS if passes else Status.FAIL) for r in results), results
