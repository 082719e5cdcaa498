"""The package layer: opening directories, archives and manifest files (PKG-MAN-001, PKG-ART-001, PKG-ART-002),
manifest loading, schema validation, reference errors (PKG-MAN-003), artifact resolution, canonical form and
signatures (PKG-SIG-001). Hostile archives and YAML must give problems or typed errors, never crashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfcert.errors import BpfcertError, ManifestError, PackageError
from bpfcert.package import (
    ARCHIVE_MAX_MEMBERS,
    MANIFEST_MAX_BYTES,
    Package,
    canonical_manifest,
    load_manifest,
    manifest_reference_errors,
    open_package,
    package_subject,
    read_artifact,
    resolve_artifact,
    sha256_file,
    validate_manifest,
)
from bpfcert.results import Status
from bpfcert.signing import generate_key, sign_manifest, verify_manifest
from tests.archive_build import add_entry, add_file

ARTIFACT = b"\x7fELF not really, but bytes to hash"


def manifest_for(path: str = "prog.o", data: bytes = ARTIFACT) -> dict[str, Any]:
    return {
        "specVersion": "1.0",
        "name": "demo",
        "version": "1.0.0",
        "license": "GPL-2.0-only",
        "artifacts": [{"path": path, "sha256": hashlib.sha256(data).hexdigest(), "arch": "bpfel"}],
        "programs": [{"name": "count", "artifact": path, "section": "xdp", "type": "xdp"}],
    }


def write_package(root: Path, manifest: dict[str, Any] | None = None, name: str = "bpfpkg.json") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "prog.o").write_bytes(ARTIFACT)
    (root / name).write_text(json.dumps(manifest or manifest_for()))
    return root




def make_archive(path: Path, prefix: str = "") -> tarfile.TarFile:
    """An open .tar.gz holding a valid package (under `prefix`); the caller adds hostile members and closes."""
    tar = tarfile.open(path, "w:gz")  # noqa: SIM115 - returned open for the caller to extend
    add_file(tar, prefix + "prog.o", ARTIFACT)
    add_file(tar, prefix + "bpfpkg.json", json.dumps(manifest_for()).encode())
    return tar


def flip_base64_char(value: str) -> str:
    return value[:10] + ("B" if value[10] == "A" else "A") + value[11:]


def problem_ids(pkg: Package) -> list[str]:
    return [r.id for r in pkg.problems]


# -- opening ---------------------------------------------------------------------------------------------------


def test_open_directory(tmp_path: Path) -> None:
    with open_package(write_package(tmp_path / "pkg")) as pkg:
        assert pkg.problems == []
        assert pkg.manifest == manifest_for()
        assert pkg.manifest_path == (tmp_path / "pkg" / "bpfpkg.json").resolve()
        assert pkg.source == tmp_path / "pkg"


def test_open_manifest_file_directly(tmp_path: Path) -> None:
    root = write_package(tmp_path / "pkg", name="bpfpkg.yaml")
    with open_package(root / "bpfpkg.yaml") as pkg:
        assert pkg.root == root.resolve()
        assert pkg.manifest == manifest_for()  # JSON is YAML


def _artifacts(*arches: str) -> list[dict[str, str]]:
    return [{"path": f"{arch}.o", "arch": arch} for arch in arches]


@pytest.mark.parametrize(
    ("manifest", "subject"),
    [
        ({"name": "demo", "version": "1.0.0", "artifacts": _artifacts("bpfel")}, "demo@1.0.0"),
        ({"name": "demo", "version": "1.0.0", "artifacts": _artifacts("bpfeb")}, "demo@1.0.0+bpfeb"),
        ({"name": "demo", "artifacts": _artifacts("bpfel", "bpfeb")}, "demo+bpfeb"),
        ({"version": "1.0.0"}, "demo-dir"),
        (None, "demo-dir"),
    ],
)
def test_package_subject_names_each_build_apart(manifest: Any, subject: str) -> None:
    """One name for a package's rows (the package suite's and RT-PRD-001's alike): NAME@VERSION, +bpfeb for a
    big-endian build, the base name of the source without a name."""
    assert package_subject(Package(Path("."), manifest, None, Path("some/demo-dir"))) == subject


@pytest.mark.parametrize("prefix", ["", "demo-1.0.0/"])
def test_open_archive_with_or_without_top_level_directory(tmp_path: Path, prefix: str) -> None:
    archive = tmp_path / "demo.tar.gz"
    make_archive(archive, prefix).close()
    with open_package(archive) as pkg:
        assert pkg.problems == []
        assert pkg.manifest == manifest_for()
        assert (pkg.root / "prog.o").read_bytes() == ARTIFACT
        extracted = pkg.root
    assert not extracted.exists(), "the extracted archive outlives the package"


def test_cleanup_context_manager_removes_extraction(tmp_path: Path) -> None:
    archive = tmp_path / "demo.tgz"
    make_archive(archive).close()
    pkg = open_package(archive)
    with pkg.cleanup:
        assert pkg.root.is_dir()
    assert not pkg.root.exists()


def test_missing_manifest_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "prog.o").write_bytes(ARTIFACT)
    with open_package(tmp_path) as pkg:
        assert pkg.manifest is None
        assert problem_ids(pkg) == ["PKG-MAN-001"]
        assert pkg.problems[0].status is Status.FAIL


def test_two_manifests_are_a_problem(tmp_path: Path) -> None:
    write_package(tmp_path)
    (tmp_path / "bpfpkg.yaml").write_text("specVersion: '1.0'\n")
    with open_package(tmp_path) as pkg:
        assert problem_ids(pkg) == ["PKG-MAN-001"]
        assert pkg.manifest_path is not None and pkg.manifest_path.name == "bpfpkg.json"


def test_unparsable_manifest_is_a_problem(tmp_path: Path) -> None:
    tmp_path.joinpath("bpfpkg.json").write_text("{not json")
    with open_package(tmp_path) as pkg:
        assert pkg.manifest is None
        assert problem_ids(pkg) == ["PKG-MAN-001"]
        assert "not valid JSON" in pkg.problems[0].message


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p / "missing",
        lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt",
        lambda p: (p / "broken.tar.gz").write_bytes(b"\x1f\x8b\x08garbage") and p / "broken.tar.gz",
        lambda p: (p / "empty.tar.gz").write_bytes(b"") or p / "empty.tar.gz",
    ],
    ids=["missing", "not-a-package", "corrupt-gzip", "empty-archive"],
)
def test_unusable_input_raises_package_error(tmp_path: Path, make: Any) -> None:
    with pytest.raises(PackageError) as info:
        open_package(make(tmp_path))
    assert "\n" not in str(info.value)


# -- hostile archives ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostile", "req_id"),
    [
        (lambda t: add_file(t, "../x", b"escape"), "PKG-ART-001"),
        (lambda t: add_file(t, "sub/../../x", b"escape"), "PKG-ART-001"),
        (lambda t: add_file(t, "/etc/passwd", b"root::0:0"), "PKG-ART-001"),
        (lambda t: add_entry(t, "root", tarfile.SYMTYPE, "/"), "PKG-ART-001"),
        (lambda t: add_entry(t, "up", tarfile.SYMTYPE, "../../.."), "PKG-ART-001"),
        (lambda t: add_entry(t, "hard", tarfile.LNKTYPE, "../outside"), "PKG-ART-001"),
        (lambda t: add_entry(t, "passwd", tarfile.LNKTYPE, "/etc/passwd"), "PKG-ART-001"),
        (lambda t: add_entry(t, "null", tarfile.CHRTYPE), "PKG-ART-001"),
        (lambda t: add_entry(t, "disk", tarfile.BLKTYPE), "PKG-ART-001"),
        (lambda t: add_entry(t, "pipe", tarfile.FIFOTYPE), "PKG-ART-001"),
        (lambda t: add_entry(t, "inside", tarfile.SYMTYPE, "prog.o"), "PKG-ART-001"),
    ],
    ids=[
        "dotdot",
        "inner-dotdot",
        "absolute",
        "symlink-to-root",
        "symlink-up",
        "hardlink-escape",
        "hardlink-absolute",
        "char-device",
        "block-device",
        "fifo",
        "symlink-inside",
    ],
)
def test_hostile_archive_members_become_problems(tmp_path: Path, hostile: Any, req_id: str) -> None:
    archive = tmp_path / "hostile.tar.gz"
    tar = make_archive(archive)
    hostile(tar)
    tar.close()
    with open_package(archive) as pkg:
        assert problem_ids(pkg) == [req_id]
        assert pkg.problems[0].status is Status.FAIL
        assert pkg.manifest == manifest_for(), "the safe members are still extracted"
        names = sorted(p.name for p in pkg.root.iterdir())
    assert names == ["bpfpkg.json", "prog.o"]
    assert not (tmp_path / "x").exists() and not (tmp_path / "outside").exists()


def test_symlink_then_write_through_it_is_refused(tmp_path: Path) -> None:
    """A member meant to be written through an earlier symlink that points outside is refused with the link."""
    archive = tmp_path / "chain.tar.gz"
    outside = tmp_path / "outside"
    outside.mkdir()
    tar = make_archive(archive)
    add_entry(tar, "dir", tarfile.SYMTYPE, str(outside))
    add_file(tar, "dir/planted", b"gotcha")
    tar.close()
    with open_package(archive) as pkg:
        assert [(p.id, p.evidence["member"]) for p in pkg.problems] == [
            ("PKG-ART-001", "dir"),
            ("PKG-ART-001", "dir/planted"),
        ]
    assert list(outside.iterdir()) == []


def test_symlink_chain_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """'sub/up' -> '..' stays inside; 'sub/up2' -> 'up/..' looks inside lexically but resolves outside. Both are
    refused and nothing lands outside the extraction directory, on every Python (no tarfile filter involved)."""
    extraction_parent = tmp_path / "tmp"
    extraction_parent.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(extraction_parent))
    archive = tmp_path / "chain.tar.gz"
    tar = make_archive(archive)
    add_entry(tar, "sub", tarfile.DIRTYPE)
    add_entry(tar, "sub/up", tarfile.SYMTYPE, "..")
    add_entry(tar, "sub/up2", tarfile.SYMTYPE, "up/..")
    add_file(tar, "sub/up2/planted", b"gotcha")
    tar.close()
    with open_package(archive) as pkg:
        assert [p.evidence["member"] for p in pkg.problems] == ["sub/up", "sub/up2", "sub/up2/planted"]
        assert {p.id for p in pkg.problems} == {"PKG-ART-001"}
        assert sorted(p.name for p in pkg.root.iterdir()) == ["bpfpkg.json", "prog.o"]
    assert [p.name for p in tmp_path.rglob("planted")] == []
    assert list(extraction_parent.iterdir()) == []


def test_extraction_never_uses_tarfile_extract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our extraction behaves the same with and without tarfile's data filter (3.11.2 vs 3.11.7): it uses
    neither `extract` nor `extractall`."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("tarfile extraction used")

    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    archive = tmp_path / "demo.tar.gz"
    make_archive(archive, "demo-1.0.0/").close()
    with open_package(archive) as pkg:
        assert pkg.problems == []
        assert (pkg.root / "prog.o").read_bytes() == ARTIFACT


def test_member_count_limit(tmp_path: Path) -> None:
    archive = tmp_path / "many.tar.gz"
    tar = make_archive(archive)
    for i in range(ARCHIVE_MAX_MEMBERS):
        add_file(tar, f"f{i}", b"")
    tar.close()
    with open_package(archive) as pkg:
        assert problem_ids(pkg) == ["PKG-ART-002", "PKG-MAN-001"]
        assert "members" in pkg.problems[0].message
        assert list(pkg.root.iterdir()) == []


def test_total_size_limit_is_checked_before_extraction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bpfcert.package.ARCHIVE_MAX_BYTES", 1000)
    archive = tmp_path / "big.tar.gz"
    tar = make_archive(archive)
    add_file(tar, "zeros.bin", bytes(5000))  # compresses to almost nothing: a small archive that expands
    tar.close()
    with open_package(archive) as pkg:
        assert problem_ids(pkg) == ["PKG-ART-002", "PKG-MAN-001"]
        assert "expands to" in pkg.problems[0].message


# -- manifests -------------------------------------------------------------------------------------------------


def test_json_duplicate_keys_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bpfpkg.json"
    path.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(ManifestError, match="duplicate key 'name'"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[1, 2]", "top level must be an object"),
        ('"just a string"', "top level must be an object"),
        ('{"x": NaN}', "NaN is not valid JSON"),
        ("{" * 100_000, "nested deeper than 64 levels|not valid JSON"),
    ],
)
def test_bad_json_manifests(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bpfpkg.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=reason):
        load_manifest(path)


def test_manifest_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "bpfpkg.json"
    path.write_text('{"description": "' + "x" * MANIFEST_MAX_BYTES + '"}')
    with pytest.raises(ManifestError, match="larger than"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"x": ' + "9" * 5000 + "}", "5000 digits does not fit in 64 bits"),
        ('{"x": 18446744073709551616}', "at \\$.x does not fit in 64 bits"),
        ('{"x": "\\ud800"}', "string at \\$.x holds a lone surrogate"),
        ('{"a": {"\\udfff": 1}}', "key at \\$.a holds a lone surrogate"),
        ('{"x": ' + "[" * 990 + "]" * 990 + "}", "nested deeper than 64 levels"),
    ],
    ids=["5000-digits", "2**64", "surrogate", "surrogate-key", "990-deep"],
)
def test_json_values_that_later_crashed_are_refused(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "bpfpkg.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=reason):
        load_manifest(path)


def test_manifest_symlink_or_fifo_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    os.symlink(tmp_path / "real.json", tmp_path / "bpfpkg.json")
    os.mkfifo(tmp_path / "bpfpkg.yaml")
    with pytest.raises(ManifestError, match=r"bpfpkg\.json is a symbolic link"):
        load_manifest(tmp_path / "bpfpkg.json")
    with pytest.raises(ManifestError, match="not a regular file"):
        load_manifest(tmp_path / "bpfpkg.yaml")


def test_dangling_manifest_link_is_reported_not_missing(tmp_path: Path) -> None:
    os.symlink(tmp_path / "absent.json", tmp_path / "bpfpkg.json")
    with open_package(tmp_path) as pkg:
        assert problem_ids(pkg) == ["PKG-MAN-001"]
        assert "symbolic link" in pkg.problems[0].message


def test_non_utf8_manifest(tmp_path: Path) -> None:
    path = tmp_path / "bpfpkg.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(path)


@pytest.fixture(params=["libyaml", "pure-python"])
def yaml_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test with the libyaml-based loader and with PyYAML's pure-Python fallback."""
    import yaml

    from bpfcert import package

    if request.param == "pure-python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML built without libyaml")
    package._plain_yaml_loader.cache_clear()
    yield request.param
    package._plain_yaml_loader.cache_clear()


BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]
"""


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: !!python/object/apply:os.system ['true']\n", "not valid safe YAML"),
        ("name: !!python/name:os.system\n", "not valid safe YAML"),
        (BILLION_LAUGHS, "aliases"),
        ("name: a\nname: b\n", "duplicate key 'name'"),
        ("- a\n- b\n", "top level must be an object"),
        ("1: one\n", "key 1 at \\$ is not a string"),
        ("data: !!binary aGVsbG8=\n", "bytes value at \\$.data"),
        ("x: .nan\n", "not a JSON number"),
        ("a: [\n", "not valid safe YAML"),
        ("", "top level must be an object, not null"),
    ],
    ids=[
        "python-apply",
        "python-name",
        "alias-bomb",
        "duplicate",
        "list",
        "int-key",
        "binary",
        "nan",
        "broken",
        "empty",
    ],
)
def test_hostile_yaml_is_refused(tmp_path: Path, yaml_backend: str, text: str, reason: str) -> None:
    path = tmp_path / "bpfpkg.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=reason) as info:
        load_manifest(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("x: " + "9" * 5000 + "\n", "too long for 64 bits"),
        ("x: 0x" + "f" * 5000 + "\n", "too long for 64 bits"),
        ("x: 0b" + "1" * 65 + "\n", "does not fit in 64 bits"),
        ("x: -9223372036854775809\n", "does not fit in 64 bits"),
        ("x: " + "[" * 65 + "]" * 65 + "\n", "nested deeper than 64 levels"),
        ("x:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(64)) + " " * 65 + "b: 1\n", "nested deeper than 64"),
        ('x: "\\ud800"\n', "lone surrogate|invalid Unicode"),  # libyaml refuses the escape itself
        ('"\\udfff": 1\n', "lone surrogate|invalid Unicode"),
    ],
    ids=["decimal", "hex", "binary", "below-int64", "flow-depth", "block-depth", "surrogate", "surrogate-key"],
)
def test_yaml_values_that_later_crashed_are_refused(tmp_path: Path, yaml_backend: str, text: str, reason: str) -> None:
    """Values Python cannot print or encode (over 4,300 digits, lone surrogates) or recurse through."""
    path = tmp_path / "bpfpkg.yaml"
    path.write_text(text)
    with pytest.raises(ManifestError, match=reason) as info:
        load_manifest(path)
    assert "\n" not in str(info.value)


def test_manifest_limits_admit_what_they_promise(tmp_path: Path) -> None:
    """The bounds themselves are allowed: 64 levels, the full signed and unsigned 64-bit ranges."""
    path = tmp_path / "bpfpkg.json"
    path.write_text('{"a": ' + "[" * 63 + "]" * 63 + ', "min": -9223372036854775808, "max": 18446744073709551615}')
    assert load_manifest(path)["max"] == (1 << 64) - 1


def test_yaml_timestamps_stay_strings(tmp_path: Path, yaml_backend: str) -> None:
    path = tmp_path / "bpfpkg.yaml"
    path.write_text("released: 2026-11-28\nversion: 1.0.0\n")
    assert load_manifest(path) == {"released": "2026-11-28", "version": "1.0.0"}


def test_unreadable_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "absent.json")
    assert issubclass(ManifestError, BpfcertError)


# -- validation and references ---------------------------------------------------------------------------------


def test_schema_errors_name_json_paths() -> None:
    manifest = manifest_for()
    manifest["programs"][0]["type"] = "BPF_PROG_TYPE_XDP"
    manifest["artifacts"][0]["path"] = "../escape.o"
    manifest["maps"] = [{"name": "m"}]
    errors: dict[str, list[str]] = {}
    for error in validate_manifest(manifest):
        errors.setdefault(error.path, []).append(error.message)
    assert set(errors) == {"$.programs[0].type", "$.artifacts[0].path", "$.maps[0]"}
    assert "relative POSIX path" in errors["$.artifacts[0].path"][0]  # the schema's description, not the regex
    assert len(errors["$.maps[0]"]) == 5  # artifact, type, key_size, value_size, max_entries missing


def test_attach_keys_depend_on_program_type() -> None:
    manifest = manifest_for()
    manifest["programs"][0]["attach"] = {"interface": "eth0", "mode": "generic"}
    assert validate_manifest(manifest) == []
    manifest["programs"][0]["type"] = "kprobe"
    assert [e.path for e in validate_manifest(manifest)] == ["$.programs[0].attach"]
    manifest["programs"][0]["attach"] = {"function": "do_exit", "retprobe": True}
    assert validate_manifest(manifest) == []


def test_extension_keys_are_allowed_everywhere() -> None:
    manifest = manifest_for()
    manifest["x-vendor"] = {"anything": [1, 2]}
    manifest["artifacts"][0]["x-build"] = "ci-42"
    manifest["programs"][0]["x-note"] = True
    assert validate_manifest(manifest) == []
    manifest["artifacts"][0]["build"] = "ci-42"
    assert [e.path for e in validate_manifest(manifest)] == ["$.artifacts[0]"]


def test_reference_errors() -> None:
    manifest = manifest_for()
    assert manifest_reference_errors(manifest) == []
    manifest["programs"].append({"name": "count", "artifact": "other.o", "section": "xdp", "type": "xdp"})
    manifest["maps"] = [
        {"name": "m", "artifact": "prog.o", "type": "hash", "key_size": 4, "value_size": 4, "max_entries": 1},
        {"name": "m", "artifact": "gone.o", "type": "hash", "key_size": 4, "value_size": 4, "max_entries": 1},
    ]
    manifest["artifacts"].append(dict(manifest["artifacts"][0]))
    assert manifest_reference_errors(manifest) == [
        "duplicate artifact path 'prog.o'",
        "duplicate program name 'count'",
        "duplicate map name 'm'",
        "program 'count' names undeclared artifact 'other.o'",
        "map 'm' names undeclared artifact 'gone.o'",
    ]


def test_reference_errors_tolerate_malformed_manifests() -> None:
    assert manifest_reference_errors({"programs": "nope", "maps": [1, None], "artifacts": {}}) == []


# -- artifacts, canonical form, signatures ---------------------------------------------------------------------


def test_resolve_artifact_refuses_escapes_and_links(tmp_path: Path) -> None:
    """Any link on the way is refused, also one that stays inside the package; a missing path is returned."""
    root = write_package(tmp_path / "pkg")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", root / "escape.o")
    os.symlink("prog.o", root / "alias.o")
    os.symlink(".", root / "here")
    with open_package(root) as pkg:
        assert resolve_artifact(pkg, "prog.o") == (root / "prog.o").resolve()
        assert resolve_artifact(pkg, "gone/x.o") == root.resolve() / "gone/x.o"
        assert resolve_artifact(pkg, "prog.o/x.o") == root.resolve() / "prog.o/x.o"  # not a file: PKG-ART-002
        for bad in ("escape.o", "alias.o", "here/prog.o", "../secret", "/etc/passwd", "a\\b", "", "./prog.o", "a//b"):
            with pytest.raises(PackageError) as info:
                resolve_artifact(pkg, bad)
            assert "\n" not in str(info.value)
        with pytest.raises(PackageError, match="'here' is a symbolic link"):
            resolve_artifact(pkg, "here/prog.o")


def test_artifact_reads_never_follow_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"abc")
    os.symlink(tmp_path / "real", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    assert read_artifact(tmp_path / "real", 10) == b"abc"
    assert read_artifact(tmp_path / "real", 1) == b"ab"  # limit + 1, for the caller to see it was exceeded
    for reader in (lambda p: read_artifact(p, 10), sha256_file):
        with pytest.raises(PackageError, match="link is a symbolic link"):
            reader(tmp_path / "link")
        with pytest.raises(PackageError, match="not a regular file"):
            reader(tmp_path / "fifo")  # and does not block


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    with pytest.raises(PackageError):
        sha256_file(tmp_path / "absent")


def test_canonical_manifest_known_answer() -> None:
    manifest = {"name": "é", "b": [1, {"z": 1, "a": None}], "signature": {"value": "x"}}
    assert canonical_manifest(manifest) == '{"b":[1,{"a":null,"z":1}],"name":"é"}'.encode()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1 << 20_000, "integer string conversion"),
        ("\ud800", "lone surrogate"),
        (functools.reduce(lambda inner, _: [inner], range(5000), []), "nested too deeply"),
    ],
    ids=["huge-int", "surrogate", "deep"],
)
def test_manifest_without_canonical_form(value: Any, reason: str) -> None:
    """Manifests not read by load_manifest (built in code) can still lack a canonical form: a ManifestError to
    sign, and a reason (not "unusable public key") to verify."""
    manifest = manifest_for() | {"x-value": value}
    with pytest.raises(ManifestError, match=reason):
        canonical_manifest(manifest)
    with pytest.raises(ManifestError, match="no canonical form"):
        sign_manifest(manifest, generate_key()[0])
    signed = sign_manifest(manifest_for(), generate_key()[0]) | {"x-value": value}
    problem = verify_manifest(signed)
    assert problem is not None and problem.startswith("the manifest has no canonical form")


def test_long_values_are_cut_in_schema_messages() -> None:
    manifest = manifest_for()
    manifest["requires"] = {"kernel": ">=5." + "1" * 5000}
    [error] = validate_manifest(manifest)
    assert error.path == "$.requires.kernel"
    assert len(error.message) < 300 and "(5006 characters)" in error.message


def test_sign_and_verify_roundtrip() -> None:
    private_pem, public_b64 = generate_key()
    signed = sign_manifest(manifest_for(), private_pem)
    assert signed["signature"]["public_key"] == public_b64
    assert verify_manifest(signed) is None
    assert validate_manifest(signed) == []
    assert sign_manifest(manifest_for(), private_pem.decode()) == signed  # Ed25519 is deterministic
    assert "signature" not in manifest_for()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.update(version="1.0.1"),
        lambda m: m["artifacts"][0].update(sha256="0" * 64),
        lambda m: m.update({"x-added": 1}),
        lambda m: m["signature"].update(public_key=generate_key()[1]),
        lambda m: m["signature"].update(value=flip_base64_char(m["signature"]["value"])),
    ],
    ids=["field", "nested", "added-key", "other-key", "bit-flip"],
)
def test_tampering_breaks_the_signature(tamper: Any) -> None:
    signed = sign_manifest(manifest_for(), generate_key()[0])
    tamper(signed)
    assert verify_manifest(signed) == "the signature does not match the canonical manifest"


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "no signature"),
        ({"algorithm": "rsa"}, "unsupported signature algorithm"),
        ({"algorithm": "ed25519", "public_key": "***", "value": "***"}, "not valid base64"),
        ({"algorithm": "ed25519", "public_key": "AAAA", "value": "AAAA"}, "32-byte key"),
        # the forgery an s390x guest's OpenSSL accepted: a small-order key (all zeros) and an all-zero signature
        ({"algorithm": "ed25519", "public_key": base64.b64encode(bytes(32)).decode(),
          "value": base64.b64encode(bytes(64)).decode()}, "small order"),
    ],
)
def test_unverifiable_signatures_give_reasons(signature: Any, reason: str) -> None:
    manifest = manifest_for() | ({"signature": signature} if signature is not None else {})
    problem = verify_manifest(manifest)
    assert problem is not None and reason in problem


def test_signing_with_a_bad_key_is_a_typed_error() -> None:
    with pytest.raises(BpfcertError, match="signing key"):
        sign_manifest(manifest_for(), b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_package_layer_imports_stay_lean() -> None:
    """The CLI loads bpfcert.package on every check: no hypothesis, YAML, tarfile or cryptography at import."""
    import subprocess
    import sys

    code = (
        "import sys; import bpfcert.cli, bpfcert.package, bpfcert.signing; "
        "print(sorted(m for m in ('hypothesis', 'bpfcert.strategies', 'yaml', 'tarfile', 'cryptography', "
        "'jsonschema_rs') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "[]"
