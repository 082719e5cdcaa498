"""bpfman bytecode images: the object from the image's single layer plus the `io.ebpf.programs` and
`io.ebpf.maps` label values (JSON objects: name -> type)."""

from __future__ import annotations

from typing import Any

from bpfcert.errors import BpfcertError
from bpfcert.importers import parse_json, read_json_file
from bpfcert.pack import Input, default_name, derive_manifest, read_inputs
from bpfcert.package import MANIFEST_MAX_BYTES

# bpfman's program type names -> kernel program types (bpfman names attach flavours, the kernel types).
PROGRAM_TYPES = {
    "tc": "sched_cls", "tcx": "sched_cls", "uprobe": "kprobe", "uretprobe": "kprobe", "kretprobe": "kprobe",
    "fentry": "tracing", "fexit": "tracing",
}  # fmt: skip
MAP_TYPES = {
    "per_cpu_array": "percpu_array",
    "per_cpu_hash": "percpu_hash",
    "lru_per_cpu_hash": "lru_percpu_hash",
}


def _label(value: str, what: str) -> dict[str, str]:
    """A label value given inline as JSON or as @file."""
    data = read_json_file(value[1:], MANIFEST_MAX_BYTES) if value.startswith("@") else parse_json(value, what)
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise BpfcertError(f"{what} must be a JSON object mapping names to type names")
    return data


def import_bpfman(obj_path: str, programs_label: str, maps_label: str) -> tuple[dict[str, Any], list[Input]]:
    programs = _label(programs_label, "io.ebpf.programs")
    maps = _label(maps_label, "io.ebpf.maps")
    inputs = read_inputs([obj_path])
    manifest = derive_manifest(inputs, default_name(obj_path), "0.1.0", None)
    derived_programs = {p["name"]: p for p in manifest["programs"]}
    for name, label_type in programs.items():
        prog = derived_programs.get(name)
        if prog is None:
            raise BpfcertError(f"io.ebpf.programs names {name}, which the object does not define")
        wanted = PROGRAM_TYPES.get(label_type, label_type)
        if prog["type"] != wanted:
            raise BpfcertError(
                f"io.ebpf.programs says {name} is {label_type!r}, but its section {prog['section']!r} makes it "
                f"{prog['type']!r}"
            )
    derived_maps = {m["name"]: m for m in manifest["maps"]}
    for name, label_type in maps.items():
        found = derived_maps.get(name)
        if found is None:
            raise BpfcertError(f"io.ebpf.maps names {name}, which the object does not define")
        if found["type"] != MAP_TYPES.get(label_type, label_type):
            raise BpfcertError(
                f"io.ebpf.maps says {name} is {label_type!r}, the object defines a {found['type']}"
            )
    manifest["x-bpfman"] = {"io.ebpf.programs": programs, "io.ebpf.maps": maps}
    return manifest, inputs
