"""Portability checks: .BTF present and decodable (PKG-PORT-001), CO-RE relocations in .BTF.ext wherever the
code reads kernel structs (PKG-PORT-002)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result


@check("PKG-PORT-001")
def btf_present(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        if art.obj.btf is not None:
            yield ctx.passed(f"{art.name} carries .BTF ({len(art.obj.btf.types)} types)")
        elif art.obj.btf_error:
            yield ctx.failed(f"{art.name}: .BTF does not decode: {art.obj.btf_error}")
        else:
            yield ctx.failed(f"{art.name} has no .BTF section (build with -g)")


@check("PKG-PORT-002")
def core_relocations_present(ctx: Context) -> Iterator[Result]:
    """Demanded only of code that reads kernel structs: probe_read helpers or loads through BTF-typed pointers."""
    for art in ctx.loaded():
        assert art.obj is not None
        reads = art.usage.kernel_struct_reads
        ext = art.obj.btf_ext
        count = sum(len(v) for v in ext.core_relos.values()) if ext is not None else 0
        if count:
            yield ctx.passed(f"{art.name} carries {count} CO-RE relocations")
        elif not reads:
            yield ctx.passed(
                f"{art.name} reads no kernel struct (no probe_read helper, no BTF-typed pointer), so it needs no "
                "CO-RE relocations",
            )
        else:
            why = "no .BTF.ext section" if ext is None else ".BTF.ext holds no CO-RE relocations"
            if ext is None and art.obj.btf_ext_error:
                why = art.obj.btf_ext_error
            yield ctx.failed(
                f"{art.name} reads kernel structs ({', '.join(reads)}) but {why}, so those reads are not portable",
                reasons=reads,
            )
