"""Program checks: declared programs exist (PKG-PRG-001) with the type their section implies (PKG-PRG-002);
every entry program is declared (PKG-PRG-003)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result, Status


@check("PKG-PRG-001")
def declared_programs_exist(ctx: Context) -> Iterator[Result]:
    for decl in ctx.declared("programs"):
        name, section = decl["name"], decl["section"]
        art = ctx.artifact(decl["artifact"])
        if art is None or art.obj is None:
            continue
        found = [p for p in art.obj.programs + art.obj.subprograms if p.name == name]
        if not found:
            yield ctx.result("PKG-PRG-001", Status.FAIL, f"program {name}: no function {name} in {art.name}")
        elif found[0].section != section:
            yield ctx.result(
                "PKG-PRG-001",
                Status.FAIL,
                f"program {name}: declared in section {section!r}, found in {found[0].section!r}",
                program=name,
            )
        elif found[0].is_subprogram:
            yield ctx.result(
                "PKG-PRG-001",
                Status.FAIL,
                f"program {name} is a subprogram (static or in .text), not an entry",
            )
        else:
            yield ctx.result("PKG-PRG-001", Status.PASS, f"program {name} found in section {section}")


@check("PKG-PRG-002")
def section_implies_type(ctx: Context) -> Iterator[Result]:
    from bpfcert.knowledge.sections import classify_section

    for decl in ctx.declared("programs"):
        name, section, declared = decl["name"], decl["section"], decl["type"]
        info = classify_section(section)
        if info is None:
            yield ctx.result(
                "PKG-PRG-002",
                Status.FAIL,
                f"program {name}: section {section!r} follows no libbpf convention, so no type is implied",
            )
        elif info.prog_type != declared:
            yield ctx.result(
                "PKG-PRG-002",
                Status.FAIL,
                f"program {name}: section {section!r} implies type {info.prog_type}, manifest says {declared}",
                implied=info.prog_type,
            )
        else:
            yield ctx.result("PKG-PRG-002", Status.PASS, f"program {name}: section {section!r} is a {declared}")


@check("PKG-PRG-003")
def entry_programs_declared(ctx: Context) -> Iterator[Result]:
    declared = {(d["artifact"], d["name"]) for d in ctx.declared("programs")}
    for art in ctx.loaded():
        assert art.obj is not None
        for prog in art.obj.programs:
            if (art.name, prog.name) in declared:
                yield ctx.result("PKG-PRG-003", Status.PASS, f"program {prog.name} is declared")
            else:
                yield ctx.result(
                    "PKG-PRG-003",
                    Status.FAIL,
                    f"{art.name} defines program {prog.name} (section {prog.section}) that the manifest omits",
                )
