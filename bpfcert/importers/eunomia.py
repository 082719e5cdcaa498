"""eunomia-bpf `package.json`: a zlib-compressed, base64-encoded object plus `meta.bpf_skel` (programs, maps,
.rodata variables) and `meta.export_types` (the records a ring buffer or perf buffer carries)."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcert.checks.artifacts import MAX_ARTIFACT_BYTES, MAX_PACKAGE_BYTES
from bpfcert.errors import BpfcertError
from bpfcert.importers import read_json_file
from bpfcert.pack import Input, default_name, derive_manifest

SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
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


@dataclass(frozen=True)
class Where:
    """Typed access to package.json values; errors name the file and the JSON path."""

    file: str
    path: str = "$"

    def at(self, key: str | int) -> Where:
        return Where(self.file, f"{self.path}[{key}]" if isinstance(key, int) else f"{self.path}.{key}")

    def get(self, parent: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        """parent[key] if it is of the JSON type(s) `kind` (a boolean is not an integer); `default` if absent
        or null."""
        value = parent.get(key)
        if value is None:
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if type(value) not in kinds:
            wanted = " or ".join(_JSON_NAMES[k] for k in kinds)
            raise BpfcertError(f"{self.file}: {self.at(key).path} must be {wanted}, not {_JSON_NAMES[type(value)]}")
        return value

    def require(self, parent: dict[str, Any], key: str, kind: type) -> Any:
        value = self.get(parent, key, kind, None)
        if value is None:
            raise BpfcertError(f"{self.file}: {self.path} has no {key!r}")
        return value

    def objects(self, parent: dict[str, Any], key: str) -> list[tuple[Where, dict[str, Any]]]:
        """The array parent[key] (empty if absent), each item an object, with its location."""
        out = []
        for i, item in enumerate(self.get(parent, key, list, [])):
            at = self.at(key).at(i)
            if not isinstance(item, dict):
                raise BpfcertError(f"{self.file}: {at.path} must be an object, not {_JSON_NAMES[type(item)]}")
            out.append((at, item))
        return out


_JSON_NAMES: dict[type, str] = {
    dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number", bool: "a boolean"
}  # fmt: skip


def _object(pkg: dict[str, Any], where: Where) -> bytes:
    encoded = where.get(pkg, "bpf_object", str, None)
    if encoded is None:
        raise BpfcertError(f"{where.file} has no bpf_object")
    try:
        blob = base64.b64decode(encoded, validate=True)
        inflate = zlib.decompressobj()
        data = inflate.decompress(blob, MAX_ARTIFACT_BYTES)
    except (binascii.Error, zlib.error) as exc:
        raise BpfcertError(f"bpf_object is not base64(zlib(ELF)): {exc}") from None
    if inflate.unconsumed_tail:
        raise BpfcertError(f"bpf_object decompresses to more than {MAX_ARTIFACT_BYTES >> 20} MiB (PKG-ART-002)")
    size = pkg.get("bpf_object_size")
    if isinstance(size, int) and size != len(data):
        raise BpfcertError(f"bpf_object decompresses to {len(data)} bytes, bpf_object_size says {size}")
    return data


def import_eunomia(path: str) -> tuple[dict[str, Any], list[Input]]:
    pkg = read_json_file(path, MAX_PACKAGE_BYTES)
    top = Where(path)
    if not isinstance(pkg, dict):
        raise BpfcertError(f"{path}: top level must be an object")
    meta = top.get(pkg, "meta", dict, {})
    skel = top.at("meta").get(meta, "bpf_skel", dict, {})
    at_skel = top.at("meta").at("bpf_skel")
    obj_name = at_skel.get(skel, "obj_name", str, "") or Path(path).stem
    doc = at_skel.get(skel, "doc", dict, {})
    at_doc = at_skel.at("doc")
    version = at_doc.get(doc, "version", str, "")
    inputs = [Input(f"{default_name(obj_name)}.bpf.o", _object(pkg, top))]
    manifest = derive_manifest(
        inputs, default_name(obj_name), version if SEMVER.match(version) else "0.1.0", None
    )
    if brief := at_doc.get(doc, "brief", str, ""):
        manifest["summary"] = brief
    if details := at_doc.get(doc, "details", str, "") or at_doc.get(doc, "description", str, ""):
        manifest["description"] = details
    service: dict[str, Any] = {}
    if tunables := _tunables(skel, at_skel):
        service["tunables"] = tunables
    if exports := _exports(meta, top.at("meta"), manifest["maps"]):
        service["exports"] = exports
    if service:
        manifest["service"] = service
        manifest["conformsTo"] = [*manifest["conformsTo"], "package-service"]
    manifest["x-eunomia"] = {"eunomia_version": top.get(pkg, "eunomia_version", str, None), "obj_name": obj_name}
    return manifest, inputs


def _tunables(skel: dict[str, Any], where: Where) -> list[dict[str, Any]]:
    """The .rodata variables of a type the standard knows."""
    tunables = []
    for at, section in where.objects(skel, "data_sections"):
        if not at.get(section, "name", str, "").startswith(".rodata"):
            continue
        for var_at, var in at.objects(section, "variables"):
            name = var_at.require(var, "name", str)
            c_type = var_at.require(var, "type", str)
            if c_type not in TUNABLE_TYPES:
                continue
            tunable: dict[str, Any] = {"name": name, "type": TUNABLE_TYPES[c_type]}
            default = var_at.get(var, "value", (bool, int, str), None)
            if default is not None:
                tunable["default"] = default
            if description := var_at.get(var, "description", str, ""):
                tunable["description"] = description
            tunables.append(tunable)
    return tunables


def _exports(meta: dict[str, Any], where: Where, maps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The record types eunomia exports, carried by the package's first ring buffer or perf buffer."""
    event_maps = [m for m in maps if m["type"] in EVENT_MAP_TYPES]
    exports = []
    for at, export_type in where.objects(meta, "export_types"):
        properties = {
            member_at.require(member, "name", str): {"type": _json_type(member_at.require(member, "type", str))}
            for member_at, member in at.objects(export_type, "members")
        }
        if not event_maps:
            continue
        target = event_maps[0]
        name = at.get(export_type, "name", str, target["name"])
        exports.append(
            {
                "name": name,
                "map": target["name"],
                "kind": EVENT_MAP_TYPES[target["type"]],
                "record": {"title": name, "type": "object", "properties": properties},
            }
        )
    return exports
