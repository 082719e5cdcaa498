"""Hostile packages through `bpfcert check`, end to end: the archive escape of CVE-2025-4517's kind, links in
directory packages, and manifests that used to crash the checker (huge integers, lone surrogates, deep nesting).

Each must give a verdict or a one-line error with a defined exit code, never a traceback, and never write
outside the private extraction directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bpfcert.checks import check_package
from bpfcert.package import ARCHIVE_MAX_DEPTH, open_package
from bpfcert.results import Status
from tests.archive_build import add_entry, add_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "xdp-counter-v1"  # a conformant package
SIGNATURE = {"algorithm": "ed25519", "public_key": "A" * 43 + "=", "value": "B" * 86 + "=="}


def run_check(package: Path, tmpdir: Path | None = None) -> tuple[int, dict[str, Any], str]:
    """(exit code, JSON report or {}, stderr) of `bpfcert check --format json PACKAGE`."""
    env = dict(os.environ)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "check", "--format", "json", str(package)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    report = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, report, proc.stderr


def failed(report: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in report.get("results", []):
        if r["status"] == "fail":
            out.setdefault(r["id"], []).append(r["message"])
    return out




def add_example(tar: tarfile.TarFile) -> None:
    for path in sorted(EXAMPLE.iterdir()):
        if path.is_file():
            add_file(tar, path.name, path.read_bytes())


def build_realpath_escape(archive: Path, climb: int, planted: str) -> None:
    """The long-path realpath escape (CVE-2025-4517): 16 nested directories of 247-character names reached
    through one-letter links a -> ddd..., b -> ddd... (so the real path passes PATH_MAX while the link path stays
    short); a link at the bottom climbs back 16 levels; `escape` goes through it and then `climb` levels further
    up. `realpath` stops resolving where the path passes PATH_MAX and normalises the rest textually, so it sees
    `escape` inside the extraction directory while the kernel follows it out; `escape/PLANTED` is then written
    there."""
    long = "d" * 247
    letters = "abcdefghijklmnop"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        add_example(tar)
        deep = ""
        for letter in letters:
            add_entry(tar, deep + long, tarfile.DIRTYPE)
            add_entry(tar, deep + letter, tarfile.SYMTYPE, long)
            deep += long + "/"
        pivot = "/".join(letters) + "/" + "l" * 254
        add_entry(tar, pivot, tarfile.SYMTYPE, "../" * len(letters))
        add_entry(tar, "escape", tarfile.SYMTYPE, pivot + "/" + "../" * climb + "outside")
        add_file(tar, f"escape/{planted}", b"planted by the archive\n")


def test_long_path_realpath_escape_writes_nothing_outside(tmp_path: Path) -> None:
    """Before our own extraction this archive planted tmp_path/outside/planted and was reported conformant
    (exit 0) on Python 3.11.7 with tarfile's data filter; now every link is refused before anything is written."""
    extraction_parent = tmp_path / "tmp"
    extraction_parent.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "escape.tar.gz"
    # from tmp/bpfcert-pkg-XXXX, two levels up is tmp_path
    build_realpath_escape(archive, climb=2, planted="planted")
    code, report, stderr = run_check(archive, extraction_parent)
    assert list(outside.iterdir()) == [], "the archive wrote outside its extraction directory"
    assert list(extraction_parent.iterdir()) == [], "the extraction directory outlived the check"
    assert "Traceback" not in stderr
    assert code == 1 and report["verdict"] == "nonconformant"
    refused = failed(report)["PKG-ART-001"]
    assert any("'escape'" in m and "symbolic link" in m for m in refused), refused
    assert any("'escape/planted'" in m for m in refused), refused
    # the regular members are still checked
    assert "PKG-ELF-001" not in failed(report)
    assert len(report["inventory"]["programs"]) == 1


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ([("sym", tarfile.SYMTYPE, "prog.o")], "symbolic link"),
        ([("hard", tarfile.LNKTYPE, "bpfpkg.json")], "hard link"),
        ([("null", tarfile.CHRTYPE, "")], "device"),
        ([("disk", tarfile.BLKTYPE, "")], "device"),
        ([("pipe", tarfile.FIFOTYPE, "")], "FIFO"),
        ([("/abs", tarfile.REGTYPE, "")], "absolute"),
        ([("a/../../up", tarfile.REGTYPE, "")], "'..'"),
        ([("x" * 256, tarfile.REGTYPE, "")], "255 bytes"),
        ([("/".join(["d"] * 2000) + "/f", tarfile.REGTYPE, "")], f"{ARCHIVE_MAX_DEPTH} levels"),
        ([("name\udcff", tarfile.REGTYPE, "")], "not UTF-8"),
    ],
    ids=["symlink", "hardlink", "chardev", "blockdev", "fifo", "absolute", "dotdot", "long-name", "deep", "non-utf8"],
)
def test_refused_archive_members(tmp_path: Path, members: list[tuple[str, bytes, str]], reason: str) -> None:
    archive = tmp_path / "hostile.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        add_example(tar)
        for name, kind, link in members:
            if kind == tarfile.REGTYPE:
                add_file(tar, name, b"x")
            else:
                add_entry(tar, name, kind, link)
    with open_package(archive) as pkg:
        problems = [(r.id, r.status, r.message) for r in pkg.problems]
        assert len(problems) == 1 and problems[0][:2] == ("PKG-ART-001", Status.FAIL), problems
        assert reason in problems[0][2]
        assert "\n" not in problems[0][2]
        assert sorted(p.name for p in pkg.root.iterdir()) == sorted(p.name for p in EXAMPLE.iterdir() if p.is_file())
        report = check_package(pkg)
    assert report.verdict == "nonconformant"
    assert [r.id for r in report.results if r.status is Status.FAIL] == ["PKG-ART-001"]


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    """tar lets a later member replace an earlier one; which artifact is meant is ambiguous, so neither is
    extracted ('./x' and 'x' are the same name)."""
    archive = tmp_path / "dup.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_example(tar)
        add_file(tar, "./xdp_counter.bpf.o", b"not the object")
    with open_package(archive) as pkg:
        assert [(r.id, r.evidence["member"]) for r in pkg.problems] == [
            ("PKG-ART-001", "xdp_counter.bpf.o"),
            ("PKG-ART-001", "./xdp_counter.bpf.o"),
        ]
        assert "more than once" in pkg.problems[0].message
        assert not (pkg.root / "xdp_counter.bpf.o").exists()


