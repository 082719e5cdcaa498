"""Packages: opening a directory, .tar.gz archive or manifest file; reading and validating the manifest.

Opening never crashes on hostile input: unsafe archive members and unreadable manifests become `problems`
(failed results carrying the requirement ID), and only unusable input raises `PackageError`. Nothing here follows
a symbolic link inside a package, and archives are extracted by our own code, never by `tarfile`'s.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import math
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

from bpfcert import spec
from bpfcert.errors import ManifestError, PackageError
from bpfcert.results import Result, Status, package_name

if TYPE_CHECKING:
    import tarfile

    from bpfcert.json_schema import Validate

MANIFEST_NAMES = ("bpfpkg.json", "bpfpkg.yaml")
MANIFEST_MAX_BYTES = 1 << 20
ARCHIVE_MAX_MEMBERS = 10_000
ARCHIVE_MAX_BYTES = 256 << 20  # the package size limit of PKG-ART-002
ARCHIVE_MEMBER_MAX_BYTES = 64 << 20  # the artifact size limit of PKG-ART-002
ARCHIVE_MAX_DEPTH = 32  # directory levels of a member name
ARCHIVE_MAX_NAME_BYTES = 1024  # a member name, so that the extracted path stays far below PATH_MAX
MANIFEST_MAX_DEPTH = 64  # nesting of objects and arrays in a manifest
INT_RANGE = (-(1 << 63), 1 << 64)  # manifest integers fit in 64 bits, signed or unsigned
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
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


def package_subject(pkg: Package) -> str:
    """The package as result rows name it: NAME@VERSION as its report's title names it (results.package_name: NAME
    alone without a version, the base name of what the user named without a name), with "+bpfeb" when its manifest
    lists a big-endian artifact, so that the two builds of one package are rows of their own."""
    artifacts = pkg.manifest.get("artifacts") if isinstance(pkg.manifest, dict) else None
    big = isinstance(artifacts, list) and any(isinstance(a, dict) and a.get("arch") == "bpfeb" for a in artifacts)
    return package_name(pkg.manifest, str(pkg.source), "@") + ("+bpfeb" if big else "")


def _problem(req_id: str, message: str, **evidence: Any) -> Result:
    """A FAIL row of `req_id` found while opening the package."""
    return Result.of(req_id, Status.FAIL, message, evidence=evidence)


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
    found = [root / name for name in MANIFEST_NAMES if os.path.lexists(root / name)]  # links too, to refuse them
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


def _extract_archive(archive: Path, dest: Path) -> list[Result]:
    """Extract the regular files of `archive` into the empty directory `dest`; the findings on the rest.

    Every member is read and judged before anything is written. Refused (PKG-ART-001), and not extracted:
    symbolic and hard links, devices, FIFOs and other non-regular members; names that are absolute, hold '..',
    backslashes or non-UTF-8 bytes, or exceed the depth and length limits; names that occur twice; members under a
    refused name (meant to be written through a link). Members over the size limits are refused under PKG-ART-002.
    The other members are still extracted so the remaining checks can run. Only regular files are written, each
    created anew (O_EXCL) in directories opened with O_NOFOLLOW, so no link is ever followed or created; the
    directories their paths imply are created along the way.
    """
    import tarfile

    try:
        with tarfile.open(archive, "r:gz") as tar:
            members: list[tarfile.TarInfo] = []
            total = 0
            for member in tar:
                members.append(member)
                total += member.size if member.isfile() else 0
                if len(members) > ARCHIVE_MAX_MEMBERS:
                    reason = f"archive has more than {ARCHIVE_MAX_MEMBERS} members; not extracted"
                    return [_problem("PKG-ART-002", reason)]
                if total > ARCHIVE_MAX_BYTES:
                    reason = f"archive expands to more than {ARCHIVE_MAX_BYTES} bytes; not extracted"
                    return [_problem("PKG-ART-002", reason)]
            accepted, findings = _judge_members(members)
            dest_fd = os.open(dest, _DIR_FLAGS)
            try:
                for index, parts in accepted:
                    try:
                        _write_member(tar, members[index], parts, dest_fd)
                    except OSError as exc:
                        why = exc.strerror or str(exc)
                        findings.append((index, _member_problem("PKG-ART-001", members[index].name, why)))
            finally:
                os.close(dest_fd)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise PackageError(f"cannot read archive {archive}: {exc}") from None
    return [r for _, r in sorted(findings, key=lambda f: f[0])]


def _judge_members(members: list[tarfile.TarInfo]) -> tuple[list[tuple[int, list[str]]], list[tuple[int, Result]]]:
    """(index, path segments) of the regular members to write, and (index, finding) of the refused ones."""
    findings: list[tuple[int, Result]] = []
    candidates: list[tuple[int, list[str]]] = []
    refused: set[tuple[str, ...]] = set()
    for index, member in enumerate(members):
        parts, why = _member_parts(member.name)
        req_id = "PKG-ART-001"
        if why is None:
            why = _member_type_refusal(member)
        if why is None and member.isfile() and member.size > ARCHIVE_MEMBER_MAX_BYTES:
            req_id, why = "PKG-ART-002", f"{member.size} bytes, over the artifact limit of {ARCHIVE_MEMBER_MAX_BYTES}"
        if why is not None:
            findings.append((index, _member_problem(req_id, member.name, why)))
            refused.add(tuple(parts))
        elif parts and not member.isdir():  # directories are created as the files below them imply
            candidates.append((index, parts))
    counts = Counter(tuple(parts) for _, parts in candidates)
    accepted: list[tuple[int, list[str]]] = []
    for index, parts in candidates:
        above = next((parts[:i] for i in range(1, len(parts)) if tuple(parts[:i]) in refused), None)
        if counts[tuple(parts)] > 1:
            why = "its name occurs more than once in the archive"
        elif above is not None:
            why = f"it lies under the refused member {'/'.join(above)!r}"
        else:
            accepted.append((index, parts))
            continue
        findings.append((index, _member_problem("PKG-ART-001", members[index].name, why)))
    return accepted, findings


def _member_parts(name: str) -> tuple[list[str], str | None]:
    """The path segments of a member name ('.' and empty ones dropped), or why the name is refused."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/"):
        return [], "absolute member name"
    if "\\" in name:
        return [], "backslash in the member name"
    if ".." in parts:
        return [], "member name with a '..' segment"
    if len(parts) > ARCHIVE_MAX_DEPTH:
        return [], f"{len(parts)} directories deep, more than {ARCHIVE_MAX_DEPTH} levels"
    try:
        encoded = [p.encode("utf-8") for p in parts]
    except UnicodeEncodeError:
        return [], "the member name is not UTF-8"
    if sum(len(p) + 1 for p in encoded) > ARCHIVE_MAX_NAME_BYTES:
        return [], f"the member name is longer than {ARCHIVE_MAX_NAME_BYTES} bytes"
    if any(len(p) > 255 for p in encoded):
        return [], "a segment of the member name is longer than 255 bytes"
    return parts, None


