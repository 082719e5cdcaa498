"""Packages: opening a directory, .tar.gz archive or manifest file; reading and validating the manifest.

Opening never crashes on hostile input: unsafe archive members and unreadable manifests become `problems`
(failed results carrying the requirement ID), and only unusable input raises `PackageError`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import posixpath
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.errors import ManifestError, PackageError
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    import tarfile

    import jsonschema_rs

MANIFEST_NAMES = ("bpfpkg.json", "bpfpkg.yaml")
MANIFEST_MAX_BYTES = 1 << 20
ARCHIVE_MAX_MEMBERS = 10_000
ARCHIVE_MAX_BYTES = 256 << 20  # the package size limit of PKG-ART-002
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
_MANIFEST_SUFFIXES = (".json", ".yaml", ".yml")


@dataclass(frozen=True)
class SchemaError:
    """One schema violation: where in the manifest (a JSON path such as $.programs[0].type) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Package:
    """An opened package. Use as a context manager (or `with pkg.cleanup`) to remove any extracted archive."""

    root: Path
    manifest: dict[str, Any] | None
    manifest_path: Path | None
    source: Path  # what the user named: the directory, archive or manifest file
    problems: list[Result] = field(default_factory=list)
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        self.cleanup.close()

    def __enter__(self) -> Package:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _problem(req_id: str, message: str, **evidence: Any) -> Result:
    return Result(req_id, Status.FAIL, message, level=spec.requirement(req_id).level, evidence=evidence)


