"""Every static package check, shown passing on the bundled examples and failing on a package that violates it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bpfcert import spec
from bpfcert.checks import check_package
from bpfcert.package import open_package
from bpfcert.results import Status
from conformance.conftest import BPFEB_EXAMPLES, EXAMPLES, patch_section

EXAMPLE_NAMES = sorted(p.parent.name for p in EXAMPLES.glob("*/bpfpkg.json"))
BPFEB_NAMES = sorted(f"bpfeb/{p.parent.name}" for p in BPFEB_EXAMPLES.glob("*/bpfpkg.json"))
M = dict[str, Any]


def run(path: Path, profiles: list[str] | None = None) -> Any:
    with open_package(path) as pkg:
        return check_package(pkg, profiles)


@pytest.mark.parametrize("example", EXAMPLE_NAMES + BPFEB_NAMES)
def test_examples_are_conformant(example: str) -> None:
    report = run(EXAMPLES / example)
    bad = [r for r in report.results if r.status is not Status.PASS and r.status is not Status.SKIP]
    assert not bad, bad
    assert report.verdict == "conformant"


def test_examples_exercise_every_package_requirement() -> None:
    """Between them the examples make every package check pass at least once (so none is vacuous)."""
    passed: set[str] = set()
    for example in EXAMPLE_NAMES:
        report = run(EXAMPLES / example)
        passed |= {r.id for r in report.results if r.status is Status.PASS}
    package_ids = {i for i, r in spec.catalogue().items() if r.profile.startswith("package-")}
    assert package_ids - {"PKG-SIG-001", "PKG-REQ-002", "PKG-MAP-002"} <= passed


def _drop_manifest(m: M, root: Path) -> None:
    (root / "bpfpkg.json").unlink()


def _symlink_escape(m: M, root: Path) -> None:
    art = root / m["artifacts"][0]["path"]
    outside = root.parent / "outside.o"
    shutil.copy(art, outside)
    art.unlink()
    art.symlink_to(outside)


def _artifact_is_fifo(m: M, root: Path) -> None:
    art = root / m["artifacts"][0]["path"]
    art.unlink()
    os.mkfifo(art)


def _garbage_object(m: M, root: Path) -> None:
    (root / m["artifacts"][0]["path"]).write_bytes(b"\x7fELF" + b"\xff" * 60)


def _host_binary(m: M, root: Path) -> None:
    shutil.copy(shutil.which("true") or "/bin/true", root / m["artifacts"][0]["path"])


def _truncated_lddw(m: M, root: Path) -> None:
    """The program's last instruction becomes the first half of a 16-byte lddw: the code no longer decodes."""
    from elftools.elf.elffile import ELFFile

    obj = root / m["artifacts"][0]["path"]
    with obj.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(m["programs"][0]["section"])
        end = sec["sh_offset"] + sec["sh_size"]
    raw = bytearray(obj.read_bytes())
    raw[end - 8] = 0x18  # BPF_LD | BPF_IMM | BPF_DW
    obj.write_bytes(bytes(raw))


def _set(path: str, value: Any) -> Callable[[M, Path], None]:
    """An edit that sets manifest[path] (dotted, with list indices) to value."""

    def edit(m: M, root: Path) -> None:
        *parents, last = path.split(".")
        node: Any = m
        for key in parents:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[int(last) if last.isdigit() else last] = value

    return edit


def _remove(path: str, item: Any) -> Callable[[M, Path], None]:
    def edit(m: M, root: Path) -> None:
        node: Any = m
        for key in path.split("."):
            node = node[int(key)] if key.isdigit() else node[key]
        node.remove(item)

    return edit


def _patch(section: str, data: bytes) -> Callable[[M, Path], None]:
    def edit(m: M, root: Path) -> None:
        patch_section(root / m["artifacts"][0]["path"], section, data)

    return edit


def _rename_license_section(m: M, root: Path) -> None:
    obj = root / m["artifacts"][0]["path"]
    obj.write_bytes(obj.read_bytes().replace(b"license\0", b"licenze\0"))


def _duplicate_program(m: M, root: Path) -> None:
    m["programs"].append(dict(m["programs"][0]))


def _sign_then_tamper(m: M, root: Path) -> None:
    from bpfcert.signing import generate_key, sign_manifest

    private, _public = generate_key()
    m.update(sign_manifest(m, private))
    m["summary"] = "tampered after signing"


def _strip_core_relocations(m: M, root: Path) -> None:
    """Set core_relo_len (bytes 28-31 of the .BTF.ext header) to 0: the same code without its CO-RE records."""
    from elftools.elf.elffile import ELFFile

    obj = root / m["artifacts"][0]["path"]
    with obj.open("rb") as f:
        at = ELFFile(f).get_section_by_name(".BTF.ext")["sh_offset"] + 28
    raw = bytearray(obj.read_bytes())
    raw[at : at + 4] = bytes(4)
    obj.write_bytes(bytes(raw))


