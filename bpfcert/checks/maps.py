"""Map checks: declared maps exist as declared (PKG-MAP-001), no legacy map sections (PKG-MAP-002),
preserved maps exist (PKG-LIF-001)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result

# unset sizes (ring buffers have no key or value) count as 0, as the kernel reports them
COMPARED = ("type", "key_size", "value_size", "max_entries")


@check("PKG-MAP-001", absent="the manifest declares no maps")
def declared_maps_match(ctx: Context) -> Iterator[Result]:
    for index, decl in enumerate(ctx.declared("maps")):
        name, path, subject = decl["name"], f"$.maps[{index}]", f"map:{decl['name']}"
        art = ctx.artifact(decl["artifact"])
        if art is None:
            continue  # PKG-MAN-003 reports the reference
        if art.obj is None:
            yield ctx.not_loaded(art, subject=subject)
            continue
        found = next((m for m in art.obj.maps if m.name == name), None)
        if found is None:
            yield ctx.failed(
                f"map {name}: not defined in {art.name}",
                subject=subject,
                path=path,
                expected=f"a map named {name}",
                actual=sorted(m.name for m in art.obj.maps),
            )
            continue
        actual = {k: getattr(found, k) if k == "type" else getattr(found, k) or 0 for k in COMPARED}
        differing = [k for k in COMPARED if k in decl and actual[k] != decl[k]]
        if differing:
            yield ctx.failed(
                f"map {name} differs: " + ", ".join(f"{k} {actual[k]} (declared {decl[k]})" for k in differing),
                subject=subject,
                path=path,
                expected={k: decl[k] for k in differing},
                actual={k: actual[k] for k in differing},
            )
        else:
            yield ctx.passed(f"map {name} is a {found.type} as declared", subject=subject)


@check("PKG-MAP-002")
def no_legacy_map_sections(ctx: Context) -> Iterator[Result]:
    for art in ctx.artifacts:
        if art.obj is None:
            yield ctx.not_loaded(art)
            continue
        legacy = [m for m in art.obj.maps if m.kind == "legacy"]
        for m in legacy:
            yield ctx.failed(
                f"{art.name}: map {m.name} is in legacy section {m.section!r}; libbpf >= 1.0 refuses it (use .maps)",
                subject=f"map:{m.name}",
                expected=".maps",
                actual=m.section,
            )
        if not legacy:
            yield ctx.passed(f"{art.name} defines no legacy maps", subject=art.subject)


@check("PKG-LIF-001", absent="the manifest preserves no maps")
def preserved_maps_exist(ctx: Context) -> Iterator[Result]:
    lifecycle = ctx.manifest.get("lifecycle", {})
    listed = lifecycle.get("preserve_maps", []) if isinstance(lifecycle, dict) else []
    wanted = {str(n): f"$.lifecycle.preserve_maps[{i}]" for i, n in enumerate(listed)}
    for i, d in enumerate(ctx.declared("maps")):
        if d.get("preserve_on_upgrade"):
            wanted.setdefault(d["name"], f"$.maps[{i}].preserve_on_upgrade")
    declared = {d["name"]: d for d in ctx.declared("maps")}
    for name, path in wanted.items():
        subject = f"map:{name}"
        decl = declared.get(name)
        if decl is None:
            yield ctx.failed(
                f"preserved map {name} is not declared under maps",
                subject=subject,
                path=path,
                expected=f"a map named {name} under maps",
                actual=sorted(declared),
            )
            continue
        art = ctx.artifact(decl["artifact"])
        if art is None:
            continue  # PKG-MAN-003 reports the reference
        if art.obj is None:
            yield ctx.not_loaded(art, subject=subject)
        elif any(m.name == name for m in art.obj.maps):
            yield ctx.passed(f"preserved map {name} exists in {art.name}", subject=subject)
        else:
            yield ctx.failed(
                f"preserved map {name} is not defined in {art.name}",
                subject=subject,
                path=path,
                expected=f"a map named {name} in {art.name}",
                actual=sorted(m.name for m in art.obj.maps),
            )