def _member_type_refusal(member: tarfile.TarInfo) -> str | None:
    """Why a member is refused for its type (a package holds regular files only), if it is."""
    if member.isfile() or member.isdir():
        return None
    if member.issym():
        return "a symbolic link; a package must not contain links"
    if member.islnk():
        return "a hard link; a package must not contain links"
    if member.ischr() or member.isblk():
        return "a device file; a package holds regular files only"
    if member.isfifo():
        return "a FIFO; a package holds regular files only"
    return f"tar member type {member.type!r} is not a regular file"


def _member_problem(req_id: str, name: str, why: str) -> Result:
    shown = repr(name) if len(name) <= 100 else f"{name[:60]!r}… ({len(name)} characters)"
    message = f"archive member {shown} not extracted: {why}"
    return _problem(req_id, message, member=name.encode("utf-8", "backslashreplace").decode("utf-8"))


def _write_member(tar: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str], dest_fd: int) -> None:
    """Write a regular member below `dest_fd`, creating its directories, never following a link."""
    source = tar.extractfile(member)
    assert source is not None, "regular members have data"
    with contextlib.ExitStack() as fds:
        dir_fd = dest_fd
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=dir_fd)
            dir_fd = os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
            fds.callback(os.close, dir_fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(parts[-1], flags, 0o644, dir_fd=dir_fd), "wb") as out:
            while chunk := source.read(1 << 20):
                out.write(chunk)