def open_package(path: str | os.PathLike[str]) -> Package:
    """Open a package directory, a .tar.gz of one (with or without one top-level directory) or a manifest."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise PackageError(f"cannot open package {p}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        return _open_directory(p.resolve(), p)
    if not stat.S_ISREG(st.st_mode):
        raise PackageError(f"{p} is neither a directory, a .tar.gz archive nor a manifest file")
    if p.name.endswith(_MANIFEST_SUFFIXES):
        pkg = Package(p.resolve().parent, None, p.resolve(), p)
        _load_into(pkg, p.resolve())
        return pkg
    if p.name.endswith(_ARCHIVE_SUFFIXES) or _is_gzip(p):
        return _open_archive(p)
    raise PackageError(f"{p} is neither a directory, a .tar.gz archive nor a manifest file")


def _is_gzip(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {exc.strerror}") from None


def _open_directory(root: Path, source: Path, cleanup: contextlib.ExitStack | None = None) -> Package:
    pkg = Package(root, None, None, source, cleanup=cleanup or contextlib.ExitStack())
    found = [root / name for name in MANIFEST_NAMES if (root / name).is_file()]
    if not found:
        pkg.problems.append(_problem("PKG-MAN-001", f"no {' or '.join(MANIFEST_NAMES)} at the package root"))
        return pkg
    if len(found) > 1:
        pkg.problems.append(
            _problem("PKG-MAN-001", "both bpfpkg.json and bpfpkg.yaml at the package root (bpfpkg.json read)")
        )
    pkg.manifest_path = found[0]
    _load_into(pkg, found[0])
    return pkg


def _load_into(pkg: Package, manifest_path: Path) -> None:
    try:
        pkg.manifest = load_manifest(manifest_path)
    except ManifestError as exc:
        pkg.problems.append(_problem("PKG-MAN-001", str(exc), manifest=manifest_path.name))


def _open_archive(archive: Path) -> Package:
    import shutil
    import tempfile

    cleanup = contextlib.ExitStack()
    dest = Path(tempfile.mkdtemp(prefix="bpfcert-pkg-"))
    cleanup.callback(shutil.rmtree, dest, ignore_errors=True)
    try:
        problems = _extract_archive(archive, dest)
    except BaseException:
        cleanup.close()
        raise
    entries = list(dest.iterdir())
    root = dest
    if not any((dest / n).exists() for n in MANIFEST_NAMES) and len(entries) == 1:
        only = entries[0]
        if only.is_dir() and not only.is_symlink():
            root = only
    pkg = _open_directory(root, archive, cleanup)
    pkg.problems[:0] = problems
    return pkg


def _member_problem(member: tarfile.TarInfo) -> tuple[str, str] | None:
    """(requirement ID, reason) if the archive member must not be extracted."""
    name = member.name
    if name.startswith("/") or "\\" in name:
        return "PKG-ART-001", "absolute member name"
    if ".." in name.split("/"):
        return "PKG-ART-001", "member name with a '..' segment"
    if member.issym() or member.islnk():
        target = member.linkname
        base = posixpath.dirname(name) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            return "PKG-ART-001", f"link to {target!r} leaves the package"
        return None
    if not (member.isfile() or member.isdir()):
        return "PKG-ART-002", "not a regular file, directory or link (device, FIFO...)"
    return None


def _extract_archive(archive: Path, dest: Path) -> list[Result]:
    import tarfile

    problems: list[Result] = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members: list[tarfile.TarInfo] = []
            for member in tar:
                members.append(member)
                if len(members) > ARCHIVE_MAX_MEMBERS:
                    reason = f"archive has more than {ARCHIVE_MAX_MEMBERS} members; not extracted"
                    problems.append(_problem("PKG-ART-002", reason))
                    return problems
            total = sum(m.size for m in members if m.isfile())
            if total > ARCHIVE_MAX_BYTES:
                reason = f"archive expands to {total} bytes (limit {ARCHIVE_MAX_BYTES}); not extracted"
                problems.append(_problem("PKG-ART-002", reason))
                return problems
            for member in members:
                refusal = _member_problem(member)
                if refusal is None and not hasattr(tarfile, "data_filter") and (member.issym() or member.islnk()):
                    # Pythons before 3.11.4 (Debian 12's 3.11.2) lack the extraction filter that resolves
                    # chains of links safely, so links are not extracted there at all.
                    refusal = ("PKG-ART-001", "links are not extracted by this Python (no tarfile data filter)")
                if refusal is None:
                    try:
                        if hasattr(tarfile, "data_filter"):
                            tar.extract(member, dest, set_attrs=False, filter="data")
                        else:
                            tar.extract(member, dest, set_attrs=False)
                        continue
                    except (tarfile.FilterError, KeyError) as exc:
                        refusal = ("PKG-ART-001", f"refused by the extraction filter: {exc}")
                req_id, why = refusal
                message = f"archive member {member.name!r} not extracted: {why}"
                problems.append(_problem(req_id, message, member=member.name))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PackageError(f"cannot read archive {archive}: {exc}") from None
    return problems


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a JSON or YAML manifest into a JSON-compatible dict; ManifestError when that is unsafe."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MANIFEST_MAX_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {p.name}: {exc.strerror}") from None
    if len(data) > MANIFEST_MAX_BYTES:
        raise ManifestError(f"manifest {p.name} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"manifest {p.name} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        loaded = _parse_yaml(text, p.name) if p.suffix in (".yaml", ".yml") else _parse_json(text, p.name)
    except RecursionError:
        raise ManifestError(f"manifest {p.name} is nested too deeply") from None
    if not isinstance(loaded, dict):
        raise ManifestError(f"manifest {p.name}: the top level must be an object, not {_json_type(loaded)}")
    _check_json_compatible(loaded, "$", p.name)
    return loaded


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "an integer"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _parse_json(text: str, name: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        dup = next((k for k, n in Counter(k for k, _ in pairs).items() if n > 1), None)
        if dup is not None:
            raise ManifestError(f"manifest {name}: duplicate key {dup!r}")
        return dict(pairs)

    def no_constant(token: str) -> Any:
        raise ManifestError(f"manifest {name}: {token} is not valid JSON")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


def _parse_yaml(text: str, name: str) -> Any:
    import yaml

    loader = _plain_yaml_loader()
    try:
        for event in yaml.parse(text, Loader=loader):  # aliases refused before anything is constructed
            if isinstance(event, yaml.AliasEvent):
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise ManifestError(f"manifest {name}: aliases (*ref) are not allowed (line {line})")
        return yaml.load(text, Loader=loader)  # a SafeLoader (libyaml's when available)
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ManifestError(f"manifest {name} is not valid safe YAML: {reason}") from None


@functools.cache
def _plain_yaml_loader() -> type[Any]:
    """A safe YAML loader (libyaml's CSafeLoader when available) that refuses duplicate keys and keeps
    timestamps as strings. Aliases are refused by _parse_yaml before loading."""
    import yaml

    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class PlainLoader(base):  # type: ignore[misc]
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key if isinstance(key, str) else id(key_node))
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

    def timestamp_as_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
        return str(node.value)

    PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", timestamp_as_string)
    return PlainLoader


def _check_json_compatible(value: Any, where: str, name: str) -> None:
    """Refuse what YAML can express but JSON cannot (non-string keys, bytes, NaN)."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ManifestError(f"manifest {name}: key {key!r} at {at} is not a string")
                stack.append((child, _child_path(at, key)))
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, float) and not math.isfinite(item):
            raise ManifestError(f"manifest {name}: {item} at {at} is not a JSON number")
        elif item is not None and not isinstance(item, str | int | float | bool):
            raise ManifestError(f"manifest {name}: the {type(item).__name__} value at {at} is not JSON data")