# (requirement, example, edit, refresh sha256 after the edit)
VIOLATIONS: list[tuple[str, str, Callable[[M, Path], None], bool]] = [
    ("PKG-MAN-001", "socket-filter", _drop_manifest, False),
    ("PKG-MAN-002", "socket-filter", _set("version", "1.0"), True),
    ("PKG-MAN-002", "socket-filter", _set("artifacts.0.path", "../outside.o"), True),
    ("PKG-MAN-003", "socket-filter", _duplicate_program, True),
    ("PKG-MAN-003", "socket-filter", _set("programs.0.artifact", "missing.o"), True),
    ("PKG-ART-001", "socket-filter", _symlink_escape, True),
    ("PKG-ART-002", "socket-filter", _artifact_is_fifo, False),
    ("PKG-ART-003", "socket-filter", _set("artifacts.0.sha256", "0" * 64), False),
    ("PKG-ELF-001", "socket-filter", _garbage_object, True),
    ("PKG-ELF-001", "socket-filter", _host_binary, True),
    ("PKG-ELF-001", "socket-filter", _truncated_lddw, True),
    ("PKG-ELF-002", "socket-filter", _set("artifacts.0.arch", "bpfeb"), True),
    ("PKG-PRG-001", "socket-filter", _set("programs.0.name", "no_such_function"), True),
    ("PKG-PRG-001", "xdp-counter-v1", _set("programs.0.section", "xdp.frags"), True),
    ("PKG-PRG-002", "socket-filter", _set("programs.0.type", "kprobe"), True),
    ("PKG-PRG-003", "socket-filter", _set("programs", []), True),
    ("PKG-MAP-001", "xdp-counter-v1", _set("maps.0.key_size", 8), True),
    ("PKG-MAP-001", "xdp-counter-v1", _set("maps.0.type", "array"), True),
    ("PKG-MAP-001", "xdp-counter-v1", _set("maps.0.name", "no_such_map"), True),
    ("PKG-LIC-001", "socket-filter", _rename_license_section, True),
    ("PKG-LIC-002", "socket-filter", _set("license", "MIT"), True),
    ("PKG-LIC-003", "core-tracing", _patch("license", b"MIT"), True),
    ("PKG-REQ-001", "socket-filter", _remove("requires.helpers", "bpf_skb_load_bytes_relative"), True),
    ("PKG-REQ-003", "socket-filter", _set("requires.prog_types", []), True),
    ("PKG-REQ-004", "xdp-counter-v1", _remove("requires.map_types", "hash"), True),
    ("PKG-REQ-005", "core-tracing", _set("requires.kernel", ">=4.18"), True),
    ("PKG-LIF-001", "xdp-counter-v1", _set("lifecycle.preserve_maps", ["proto_counters", "gone"]), True),
    ("PKG-SIG-001", "socket-filter", _sign_then_tamper, True),
    ("PKG-PORT-001", "core-tracing", _patch(".BTF", b"\x00\x00"), True),
    ("PKG-PORT-002", "core-tracing", _strip_core_relocations, True),
    ("PKG-SVC-001", "xdp-counter-v1", _set("service.exports.0.map", "no_such_map"), True),
    ("PKG-SVC-001", "core-tracing", _set("service.exports.0.kind", "map"), True),
    (
        "PKG-SVC-002",
        "xdp-counter-v1",
        _set("service.exports.0.record.properties.packets", {"type": "string"}),
        True,
    ),
    ("PKG-SVC-002", "core-tracing", _set("service.exports.0.record.title", "no_such_struct"), True),
    ("PKG-SVC-003", "xdp-counter-v1", _set("service.tunables.0.type", "u64"), True),
    ("PKG-SVC-003", "xdp-counter-v1", _set("service.tunables.0.name", "not_a_rodata_var"), True),
    ("PKG-SVC-003", "xdp-counter-v1", _set("service.tunables.0.default", -1), True),  # a u32 cannot hold -1
    ("PKG-SVC-003", "xdp-counter-v1", _set("service.tunables.0.default", 1 << 32), True),
    (
        "PKG-REQ-006",
        "socket-filter",
        _set("requires.helpers", ["bpf_loop", "bpf_map_lookup_elem", "bpf_skb_load_bytes_relative"]),
        True,
    ),
    ("PKG-REQ-006", "xdp-counter-v1", _set("requires.map_types", ["array", "hash", "ringbuf"]), True),
    ("PKG-REQ-006", "socket-filter", _set("requires.btf", True), True),
    ("PKG-REQ-007", "core-tracing", _set("requires.btf", False), True),
]


