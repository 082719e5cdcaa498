"""Portability checks: .BTF present and decodable (PKG-PORT-001), .BTF.ext with CO-RE relocations
(PKG-PORT-002)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks import Context, check
from bpfcert.results import Result, Status


@check("PKG-PORT-001")
def btf_present(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        if art.obj.btf is not None:
            yield ctx.result("PKG-PORT-001", Status.PASS, f"{art.name} carries .BTF ({len(art.obj.btf.types)} types)")
        elif art.obj.btf_error:
            yield ctx.result("PKG-PORT-001", Status.FAIL, f"{art.name}: .BTF does not decode: {art.obj.btf_error}")
        else:
            yield ctx.result("PKG-PORT-001", Status.FAIL, f"{art.name} has no .BTF section (build with -g)")


@check("PKG-PORT-002")
def core_relocations_present(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        ext = art.obj.btf_ext
        if ext is None:
            why = art.obj.btf_ext_error or "no .BTF.ext section"
            yield ctx.result("PKG-PORT-002", Status.FAIL, f"{art.name}: {why}")
            continue
        count = sum(len(v) for v in ext.core_relos.values())
        if count:
            yield ctx.result("PKG-PORT-002", Status.PASS, f"{art.name} carries {count} CO-RE relocations")
        else:
            yield ctx.result(
                "PKG-PORT-002",
                Status.FAIL,
                f"{art.name}: .BTF.ext holds no CO-RE relocations, so kernel struct accesses are not portable",
            )
