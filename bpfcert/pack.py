"""`bpfcert pack`: derive a manifest from BPF objects (what they define and what their code uses) and write
a package directory whose manifest passes `bpfcert check`."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcert import SPEC_VERSION
from bpfcert.elf import BpfObject, extract_embedded
from bpfcert.errors import BpfcertError, FormatError
from bpfcert.knowledge.kernel import format_version
from bpfcert.knowledge.licenses import spdx_for_section
from bpfcert.knowledge.sections import SectionInfo, classify_section
from bpfcert.usage import analyze

MANIFEST = "bpfpkg.json"


@dataclass(frozen=True)
class Input:
    """One artifact to pack: its file name inside the package and its bytes."""

    filename: str
    data: bytes


def read_inputs(paths: list[str]) -> list[Input]:
    """Read objects; an executable or shared library contributes the BPF objects embedded in it."""
    out: list[Input] = []
    for path in map(Path, paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise BpfcertError(f"{path}: {exc.strerror}") from None
        if data[18:20] in (b"\xf7\x00", b"\x00\xf7"):  # e_machine EM_BPF, either byte order
            out.append(Input(path.name, data))
            continue
        embedded = extract_embedded(data)
        if not embedded:
            raise FormatError(f"{path}: neither a BPF object nor a file embedding one")
        stem = path.name.split(".")[0]
        out.extend(Input(f"{stem}.{i}.bpf.o", blob) for i, blob in enumerate(embedded))
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
    helpers: set[str] = set()
    kfuncs: set[str] = set()
    prog_types: set[str] = set()
    map_types: set[str] = set()
    needed = (0, 0)
    licenses: set[str | None] = set()
    portable = True
    needs_btf = False
    for item in inputs:
        obj = BpfObject.from_bytes(item.data, item.filename)
        usage = analyze(obj)
        artifacts.append(
            {
                "path": item.filename,
                "sha256": hashlib.sha256(item.data).hexdigest(),
                "arch": obj.arch,
                "kind": "elf",
            }
        )
        for prog in obj.programs:
            info = classify_section(prog.section)
            if info is None:
                raise BpfcertError(
                    f"{item.filename}: program {prog.name} is in section {prog.section!r}, which follows no libbpf "
                    "convention; its program type cannot be derived"
                )
            if not prog.section.isprintable() or any(c.isspace() for c in prog.section):
                raise BpfcertError(
                    f"{item.filename}: program {prog.name} is in section {prog.section!r}; a manifest cannot name a "
                    "section with spaces or control characters (PKG-MAN-002)"
                )
            entry: dict[str, Any] = {
                "name": prog.name,
                "artifact": item.filename,
                "section": prog.section,
                "type": info.prog_type,
            }
            if attach := _attach(info):
                entry["attach"] = attach
            programs.append(entry)
        for m in obj.maps:
            if m.kind == "internal":
                continue
            maps.append(
                {
                    "name": m.name,
                    "artifact": item.filename,
                    "type": m.type,
                    "key_size": m.key_size or 0,
                    "value_size": m.value_size or 0,
                    "max_entries": m.max_entries or 0,
                    "pinning": m.pinning,
                }
            )
        helpers |= usage.helpers
        kfuncs |= usage.kfuncs
        prog_types |= usage.prog_types
        map_types |= usage.map_types
        needed = max(needed, usage.min_kernel)
        needs_btf = needs_btf or bool(usage.btf_needs)
        licenses.add(obj.license)
        has_core = obj.btf_ext is not None and any(obj.btf_ext.core_relos.values())
        portable = portable and obj.btf is not None and (has_core or not usage.kernel_struct_reads)
    spdx = license or _spdx(licenses)
    manifest: dict[str, Any] = {
        "specVersion": SPEC_VERSION,
        "name": name,
        "version": version,
        "summary": f"{name}, packed by bpfcert from {', '.join(i.filename for i in inputs)}",
        "license": spdx,
        "conformsTo": ["package-core", "package-portable"] if portable else ["package-core"],
        "artifacts": artifacts,
        "programs": programs,
        "maps": maps,
        "requires": {
            "kernel": f">={format_version(needed)}",
            "btf": needs_btf,
            "prog_types": sorted(prog_types),
            "map_types": sorted(map_types),
            "helpers": sorted(helpers),
            "kfuncs": sorted(kfuncs),
        },
    }
    return manifest


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
    """Write the package directory: the artifacts and bpfpkg.json."""
    if out.exists() and any(out.iterdir()) and not force:
        raise BpfcertError(f"{out} exists and is not empty (use --force)")
    out.mkdir(parents=True, exist_ok=True)
    for item in inputs:
        (out / item.filename).write_bytes(item.data)
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