def test_members_under_a_refused_link_are_refused(tmp_path: Path) -> None:
    """`lib` -> '/' is refused, and so is `lib/prog.o`, which was meant to be written through it."""
    archive = tmp_path / "under.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_example(tar)
        add_entry(tar, "lib", tarfile.SYMTYPE, "/")
        add_file(tar, "lib/prog.o", b"x")
    with open_package(archive) as pkg:
        assert [r.evidence["member"] for r in pkg.problems] == ["lib", "lib/prog.o"]
        assert "under the refused member 'lib'" in pkg.problems[1].message
        assert not (pkg.root / "lib").exists()


def test_file_and_directory_of_the_same_name(tmp_path: Path) -> None:
    """'a' as a file and then 'a/b' below it: the second cannot be written and is reported, not a crash."""
    archive = tmp_path / "clash.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_example(tar)
        add_file(tar, "a", b"file")
        add_file(tar, "a/b", b"below a file")
    with open_package(archive) as pkg:
        assert [(r.id, r.evidence["member"]) for r in pkg.problems] == [("PKG-ART-001", "a/b")]
        assert (pkg.root / "a").read_bytes() == b"file"


def test_oversized_member_is_not_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = max(p.stat().st_size for p in EXAMPLE.iterdir() if p.is_file())
    monkeypatch.setattr("bpfcert.package.ARCHIVE_MEMBER_MAX_BYTES", limit)
    archive = tmp_path / "big.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_example(tar)
        add_file(tar, "big.bin", bytes(limit + 1))
    with open_package(archive) as pkg:
        assert [(r.id, r.evidence["member"]) for r in pkg.problems] == [("PKG-ART-002", "big.bin")]
        assert not (pkg.root / "big.bin").exists()


# -- links in directory packages -------------------------------------------------------------------------------


def copy_example(dest: Path) -> Path:
    shutil.copytree(EXAMPLE, dest)
    return dest


def test_manifest_symlink_is_not_read(tmp_path: Path) -> None:
    """bpfpkg.json -> a manifest outside the package: refused (PKG-MAN-001), its content never read."""
    root = copy_example(tmp_path / "pkg")
    outside = tmp_path / "elsewhere.json"
    outside.write_text((root / "bpfpkg.json").read_text())
    (root / "bpfpkg.json").unlink()
    (root / "bpfpkg.json").symlink_to(outside)
    code, report, stderr = run_check(root)
    assert code == 1 and "Traceback" not in stderr
    assert report["package"]["name"] is None, "the linked manifest was read"
    [message] = failed(report)["PKG-MAN-001"]
    assert "bpfpkg.json is a symbolic link" in message


def test_manifest_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "pkg")
    (root / "bpfpkg.json").unlink()
    os.mkfifo(root / "bpfpkg.json")
    with open_package(root) as pkg:
        assert pkg.manifest is None
        assert "not a regular file" in pkg.problems[0].message