@pytest.mark.parametrize(
    ("req_id", "example", "edit", "refresh"),
    VIOLATIONS,
    ids=[f"{v[0]}-{i}" for i, v in enumerate(VIOLATIONS)],
)
def test_check_fails_on_violation(
    make_package: Callable[..., Path],
    req_id: str,
    example: str,
    edit: Callable[[M, Path], None],
    refresh: bool,
) -> None:
    report = run(make_package(example, edit, refresh))
    failed = {r.id for r in report.results if r.status is Status.FAIL}
    assert req_id in failed, [r.to_json() for r in report.results if r.status is not Status.PASS]
    level = spec.requirement(req_id).level
    assert report.verdict == ("nonconformant" if level == "MUST" else "conformant")


def test_every_package_check_is_shown_failing() -> None:
    package_ids = {i for i, r in spec.catalogue().items() if r.profile.startswith("package-")}
    shown = {v[0] for v in VIOLATIONS} | {"PKG-REQ-002", "PKG-MAP-002"}  # those two: tests/test_pack.py
    assert package_ids <= shown


def test_manifest_problems_stop_later_checks(make_package: Callable[..., Path]) -> None:
    report = run(make_package("socket-filter", _set("version", "1.0")))
    judged = {r.id for r in report.results if r.status is not Status.NOT_RUN}
    assert judged <= {"PKG-MAN-001", "PKG-MAN-002"}


def test_profile_selection(make_package: Callable[..., Path]) -> None:
    core = run(EXAMPLES / "socket-filter")
    assert core.profiles == ["package-core"]
    assert not any(r.id.startswith("PKG-PORT") for r in core.results)
    portable = run(EXAMPLES / "socket-filter", ["package-portable"])
    assert {"PKG-PORT-001", "PKG-PORT-002"} <= {r.id for r in portable.results}
    claimed = run(EXAMPLES / "core-tracing")
    assert claimed.profiles == ["package-core", "package-portable", "package-service"]


def test_yaml_manifest_equivalent(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    root = tmp_path / "pkg"
    shutil.copytree(EXAMPLES / "socket-filter", root)
    manifest = json.loads((root / "bpfpkg.json").read_text())
    (root / "bpfpkg.json").unlink()
    (root / "bpfpkg.yaml").write_text(yaml.safe_dump(manifest))
    assert run(root).verdict == "conformant"


def test_core_relocations_only_where_the_code_reads_kernel_structs(make_package: Callable[..., Path]) -> None:
    """PKG-PORT-002: code that reads only its context, packets and maps needs no CO-RE relocations."""
    report = run(make_package("xdp-counter-v1", _set("conformsTo", ["package-core", "package-portable"])))
    (port,) = [r for r in report.results if r.id == "PKG-PORT-002"]
    assert port.status is Status.PASS and "reads no kernel struct" in port.message
    stripped = run(make_package("core-tracing", _strip_core_relocations))
    (port,) = [r for r in stripped.results if r.id == "PKG-PORT-002"]
    assert port.status is Status.FAIL and "helper bpf_probe_read_kernel" in port.message


def test_declared_types_are_not_said_to_be_used(make_package: Callable[..., Path]) -> None:
    """PKG-REQ-003 reports a type only the manifest declares as declared, not as something the code uses."""
    report = run(make_package("socket-filter", _set("programs.0.type", "kprobe")))
    (req,) = [r for r in report.results if r.id == "PKG-REQ-003"]
    assert req.status is Status.FAIL
    assert "uses" not in req.message and "the manifest declares programs of type kprobe" in req.message
    assert req.evidence["declared_by_manifest"] == ["kprobe"] and req.evidence["implied_by_sections"] == []


def test_kernel_floor_names_what_sets_it(make_package: Callable[..., Path]) -> None:
    report = run(make_package("core-tracing", _set("requires.kernel", ">=4.18")))
    (req,) = [r for r in report.results if r.id == "PKG-REQ-005"]
    assert req.status is Status.FAIL
    assert "5.8: helper bpf_ringbuf_reserve" in req.message and "5.8: map type ringbuf" in req.message
    assert (req.evidence["expected"], req.evidence["actual"]) == (">=5.8", ">=4.18")


def test_unused_requirements_are_a_warning(make_package: Callable[..., Path]) -> None:
    """PKG-REQ-006 (SHOULD) names what requires lists but no code uses; one result per list."""
    edit = _set("requires.kfuncs", ["bpf_task_acquire"])
    report = run(make_package("socket-filter", edit))
    rows = {r.evidence.get("path"): r for r in report.results if r.id == "PKG-REQ-006"}
    assert rows["$.requires.kfuncs"].status is Status.FAIL and rows["$.requires.kfuncs"].level == "SHOULD"
    assert rows["$.requires.kfuncs"].evidence["unused"] == ["bpf_task_acquire"]
    assert rows["$.requires.helpers"].status is Status.PASS
    assert report.verdict == "conformant"
