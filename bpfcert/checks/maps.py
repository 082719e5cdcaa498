"""Map checks: declared maps exist as declared (PKG-MAP-001), no legacy map sections (PKG-MAP-002),
preserved maps exist (PKG-LIF-001)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks import Context, check
from bpfcert.results import Result, Status

# unset sizes (ring buffers have no key or value) count as 0, as the kernel reports them
COMPARED = ("type", "key_size", "value_size", "max_entries")


@check("PKG-MAP-001")
def declared_maps_match(ctx: Context) -> Iterator[Result]:
    for decl in ctx.declared("maps"):
        name = decl["name"]
        art = ctx.artifact(decl["artifact"])
        if art is None or art.obj is None:
            continue
        found = next((m for m in art.obj.maps if m.name == name), None)
        if found is None:
            yield ctx.result("PKG-MAP-001", Status.FAIL, f"map {name}: not defined in {art.name}")
            continue
        actual = {k: getattr(found, k) if k == "type" else getattr(found, k) or 0 for k in COMPARED}
        diffs = [f"{k} {actual[k]} (declared {decl[k]})" for k in COMPARED if k in decl and actual[k] != decl[k]]
        if diffs:
            yield ctx.result("PKG-MAP-001", Status.FAIL, f"map {name} differs: " + ", ".join(diffs), map=name)
        else:
            yield ctx.result("PKG-MAP-001", Status.PASS, f"map {name} is a {found.type} as declared")


@check("PKG-MAP-002")
def no_legacy_map_sections(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        legacy = [m for m in art.obj.maps if m.kind == "legacy"]
        for m in legacy:
            yield ctx.result(
                "PKG-MAP-002",
                Status.FAIL,
                f"{art.name}: map {m.name} is in legacy section {m.section!r}; libbpf >= 1.0 refuses it (use .maps)",
            )
        if not legacy:
            yield ctx.result("PKG-MAP-002", Status.PASS, f"{art.name} defines no legacy maps")


@check("PKG-LIF-001")
def preserved_maps_exist(ctx: Context) -> Iterator[Result]:
    lifecycle = ctx.manifest.get("lifecycle", {})
    wanted = list(lifecycle.get("preserve_maps", [])) if isinstance(lifecycle, dict) else []
    wanted += [d["name"] for d in ctx.declared("maps") if d.get("preserve_on_upgrade") and d["name"] not in wanted]
    declared = {d["name"]: d for d in ctx.declared("maps")}
    for name in wanted:
        decl = declared.get(name)
        if decl is None:
            yield ctx.result("PKG-LIF-001", Status.FAIL, f"preserved map {name} is not declared under maps")
            continue
        art = ctx.artifact(decl["artifact"])
        if art is None or art.obj is None:
            continue
        if any(m.name == name for m in art.obj.maps):
            yield ctx.result("PKG-LIF-001", Status.PASS, f"preserved map {name} exists in {art.name}")
        else:
            yield ctx.result("PKG-LIF-001", Status.FAIL, f"preserved map {name} is not defined in {art.name}")
