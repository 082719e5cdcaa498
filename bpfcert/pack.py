"""`bpfcert pack`: derive a manifest from BPF objects (what they define and what their code uses) and write
a package directory whose manifest passes `bpfcert check` — or nothing at all."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfcert import SPEC_VERSION
from bpfcert.checks import check_package
from bpfcert.checks.artifacts import MAX_ARTIFACT_BYTES, MAX_PACKAGE_BYTES
from bpfcert.elf import BpfObject, extract_embedded
from bpfcert.errors import BpfcertError, FormatError
from bpfcert.knowledge.kernel import KernelVersion, format_version
from bpfcert.knowledge.licenses import spdx_for_section
from bpfcert.knowledge.sections import SectionInfo, classify_section
from bpfcert.package import MANIFEST_NAMES, open_package, validate_manifest
from bpfcert.results import Status
from bpfcert.usage import ObjectUsage, analyze

MANIFEST = "bpfpkg.json"
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Input:
    """One artifact to pack: its file name inside the package and its bytes."""

    filename: str
    data: bytes


KEY_LIMIT = 1 << 16  # bytes of a key file: a PEM key or a base64 public key is far smaller


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """A signing or public key's file: a regular file (a FIFO would block) of at most KEY_LIMIT bytes."""
    return read_regular_file(path, KEY_LIMIT)


