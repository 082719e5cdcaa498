"""The inventory of a package: everything its loaded objects define."""

from __future__ import annotations

from typing import Any

from bpfcert.checks.context import Context


def inventory(ctx: Context) -> dict[str, Any]:
    """Everything the loaded objects define: entry programs (libbpf's definition) and every map, internal ones
    included."""
    from bpfcert.knowledge.sections import classify_section

    programs: list[dict[str, Any]] = []
    maps: list[dict[str, Any]] = []
    for art in ctx.loaded():
        assert art.obj is not None
        for prog in art.obj.programs:
            info = classify_section(prog.section)
            programs.append(
                {
                    "name": prog.name,
                    "section": prog.section,
                    "type": info.prog_type if info else None,
                    "artifact": art.name,
                }
            )
        for m in art.obj.maps:
            maps.append(
                {
                    "name": m.name,
                    "type": m.type,
                    "kind": m.kind,
                    "section": m.section,
                    "key_size": m.key_size,
                    "value_size": m.value_size,
                    "max_entries": m.max_entries,
                    "artifact": art.name,
                }
            )
    return {"programs": programs, "maps": maps}