@pytest.mark.parametrize("link", ["file", "directory", "in-package file"])
def test_artifact_through_a_symlink_is_refused(tmp_path: Path, link: str) -> None:
    """A schema-valid artifact path whose final or an intermediate component is a link fails PKG-ART-001, also
    when the link stays inside the package: a package has no use for links."""
    root = copy_example(tmp_path / "pkg")
    manifest = json.loads((root / "bpfpkg.json").read_text())
    obj = root / "xdp_counter.bpf.o"
    if link == "file":
        shutil.move(obj, tmp_path / "outside.o")
        obj.symlink_to(tmp_path / "outside.o")
    elif link == "directory":
        (tmp_path / "outside").mkdir()
        shutil.move(obj, tmp_path / "outside" / obj.name)
        (root / "lib").symlink_to(tmp_path / "outside")
        rel = f"lib/{obj.name}"
        manifest["artifacts"][0]["path"] = manifest["programs"][0]["artifact"] = rel
        manifest["maps"][0]["artifact"] = rel
        (root / "bpfpkg.json").write_text(json.dumps(manifest))
    else:
        shutil.move(obj, root / "real.o")
        obj.symlink_to("real.o")
    code, report, stderr = run_check(root)
    assert code == 1 and "Traceback" not in stderr
    [message] = failed(report)["PKG-ART-001"]
    assert "symbolic link" in message


# -- manifests that used to crash ------------------------------------------------------------------------------


def example_manifest() -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((EXAMPLE / "bpfpkg.json").read_text())
    return manifest


def json_with(extra: str) -> str:
    """The example's manifest as JSON text with `extra` (raw JSON text of members) appended."""
    return json.dumps(example_manifest() | {"signature": SIGNATURE})[:-1] + ", " + extra + "}"


def yaml_with(extra: str) -> str:
    import yaml

    return yaml.safe_dump(example_manifest() | {"signature": SIGNATURE}) + extra + "\n"


DEEP_BLOCK = "x-deep:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(990)) + " " * 991 + "b: 1"


@pytest.mark.parametrize(
    ("name", "text", "req_id", "reason"),
    [
        ("bpfpkg.json", json_with('"x-big": ' + "9" * 5000), "PKG-MAN-001", "does not fit in 64 bits"),
        ("bpfpkg.json", json_with('"x-big": -' + "9" * 21), "PKG-MAN-001", "does not fit in 64 bits"),
        ("bpfpkg.yaml", yaml_with("x-big: " + "9" * 5000), "PKG-MAN-001", "too long"),
        ("bpfpkg.yaml", yaml_with("x-big: 0x" + "f" * 5000), "PKG-MAN-001", "too long"),
        ("bpfpkg.yaml", yaml_with("x-big: 0x" + "f" * 17), "PKG-MAN-001", "does not fit in 64 bits"),
        ("bpfpkg.json", json_with('"x-s": "\\ud800"'), "PKG-MAN-001", "lone surrogate"),
        ("bpfpkg.json", json_with('"x-\\udfff": 1'), "PKG-MAN-001", "lone surrogate"),
        ("bpfpkg.yaml", yaml_with('x-s: "\\ud800"'), "PKG-MAN-001", "invalid Unicode"),  # libyaml refuses it
        ("bpfpkg.yaml", yaml_with("x-deep: " + "[" * 990 + "]" * 990), "PKG-MAN-001", "nested deeper"),
        ("bpfpkg.yaml", yaml_with(DEEP_BLOCK), "PKG-MAN-001", "nested deeper"),
        ("bpfpkg.json", json_with('"x-deep": ' + "[" * 990 + "]" * 990), "PKG-MAN-001", "nested deeper"),
        (
            "bpfpkg.json",
            json.dumps(example_manifest() | {"requires": {"kernel": ">=5." + "1" * 5000}}),
            "PKG-MAN-002",
            "Kernel version range",
        ),
    ],
    ids=[
        "json-5000-digits",
        "json-below-int64",
        "yaml-5000-digits",
        "yaml-5000-hex-digits",
        "yaml-above-uint64",
        "json-surrogate-value",
        "json-surrogate-key",
        "yaml-surrogate",
        "yaml-flow-990-deep",
        "yaml-block-990-deep",
        "json-990-deep",
        "kernel-range-5000-digits",
    ],
)
def test_manifests_that_crashed_become_findings(tmp_path: Path, name: str, text: str, req_id: str, reason: str) -> None:
    root = copy_example(tmp_path / "pkg")
    (root / "bpfpkg.json").unlink()
    (root / name).write_text(text, encoding="utf-8")
    code, report, stderr = run_check(root)
    assert "Traceback" not in stderr and stderr == "", stderr[-2000:]
    assert code == 1
    messages = failed(report)[req_id]
    assert any(re.search(reason, m) for m in messages), messages
    assert all("\n" not in m and len(m) < 500 for m in messages), messages
