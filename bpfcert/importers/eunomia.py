"""eunomia-bpf `package.json`: a zlib-compressed, base64-encoded object plus `meta.bpf_skel` (programs, maps,
.rodata variables) and `meta.export_types` (the records a ring buffer or perf buffer carries)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from pathlib import Path
from typing import Any

from bpfcert.errors import BpfcertError
from bpfcert.pack import Input, default_name, derive_manifest

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
MAX_OBJECT = 64 << 20
# C type spellings eunomia records -> tunable types of the standard
TUNABLE_TYPES = {
    "bool": "bool", "_Bool": "bool", "char": "s8", "unsigned char": "u8", "short": "s16", "unsigned short": "u16",
    "int": "s32", "unsigned int": "u32", "long": "s64", "unsigned long": "u64", "long long": "s64",
    "unsigned long long": "u64", "__u8": "u8", "__u16": "u16", "__u32": "u32", "__u64": "u64", "__s8": "s8",
    "__s16": "s16", "__s32": "s32", "__s64": "s64", "u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64",
    "s8": "s8", "s16": "s16", "s32": "s32", "s64": "s64", "pid_t": "s32",
}  # fmt: skip
EVENT_MAP_TYPES = {"ringbuf": "ringbuf", "perf_event_array": "perf_event_array"}


def _json_type(c_type: str) -> str:
    c_type = c_type.strip()
    if re.fullmatch(r"(unsigned )?char\[\d+\]", c_type):
        return "string"
    if c_type.endswith("]"):
        return "array"
    if TUNABLE_TYPES.get(c_type) == "bool":
        return "boolean"
    if c_type in ("float", "double"):
        return "number"
    return "integer"


def _object(pkg: dict[str, Any]) -> bytes:
    try:
        blob = base64.b64decode(str(pkg["bpf_object"]), validate=True)
        data = zlib.decompressobj().decompress(blob, MAX_OBJECT)
    except KeyError:
        raise BpfcertError("package.json has no bpf_object") from None
    except (binascii.Error, zlib.error) as exc:
        raise BpfcertError(f"bpf_object is not base64(zlib(ELF)): {exc}") from None
    size = pkg.get("bpf_object_size")
    if isinstance(size, int) and size != len(data):
        raise BpfcertError(f"bpf_object decompresses to {len(data)} bytes, bpf_object_size says {size}")
    return data


def _object_field(parent: dict[str, Any], key: str) -> dict[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def import_eunomia(path: str) -> tuple[dict[str, Any], list[Input]]:
    try:
        pkg = json.loads(Path(path).read_text())
    except OSError as exc:
        raise BpfcertError(f"{path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BpfcertError(f"{path} is not JSON: {exc}") from None
    if not isinstance(pkg, dict):
        raise BpfcertError(f"{path}: top level must be an object")
    meta = _object_field(pkg, "meta")
    skel = _object_field(meta, "bpf_skel")
    obj_name = str(skel.get("obj_name") or Path(path).stem)
    doc = _object_field(skel, "doc")
    version = str(doc.get("version", ""))
    inputs = [Input(f"{default_name(obj_name)}.bpf.o", _object(pkg))]
    manifest = derive_manifest(
        inputs, default_name(obj_name), version if SEMVER.match(version) else "0.1.0", None
    )
    if doc.get("brief"):
        manifest["summary"] = str(doc["brief"])
    if doc.get("details") or doc.get("description"):
        manifest["description"] = str(doc.get("details") or doc.get("description"))
    service: dict[str, Any] = {}
    tunables = [
        {
            "name": str(var["name"]),
            "type": TUNABLE_TYPES[str(var["type"])],
            **({"default": var["value"]} if "value" in var else {}),
            **({"description": str(var["description"])} if var.get("description") else {}),
        }
        for section in skel.get("data_sections", [])
        if isinstance(section, dict) and str(section.get("name", "")).startswith(".rodata")
        for var in section.get("variables", [])
        if isinstance(var, dict) and str(var.get("type")) in TUNABLE_TYPES
    ]
    if tunables:
        service["tunables"] = tunables
    event_maps = [m for m in manifest["maps"] if m["type"] in EVENT_MAP_TYPES]
    exports = []
    for export_type in meta.get("export_types", []):
        if not isinstance(export_type, dict) or not event_maps:
            continue
        target = event_maps[0]
        members = [m for m in export_type.get("members", []) if isinstance(m, dict)]
        exports.append(
            {
                "name": str(export_type.get("name", target["name"])),
                "map": target["name"],
                "kind": EVENT_MAP_TYPES[target["type"]],
                "record": {
                    "title": str(export_type.get("name")),
                    "type": "object",
                    "properties": {str(m["name"]): {"type": _json_type(str(m["type"]))} for m in members},
                },
            }
        )
    if exports:
        service["exports"] = exports
    if service:
        manifest["service"] = service
        manifest["conformsTo"] = [*manifest["conformsTo"], "package-service"]
    manifest["x-eunomia"] = {"eunomia_version": pkg.get("eunomia_version"), "obj_name": obj_name}
    return manifest, inputs
