"""Program checks: declared programs exist (PKG-PRG-001) with the type their section implies (PKG-PRG-002);
every entry program is declared (PKG-PRG-003)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result

if TYPE_CHECKING:
    from bpfcert.elf import Program


@check("PKG-PRG-001")
def declared_programs_exist(ctx: Context) -> Iterator[Result]:
    functions: dict[str, dict[str, Program]] = {}  # artifact -> name -> the first function of that name
    for decl in ctx.declared("programs"):
        name, section = decl["name"], decl["section"]
        art = ctx.artifact(decl["artifact"])
        if art is None or art.obj is None:
            continue
        if art.name not in functions:  # built once per artifact, not searched once per declared program
            functions[art.name] = {p.name: p for p in reversed(art.obj.programs + art.obj.subprograms)}
        found = functions[art.name].get(name)
        if found is None:
            yield ctx.failed(f"program {name}: no function {name} in {art.name}")
        elif found.section != section:
            yield ctx.failed(
                f"program {name}: declared in section {section!r}, found in {found.section!r}",
                program=name,
            )
        elif found.is_subprogram:
            yield ctx.failed(
                f"program {name} is a subprogram (static or in .text), not an entry",
            )
        else:
            yield ctx.passed(f"program {name} found in section {section}")


@check("PKG-PRG-002")
def section_implies_type(ctx: Context) -> Iterator[Result]:
    from bpfcert.knowledge.sections import classify_section

    for decl in ctx.declared("programs"):
        name, section, declared = decl["name"], decl["section"], decl["type"]
        info = classify_section(section)
        if info is None:
            yield ctx.failed(
                f"program {name}: section {section!r} follows no libbpf convention, so no type is implied",
            )
        elif info.prog_type != declared:
            yield ctx.failed(
                f"program {name}: section {section!r} implies type {info.prog_type}, manifest says {declared}",
                implied=info.prog_type,
            )
        else:
            yield ctx.passed(f"program {name}: section {section!r} is a {declared}")


@check("PKG-PRG-003")
def entry_programs_declared(ctx: Context) -> Iterator[Result]:
    declared = {(d["artifact"], d["name"]) for d in ctx.declared("programs")}
    for art in ctx.loaded():
        assert art.obj is not None
        artifact = art.name
        for prog in art.obj.programs:
            if (artifact, prog.name) in declared:
                yield ctx.passed(f"program {prog.name} is declared")
            else:
                yield ctx.failed(
                    f"{artifact} defines program {prog.name} (section {prog.section}) that the manifest omits",
                )
