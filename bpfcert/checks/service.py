"""Service interface checks: exports name real maps (PKG-SVC-001) whose BTF record type matches the
declared record schema (PKG-SVC-002); tunables are .rodata variables of the declared type (PKG-SVC-003)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from bpfcert.checks.context import Artifact, Context
from bpfcert.checks.registry import check
from bpfcert.results import Result

if TYPE_CHECKING:
    from bpfcert.btf import Btf, BtfType

BTF_INT_SIGNED, BTF_INT_BOOL = 1, 4  # BTF_KIND_INT encoding bits (linux/btf.h)
# Exports of these kinds must sit on a map of that type; "map" exports on any other type.
EXPORT_MAP_TYPES = {"ringbuf": "ringbuf", "perf_event_array": "perf_event_array"}


def _services(ctx: Context, key: str) -> list[tuple[str, dict[str, Any]]]:
    """(JSON path, item) of every service export or tunable."""
    service = ctx.manifest.get("service", {})
    items = service.get(key, []) if isinstance(service, dict) else []
    return [(f"$.service.{key}[{i}]", item) for i, item in enumerate(items) if isinstance(item, dict)]


def _export_map(ctx: Context, export: dict[str, Any]) -> tuple[Artifact | None, Any, str | None]:
    """(artifact, MapDef, problem) for the map an export names; an artifact without object when it did not load."""
    name = export["map"]
    decl = next((d for d in ctx.declared("maps") if d["name"] == name), None)
    if decl is None:
        return None, None, f"export {export['name']}: map {name} is not declared under maps"
    art = ctx.artifact(decl["artifact"])
    if art is None or art.obj is None:
        return art, None, None
    found = next((m for m in art.obj.maps if m.name == name), None)
    if found is None:
        return art, None, f"export {export['name']}: map {name} does not exist in {art.name}"
    return art, found, None


@check("PKG-SVC-001", absent="the manifest declares no service exports")
def exports_name_maps(ctx: Context) -> Iterator[Result]:
    service = ctx.manifest.get("service")
    if not isinstance(service, dict) or not (service.get("exports") or service.get("tunables")):
        yield ctx.failed(
            "the package-service profile demands a service interface, but the manifest has no service exports "
            "or tunables",
            path="$.service",
            expected="service.exports or service.tunables",
            actual=service,
        )
        return
    for path, export in _services(ctx, "exports"):
        subject = f"export:{export['name']}"
        art, found, problem = _export_map(ctx, export)
        if problem:
            yield ctx.failed(problem, subject=subject, path=f"{path}.map")
            continue
        if found is None:
            if art is not None:
                yield ctx.not_loaded(art, subject=subject)
            continue
        kind = export.get("kind", "map")
        want = EXPORT_MAP_TYPES.get(kind)
        if (want and found.type != want) or (not want and found.type in EXPORT_MAP_TYPES.values()):
            yield ctx.failed(
                f"export {export['name']} is a {kind} export but map {found.name} is a {found.type}",
                subject=subject,
                path=path,
                expected=want or f"a map type other than {' or '.join(EXPORT_MAP_TYPES.values())}",
                actual=found.type,
            )
        else:
            yield ctx.passed(f"export {export['name']} -> {found.type} {found.name}", subject=subject)


def _json_type(btf: Btf, type_id: int) -> str:
    """The JSON Schema type a BTF type's values take in a record."""
    t = btf.resolve(type_id)
    if t.kind in ("INT", "ENUM", "ENUM64", "PTR"):
        return "boolean" if t.kind == "INT" and int(t.extra.get("encoding", 0)) & BTF_INT_BOOL else "integer"
    if t.kind == "FLOAT":
        return "number"
    if t.kind == "ARRAY":
        elem = btf.resolve(int(t.extra["elem_type"]))
        return "string" if elem.kind == "INT" and elem.size == 1 else "array"
    return "object"


def _record_problems(btf: Btf, type_id: int, record: dict[str, Any]) -> list[str]:
    struct = btf.resolve(type_id)
    if struct.kind not in ("STRUCT", "UNION"):
        return [f"BTF type {struct.name or struct.id} is a {struct.kind}, records need a struct"]
    members = {m.name: _json_type(btf, m.type) for m in struct.members if m.name}
    props = record.get("properties", {})
    problems = [f"member {n} missing from the record schema" for n in sorted(members.keys() - props.keys())]
    problems += [f"property {n} is no member of struct {struct.name}" for n in sorted(props.keys() - members.keys())]
    for name in sorted(members.keys() & props.keys()):
        declared = props[name].get("type") if isinstance(props[name], dict) else None
        allowed = {members[name]} | ({"number"} if members[name] == "integer" else set())
        if declared not in allowed:
            problems.append(f"property {name} has type {declared}, struct {struct.name} gives {members[name]}")
    return problems