def _child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


@functools.cache
def _validator() -> tuple[jsonschema_rs.Validator, dict[str, str]]:
    """The package schema's validator, and pattern -> description for readable pattern errors."""
    import jsonschema_rs

    schema = spec.schema("package")
    described: dict[str, str] = {}
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str) and isinstance(node.get("description"), str):
                described[node["pattern"]] = node["description"].rstrip(".")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True), described


def validate_manifest(manifest: Any) -> list[SchemaError]:
    """Every violation of spec/package.schema.json (Draft 2020-12, formats asserted), sorted by JSON path."""
    validator, described = _validator()
    errors = []
    for err in validator.iter_errors(manifest):
        path = "$"
        for key in err.instance_path:
            path = _child_path(path, key)
        message = err.message
        pattern = getattr(err.kind, "pattern", None)
        if isinstance(pattern, str) and pattern in described:
            message = f"{json.dumps(err.instance, ensure_ascii=False)} does not match: {described[pattern]}"
        errors.append(SchemaError(path, message))
    return sorted(set(errors), key=lambda e: (e.path, e.message))


def manifest_reference_errors(manifest: dict[str, Any]) -> list[str]:
    """PKG-MAN-003 findings: duplicate artifact paths, program or map names, and artifact references that
    name no declared artifact. Tolerates schema-invalid manifests (checks what it can)."""

    def entries(key: str) -> list[dict[str, Any]]:
        value = manifest.get(key)
        return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []

    errors: list[str] = []
    declared = [a.get("path") for a in entries("artifacts")]
    for label, values in (
        ("artifact path", declared),
        ("program name", [p.get("name") for p in entries("programs")]),
        ("map name", [m.get("name") for m in entries("maps")]),
    ):
        counts = Counter(v for v in values if isinstance(v, str))
        errors.extend(f"duplicate {label} {v!r}" for v, n in counts.items() if n > 1)
    for key, kind in (("programs", "program"), ("maps", "map")):
        for i, entry in enumerate(entries(key)):
            ref = entry.get("artifact")
            if isinstance(ref, str) and ref not in declared:
                errors.append(f"{kind} {entry.get('name', i)!r} names undeclared artifact {ref!r}")
    return errors


def resolve_artifact(pkg: Package, rel: str) -> Path:
    """The real path of an artifact; PackageError if `rel` is not relative or resolves outside the package."""
    if not rel or rel.startswith("/") or "\\" in rel or ".." in rel.split("/"):
        raise PackageError(f"artifact path {rel!r} is not a relative path inside the package")
    root = Path(os.path.realpath(pkg.root))
    real = Path(os.path.realpath(root / rel))
    if not real.is_relative_to(root):
        raise PackageError(f"artifact path {rel!r} resolves to {real}, outside the package")
    return real


def canonical_manifest(manifest: dict[str, Any]) -> bytes:
    """The signed form: the manifest without `signature`, as UTF-8 JSON with sorted keys and no whitespace."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lowercase hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest()