def load_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a JSON or YAML manifest into a JSON-compatible dict; ManifestError when that is unsafe."""
    p = Path(path)
    try:
        with _open_regular_file(p) as f:
            data = _read_at_most(f, MANIFEST_MAX_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {p.name}: {_open_failure(p, exc)}") from None
    if len(data) > MANIFEST_MAX_BYTES:
        raise ManifestError(f"manifest {p.name} is larger than {MANIFEST_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"manifest {p.name} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        loaded = _parse_yaml(text, p.name) if p.suffix in (".yaml", ".yml") else _parse_json(text, p.name)
    except RecursionError:
        raise ManifestError(f"manifest {p.name} is nested deeper than {MANIFEST_MAX_DEPTH} levels") from None
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

    def bounded_int(literal: str) -> int:
        digits = len(literal.lstrip("-"))
        if digits > 20:  # 2**64 has 20 digits; Python refuses to convert over 4,300
            raise ManifestError(f"manifest {name}: an integer of {digits} digits does not fit in 64 bits")
        return int(literal)

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_constant=no_constant, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"manifest {name} is not valid JSON: {exc.msg} (line {exc.lineno})") from None


class YamlAlias(Exception):
    """A YAML document uses an alias (*ref) at `line`: refused before anything is constructed (a few lines of
    them expand to gigabytes)."""

    def __init__(self, line: int | str) -> None:
        super().__init__(f"an alias at line {line}")
        self.line = line


def load_plain_yaml(text: str) -> Any:
    """The YAML document `text` through the plain loader (safe tags, no duplicate keys, timestamps as strings,
    integers of 64 bits at most), after a scan that raises YamlAlias at the first alias; yaml.YAMLError for
    anything else. The one way bpfcert reads YAML: manifests, product.yaml, expected failures."""
    import yaml

    loader = _plain_yaml_loader()
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise YamlAlias(event.start_mark.line + 1 if event.start_mark else "?")
    return yaml.load(text, Loader=loader)  # a SafeLoader (libyaml's when available)


def _parse_yaml(text: str, name: str) -> Any:
    import yaml

    try:
        return load_plain_yaml(text)
    except YamlAlias as alias:
        raise ManifestError(f"manifest {name}: aliases (*ref) are not allowed (line {alias.line})") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ManifestError(f"manifest {name} is not valid safe YAML: {reason}") from None


@functools.cache
def _plain_yaml_loader() -> type[Any]:
    """A safe YAML loader (libyaml's CSafeLoader when available) that refuses duplicate keys and keeps
    timestamps as strings. Aliases are refused by load_plain_yaml before loading."""
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

    def bounded_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
        if len(node.value) > 80:  # 64 binary digits with separators; Python refuses to convert over 4,300
            reason = f"an integer of {len(node.value)} characters is too long for 64 bits"
            raise yaml.constructor.ConstructorError(None, None, reason, node.start_mark)
        value: int = base.construct_yaml_int(loader, node)
        return value

    PlainLoader.add_constructor("tag:yaml.org,2002:timestamp", timestamp_as_string)
    PlainLoader.add_constructor("tag:yaml.org,2002:int", bounded_int)
    return PlainLoader


# A node of a manifest being checked: (value, its parent's node, its key, depth)
_Node: TypeAlias = "tuple[Any, _Node | None, str | int, int]"


def _check_json_compatible(value: Any, where: str, name: str) -> None:
    """Refuse what YAML can express but JSON cannot (non-string keys, bytes, NaN), and what later JSON encoding,
    validation or printing could not take: nesting deeper than MANIFEST_MAX_DEPTH, integers outside 64 bits,
    strings that are not Unicode text (lone surrogates, which JSON's \\ud800 escapes can express). The JSON path
    of a node is spelled only for an error."""
    stack: list[_Node] = [(value, None, where, 0)]
    while stack:
        node = stack.pop()
        item, _, _, depth = node
        if isinstance(item, str):
            if not _is_text(item):
                raise ManifestError(
                    f"manifest {name}: the string at {_path(node)} holds a lone surrogate, not Unicode text"
                )
        elif isinstance(item, dict):
            if depth >= MANIFEST_MAX_DEPTH:
                raise ManifestError(
                    f"manifest {name} is nested deeper than {MANIFEST_MAX_DEPTH} levels (at {_path(node)})"
                )
            for key, child in item.items():
                if not isinstance(key, str):
                    raise ManifestError(f"manifest {name}: key {key!r} at {_path(node)} is not a string")
                if not _is_text(key):
                    raise ManifestError(
                        f"manifest {name}: a key at {_path(node)} holds a lone surrogate, not Unicode text"
                    )
                if not (isinstance(child, str) and child.isascii()):  # ASCII text, most leaves, is fine as it is
                    stack.append((child, node, key, depth + 1))
        elif isinstance(item, list):
            if depth >= MANIFEST_MAX_DEPTH:
                raise ManifestError(
                    f"manifest {name} is nested deeper than {MANIFEST_MAX_DEPTH} levels (at {_path(node)})"
                )
            stack.extend(
                (child, node, i, depth + 1)
                for i, child in enumerate(item)
                if not (isinstance(child, str) and child.isascii())
            )
        elif item is None or isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not INT_RANGE[0] <= item < INT_RANGE[1]:
                raise ManifestError(f"manifest {name}: the integer at {_path(node)} does not fit in 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ManifestError(f"manifest {name}: {item} at {_path(node)} is not a JSON number")
        else:
            raise ManifestError(f"manifest {name}: the {type(item).__name__} value at {_path(node)} is not JSON data")


def _path(node: _Node) -> str:
    """The JSON path of a node of _check_json_compatible: its root's path, then each key down to it."""
    keys: list[str | int] = []
    parent = node[1]
    while parent is not None:
        keys.append(node[2])
        node, parent = parent, parent[1]
    path = str(node[2])
    for key in reversed(keys):
        path = _child_path(path, key)
    return path


def _is_text(value: str) -> bool:
    """False if `value` holds a lone surrogate (which no UTF-8 encoder accepts)."""
    if value.isascii():  # constant time for str
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


@functools.cache
def _validator() -> tuple[Validate, dict[str, str]]:
    """The package schema's validator, and pattern -> description for readable pattern errors."""
    from bpfcert import json_schema

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
    return json_schema.validator(schema, formats=True), described


def validate_manifest(manifest: Any) -> list[SchemaError]:
    """Every violation of spec/package.schema.json (Draft 2020-12, formats asserted), sorted by JSON path."""
    validator, described = _validator()
    errors = []
    for err in validator(manifest):
        path = "$"
        for key in err.instance_path:
            path = _child_path(path, key)
        message = err.message
        pattern = err.pattern
        if isinstance(pattern, str) and pattern in described:
            message = f"{_shown_value(err.instance)} does not match: {described[pattern]}"
        errors.append(SchemaError(path, message))
    return sorted(set(errors), key=lambda e: (e.path, e.message))


def _shown_value(value: Any) -> str:
    """A JSON value for a message, long ones cut to their start and length."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else f"{text[:60]}… ({len(text)} characters)"


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
    """The path of an artifact in the package; PackageError if `rel` is not a relative path inside it or any of
    its components is a symbolic link (a package has no use for links; they may lead anywhere). A path that does
    not exist is returned as it is, for the caller to report."""
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise PackageError(f"artifact path {rel!r} is not a relative path inside the package")
    root = Path(os.path.realpath(pkg.root))
    path = root
    for part in parts:
        path /= part
        try:
            mode = os.lstat(path).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # missing: the caller reports it
        except OSError as exc:
            raise PackageError(f"artifact path {rel!r}: {exc.strerror}") from None
        if stat.S_ISLNK(mode):
            inner = path.relative_to(root).as_posix()
            raise PackageError(f"artifact path {rel!r}: {inner!r} is a symbolic link; a package must not contain links")
    return root / rel


def read_artifact(path: Path, limit: int) -> bytes:
    """Up to `limit` + 1 bytes of the regular file at `path` (from resolve_artifact), never following a link."""
    try:
        with _open_regular_file(path) as f:
            return _read_at_most(f, limit + 1)
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {_open_failure(path, exc)}") from None


def _open_regular_file(path: Path) -> BinaryIO:
    """`path` opened for reading; OSError unless it is a regular file, ELOOP if its last component is a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        f.close()
        raise OSError(errno.EINVAL, "not a regular file")
    return f


def _read_at_most(f: BinaryIO, count: int) -> bytes:
    """Up to `count` bytes of `f`, sized by the file's length: `f.read(count)` allocates all `count` bytes first
    (64 MiB for an artifact), then shrinks them. A file that grew since is read on, up to `count`."""
    size = os.fstat(f.fileno()).st_size
    data = f.read(min(count, size + 1))
    if size < len(data) < count:
        data += f.read(count - len(data))
    return data


def _open_failure(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return f"{path.name} is a symbolic link, not followed"
    return exc.strerror or str(exc)


def canonical_manifest(manifest: dict[str, Any]) -> bytes:
    """The signed form: the manifest without `signature`, as UTF-8 JSON with sorted keys and no whitespace;
    ManifestError if it has none (nested too deeply, an integer Python will not print, a lone surrogate)."""
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        text = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")
    except RecursionError:
        reason = "it is nested too deeply"
    except UnicodeEncodeError:
        reason = "a string holds a lone surrogate, not Unicode text"
    except (ValueError, TypeError) as exc:  # e.g. an integer of over 4,300 digits, a value that is not JSON
        reason = str(exc).split(";")[0]
    raise ManifestError(f"the manifest has no canonical form: {reason}")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Lowercase hex SHA-256 of a regular file's contents; PackageError for anything else, links included."""
    digest = hashlib.sha256()
    try:
        with _open_regular_file(Path(path)) as f:
            while chunk := f.read(1 << 16):  # from the heap: a 1 MiB chunk is mapped and unmapped for each file
                digest.update(chunk)
    except OSError as exc:
        raise PackageError(f"cannot read {path}: {_open_failure(Path(path), exc)}") from None
    return digest.hexdigest()