@check("PKG-SVC-002", absent="the manifest declares no service exports")
def record_schema_matches_btf(ctx: Context) -> Iterator[Result]:
    for path, export in _services(ctx, "exports"):
        subject = f"export:{export['name']}"
        art, found, problem = _export_map(ctx, export)
        if problem or art is None:
            continue  # PKG-SVC-001 reports it
        if art.obj is None:
            yield ctx.not_loaded(art, subject=subject)
            continue
        if found is None:
            continue
        btf = art.obj.btf
        record = export.get("record", {})
        if btf is None:
            yield ctx.failed(
                f"export {export['name']}: {art.name} has no BTF",
                subject=subject,
                expected=".BTF describing the map's values",
                actual=None,
            )
            continue
        type_id = found.value_type_id
        if not type_id:
            title = record.get("title")
            struct = btf.find(str(title), "STRUCT") if title else None
            if struct is None:
                yield ctx.failed(
                    f"export {export['name']}: map {found.name} has no BTF value type; the record schema's "
                    f"title must name the record struct (title {title!r} found no struct)",
                    subject=subject,
                    path=f"{path}.record.title",
                    expected="the name of a BTF struct",
                    actual=title,
                )
                continue
            type_id = struct.id
        problems = _record_problems(btf, type_id, record)
        if problems:
            yield ctx.failed(
                f"export {export['name']}: " + "; ".join(problems),
                subject=subject,
                path=f"{path}.record",
                problems=problems,
            )
        else:
            yield ctx.passed(f"export {export['name']}: record schema matches BTF", subject=subject)


# tunable type -> (size in bytes, signed); "bool" is a 1-byte BTF INT with the BOOL encoding
TUNABLE_TYPES = {
    "u8": (1, False), "u16": (2, False), "u32": (4, False), "u64": (8, False),
    "s8": (1, True), "s16": (2, True), "s32": (4, True), "s64": (8, True),
    "bool": (1, False),
}  # fmt: skip


def _tunable_type_matches(btf: Btf, t: BtfType, declared: str) -> bool:
    """Whether BTF type `t` (resolved) is the tunable type `declared` (u8..u64, s8..s64, bool, char[N])."""
    text = re.fullmatch(r"char\[(\d+)\]", declared)
    if text:
        if t.kind != "ARRAY":
            return False
        elem = btf.resolve(int(t.extra["elem_type"]))
        return elem.kind == "INT" and elem.size == 1 and int(t.extra["nelems"]) == int(text.group(1))
    want = TUNABLE_TYPES.get(declared)
    if t.kind != "INT" or want is None:
        return False
    encoding = int(t.extra.get("encoding", 0))
    return (t.size, bool(encoding & BTF_INT_SIGNED)) == want and bool(encoding & BTF_INT_BOOL) == (declared == "bool")


def _default_problem(declared: str, default: Any) -> str | None:
    """Why `default` cannot be the initial value of a tunable of type `declared`, or None when it can."""
    text = re.fullmatch(r"char\[(\d+)\]", declared)
    if text:
        size = int(text.group(1))
        if not isinstance(default, str):
            return f"a {declared} default must be a string, not {type(default).__name__}"
        if len(default.encode("utf-8")) >= size:
            return f"{default!r} does not fit {declared} with its terminating NUL"
        return None
    if declared == "bool":
        return None if isinstance(default, bool) else f"a bool default must be true or false, not {default!r}"
    width, signed = TUNABLE_TYPES[declared]
    if isinstance(default, bool) or not isinstance(default, int):
        return f"a {declared} default must be an integer, not {default!r}"
    low, high = (-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1) if signed else (0, (1 << (8 * width)) - 1)
    return None if low <= default <= high else f"{default} is outside {declared}'s range {low}..{high}"


def _rodata_vars(btf: Btf) -> dict[str, int]:
    """Variable name -> type id for every VAR in a .rodata* DATASEC."""
    out: dict[str, int] = {}
    for t in btf.types:
        if t.kind == "DATASEC" and t.name.startswith(".rodata"):
            for var_id, _offset, _size in t.extra.get("vars", []):
                var = btf.types[var_id]
                if var.type is not None:
                    out[var.name] = var.type
    return out


@check("PKG-SVC-003", absent="the manifest declares no tunables")
def tunables_are_rodata(ctx: Context) -> Iterator[Result]:
    variables: dict[str, tuple[Btf, int]] = {}
    for art in ctx.loaded():
        assert art.obj is not None
        if art.obj.btf is not None:
            btf = art.obj.btf
            variables.update({n: (btf, tid) for n, tid in _rodata_vars(btf).items()})
    unloaded = [a for a in ctx.artifacts if a.obj is None]
    for path, tunable in _services(ctx, "tunables"):
        name, declared = tunable["name"], str(tunable.get("type", "")).lstrip("_")
        subject = f"tunable:{name}"
        if name not in variables:
            if unloaded:  # the variable may be in an object that did not load
                yield ctx.not_loaded(unloaded[0], subject=subject)
                continue
            yield ctx.failed(
                f"tunable {name}: no .rodata variable {name} in BTF",
                subject=subject,
                path=f"{path}.name",
                expected=f"a .rodata variable {name}",
                actual=sorted(variables),
            )
            continue
        btf, type_id = variables[name]
        t = btf.resolve(type_id)
        problem = _default_problem(declared, tunable["default"]) if "default" in tunable else None
        if _tunable_type_matches(btf, t, declared) and problem:
            yield ctx.failed(
                f"tunable {name}: default {problem}",
                subject=subject,
                path=f"{path}.default",
                expected=f"a value of type {declared}",
                actual=tunable["default"],
            )
        elif _tunable_type_matches(btf, t, declared):
            yield ctx.passed(f"tunable {name} is a .rodata {declared}", subject=subject)
        else:
            found = f"{t.kind} {t.name or ''} of size {t.size}".replace("  ", " ")
            yield ctx.failed(
                f"tunable {name} is declared {tunable.get('type')} but BTF says {found}",
                subject=subject,
                path=f"{path}.type",
                expected=tunable.get("type"),
                actual=found,
            )