def read_regular_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Anything else (a FIFO, a device, a directory) is
    refused without blocking on it or reading from it, a larger file without reading more than limit + 1 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BpfcertError(f"cannot read {os.fsdecode(path)}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before open(): a directory's fd would raise IsADirectoryError
        os.close(fd)
        raise BpfcertError(f"{os.fsdecode(path)} is not a regular file")
    with open(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise BpfcertError(f"cannot read {os.fsdecode(path)}: {exc.strerror}") from None
    if len(data) > limit:
        raise BpfcertError(f"{os.fsdecode(path)} is larger than {_size(limit)}")
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def _artifact_name(path: Path) -> str:
    """The input's file name, which becomes its path inside the package."""
    name = path.name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BpfcertError(f"{str(path)!r}: the file name is not valid UTF-8; rename the file") from None
    if CONTROL.search(name):
        raise BpfcertError(f"{str(path)!r}: the file name contains control characters; rename the file")
    if name in MANIFEST_NAMES:
        raise BpfcertError(f"{path}: an object cannot be named {name}, the name of the manifest; rename the file")
    return name


def read_inputs(paths: list[str]) -> list[Input]:
    """Read objects; an executable or shared library contributes the BPF objects embedded in it. Inputs must be
    regular files; the artifacts keep to PKG-ART-002's limits (64 MiB each, 256 MiB in all)."""
    out: list[Input] = []
    for path in map(Path, paths):
        name = _artifact_name(path)
        data = read_regular_file(path, MAX_PACKAGE_BYTES)
        if data[18:20] in (b"\xf7\x00", b"\x00\xf7"):  # e_machine EM_BPF, either byte order
            out.append(Input(name, data))
        else:
            embedded = extract_embedded(data)
            if not embedded:
                raise FormatError(f"{path}: neither a BPF object nor a file embedding one")
            stem = name.split(".")[0]
            out.extend(Input(f"{stem}.{i}.bpf.o", blob) for i, blob in enumerate(embedded))
    for item in out:
        if len(item.data) > MAX_ARTIFACT_BYTES:
            raise BpfcertError(
                f"{item.filename} has {len(item.data)} bytes; an artifact may have at most "
                f"{_size(MAX_ARTIFACT_BYTES)} (PKG-ART-002)"
            )
    total = sum(len(i.data) for i in out)
    if total > MAX_PACKAGE_BYTES:
        raise BpfcertError(
            f"the objects have {total} bytes, more than the {_size(MAX_PACKAGE_BYTES)} a package may hold in all "
            "(PKG-ART-002)"
        )
    names = [i.filename for i in out]
    if len(set(names)) != len(names):
        raise BpfcertError(f"two inputs share a file name: {sorted(n for n in names if names.count(n) > 1)}")
    return out


# What libbpf reads from the part of a SEC() name after the '/', per convention (libbpf 1.x's attach_kprobe,
# attach_uprobe, attach_tp, attach_raw_tp, attach_trace): a kernel function with an optional +offset, an absolute
# binary and its symbol, a category/name tracepoint, a raw tracepoint, a BTF target. Anything else -- multi-probe
# and session globs, USDT notes, syscall names -- names no single function and gives no `function`.
_OFFSET = r"(?:\+(?P<offset>0x[0-9a-fA-F]+|[0-9]+))?"
_KPROBE = re.compile(r"(?P<function>[A-Za-z0-9_.]+)" + _OFFSET)
_UPROBE = re.compile(r"(?P<binary>/[^:]+):(?P<function>[A-Za-z0-9_.]+)" + _OFFSET)
_TRACEPOINT = re.compile(r"([A-Za-z0-9_]+)/([A-Za-z0-9_]+)")
_RAW_TRACEPOINT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BTF_TARGET = re.compile(r"[A-Za-z0-9_.:/]+")


def _attach(info: SectionInfo) -> dict[str, Any]:
    """The `attach` keys the section name itself gives: only what libbpf would read from it."""
    attach: dict[str, Any] = {}
    if info.attach_type:
        attach["expected_attach_type"] = info.attach_type
    word, target = info.pattern.rstrip("+"), info.attach_target or ""
    if word.startswith(("kret", "uret")):
        attach["retprobe"] = True
    probe = None
    if word in ("kprobe", "kretprobe"):
        probe = _KPROBE.fullmatch(target)
    elif word in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s"):
        probe = _UPROBE.fullmatch(target)
    elif word in ("tracepoint", "tp") and (tp := _TRACEPOINT.fullmatch(target)):
        attach["tracepoint"] = f"{tp[1]}:{tp[2]}"
    elif word.startswith(("raw_tracepoint", "raw_tp")) and _RAW_TRACEPOINT.fullmatch(target):
        attach["tracepoint"] = target
    elif info.prog_type in ("tracing", "lsm", "ext") and _BTF_TARGET.fullmatch(target):
        attach["function"] = target
    if probe is not None:
        attach.update({k: v for k, v in probe.groupdict().items() if k != "offset" and v})
        if probe["offset"]:
            attach["offset"] = int(probe["offset"], 0)
    return attach


def derive_manifest(inputs: list[Input], name: str, version: str, license: str | None) -> dict[str, Any]:
    """The manifest that describes `inputs` truthfully."""
    artifacts, programs, maps = [], [], []
    requires = _Requires()
    licenses: set[str | None] = set()
    portable = True
    for item in inputs:
        obj = BpfObject.from_bytes(item.data, item.filename)
        usage = analyze(obj)
        artifacts.append(_artifact_entry(item, obj))
        programs.extend(_program_entries(item.filename, obj))
        maps.extend(_map_entries(item.filename, obj))
        requires.add(usage)
        licenses.add(obj.license)
        portable = portable and _portable(obj, usage)
    return {
        "specVersion": SPEC_VERSION,
        "name": name,
        "version": version,
        "summary": f"{name}, packed by bpfcert from {', '.join(i.filename for i in inputs)}",
        "license": license or _spdx(licenses),
        "conformsTo": ["package-core", "package-portable"] if portable else ["package-core"],
        "artifacts": artifacts,
        "programs": programs,
        "maps": maps,
        "requires": requires.to_json(),
    }


def _artifact_entry(item: Input, obj: BpfObject) -> dict[str, Any]:
    return {"path": item.filename, "sha256": hashlib.sha256(item.data).hexdigest(), "arch": obj.arch, "kind": "elf"}


def _program_entries(artifact: str, obj: BpfObject) -> list[dict[str, Any]]:
    """The `programs` entries of one object; BpfcertError for a section a manifest cannot describe."""
    entries = []
    for prog in obj.programs:
        info = classify_section(prog.section)
        if info is None:
            raise BpfcertError(
                f"{artifact}: program {prog.name} is in section {prog.section!r}, which follows no libbpf "
                "convention; its program type cannot be derived"
            )
        if not prog.section.isprintable() or any(c.isspace() for c in prog.section):
            raise BpfcertError(
                f"{artifact}: program {prog.name} is in section {prog.section!r}; a manifest cannot name a "
                "section with spaces or control characters (PKG-MAN-002)"
            )
        entry: dict[str, Any] = {
            "name": prog.name,
            "artifact": artifact,
            "section": prog.section,
            "type": info.prog_type,
        }
        if attach := _attach(info):
            entry["attach"] = attach
        entries.append(entry)
    return entries


def _map_entries(artifact: str, obj: BpfObject) -> list[dict[str, Any]]:
    """The `maps` entries of one object: its user-declared maps (not .rodata/.data/.bss)."""
    return [
        {
            "name": m.name,
            "artifact": artifact,
            "type": m.type,
            "key_size": m.key_size or 0,
            "value_size": m.value_size or 0,
            "max_entries": m.max_entries or 0,
            "pinning": m.pinning,
        }
        for m in obj.maps
        if m.kind != "internal"
    ]


def _portable(obj: BpfObject, usage: ObjectUsage) -> bool:
    """Whether an object can claim package-portable: it has BTF, and CO-RE relocations if it reads kernel structs."""
    has_core = obj.btf_ext is not None and any(obj.btf_ext.core_relos.values())
    return obj.btf is not None and (has_core or not usage.kernel_struct_reads)


@dataclass
class _Requires:
    """The manifest's `requires`, gathered over the objects' usage."""

    helpers: set[str] = field(default_factory=set)
    kfuncs: set[str] = field(default_factory=set)
    prog_types: set[str] = field(default_factory=set)
    map_types: set[str] = field(default_factory=set)
    kernel: KernelVersion = (0, 0)
    btf: bool = False

    def add(self, usage: ObjectUsage) -> None:
        self.helpers |= usage.helpers
        self.kfuncs |= usage.kfuncs
        self.prog_types |= usage.prog_types
        self.map_types |= usage.map_types
        self.kernel = max(self.kernel, usage.min_kernel)
        self.btf = self.btf or bool(usage.btf_needs)

    def to_json(self) -> dict[str, Any]:
        return {
            "kernel": f">={format_version(self.kernel)}",
            "btf": self.btf,
            "prog_types": sorted(self.prog_types),
            "map_types": sorted(self.map_types),
            "helpers": sorted(self.helpers),
            "kfuncs": sorted(self.kfuncs),
        }


def floor_reasons(inputs: list[Input]) -> list[str]:
    """What sets the kernel floor `derive_manifest` writes: '5.17: helper bpf_loop', '5.8: xdp_md.egress_ifindex'."""
    from bpfcert.usage import kernel_floor

    return kernel_floor(analyze(BpfObject.from_bytes(i.data, i.filename)) for i in inputs)[1]


def _spdx(licenses: set[str | None]) -> str:
    if len(licenses) != 1:
        raise BpfcertError(
            f"objects carry different license sections {sorted(map(str, licenses))}; pass --license"
        )
    (text,) = licenses
    spdx = spdx_for_section(text)
    if spdx is None:
        raise BpfcertError(f"cannot map license section {text!r} to SPDX; pass --license")
    return spdx


def default_name(path: str) -> str:
    stem = Path(path).name.split(".")[0].lower()
    name = re.sub(r"[^a-z0-9-]+", "-", stem).strip("-")[:63]
    return name or "package"


def write_package(out: Path, manifest: dict[str, Any], inputs: list[Input], force: bool = False) -> Path:
    """Write the package directory (the artifacts and bpfpkg.json) only if it is conformant: the manifest is
    validated against the schema, the package staged in a directory next to `out` and checked, then moved into
    place. Whatever fails, nothing is left at `out` or beside it. With `force`, write into a non-empty `out`."""
    text = manifest_bytes(manifest)
    _check_output(out, force)
    stage = _stage_next_to(out)
    try:
        for item in inputs:
            _write_new(stage / item.filename, item.data)
        _write_new(stage / MANIFEST, text)
        _verify(stage)
        _move_into_place(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return out / MANIFEST


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The manifest as UTF-8 JSON, if it is JSON and valid against spec/package.schema.json."""
    try:
        text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except ValueError as exc:
        raise BpfcertError(f"the manifest would not be JSON (NaN, Infinity or a huge integer): {exc}") from None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise BpfcertError("the manifest would hold text that is not Unicode (a lone surrogate)") from None
    try:
        errors = validate_manifest(manifest)
    except ValueError:  # jsonschema_rs cannot convert an instance nested beyond its recursion limit
        raise BpfcertError("the manifest is nested too deeply to validate") from None
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise BpfcertError(f"the manifest would fail the schema: {'; '.join(map(str, errors[:3]))}{more}")
    return data


def _check_output(out: Path, force: bool) -> None:
    try:
        if not out.exists():
            return
        if not out.is_dir():
            raise BpfcertError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not force:
            raise BpfcertError(f"{out} exists and is not empty (use --force)")
    except OSError as exc:
        raise BpfcertError(f"cannot write {out}: {exc.strerror}") from None


def _stage_next_to(out: Path) -> Path:
    """A new private directory beside `out` (same file system, so the package can be renamed into place)."""
    parent = out.absolute().parent
    if not parent.is_dir():
        raise BpfcertError(f"cannot write {out}: {parent} is not a directory")
    try:
        return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise BpfcertError(f"cannot write {out}: {exc.strerror}") from None


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        with open(fd, "wb") as f:
            f.write(data)
    except FileExistsError:
        raise BpfcertError(f"two files of the package would be named {path.name}") from None
    except OSError as exc:
        raise BpfcertError(f"cannot write {path.name}: {exc.strerror}") from None


def _verify(stage: Path) -> None:
    """`bpfcert check` on the staged package; BpfcertError naming the MUST requirements it fails."""
    with open_package(stage) as pkg:
        report = check_package(pkg)
    failed = [r for r in report.results if r.level == "MUST" and r.status in (Status.FAIL, Status.ERROR)]
    if failed:
        shown = "; ".join(f"{r.id}: {r.message}" for r in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        raise BpfcertError(f"the package would not be conformant: {shown}{more}")


def _move_into_place(stage: Path, out: Path) -> None:
    """Rename the staged directory to `out` (absent or empty), or with --force move its files into `out`."""
    try:
        if out.is_dir() and any(out.iterdir()):
            names = sorted(p.name for p in stage.iterdir())
            clash = [n for n in names if (out / n).is_dir()]
            if clash:
                raise BpfcertError(f"cannot write {out}: {', '.join(clash)} would replace a directory")
            other = [n for n in MANIFEST_NAMES if n != MANIFEST and (out / n).exists()]
            if other:
                raise BpfcertError(f"{out} holds {other[0]}, which would stand beside the new {MANIFEST}; remove it")
            for name in sorted(names, key=lambda n: n == MANIFEST):  # the manifest last
                os.replace(stage / name, out / name)
        else:
            umask = os.umask(0o022)
            os.umask(umask)
            stage.chmod(0o777 & ~umask)
            os.rename(stage, out)
    except OSError as exc:
        raise BpfcertError(f"cannot write {out}: {exc.strerror}") from None
