"""Licence checks: a license section (PKG-LIC-001) that agrees with the manifest (PKG-LIC-002), and GPL-only
helpers only under a GPL-compatible licence (PKG-LIC-003)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks import Context, check
from bpfcert.knowledge.licenses import section_is_gpl_compatible, spdx_is_gpl_compatible
from bpfcert.results import Result, Status


@check("PKG-LIC-001")
def license_section_present(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        if art.obj.license is None:
            yield ctx.result("PKG-LIC-001", Status.FAIL, f"{art.name} has no license section")
        else:
            yield ctx.result("PKG-LIC-001", Status.PASS, f"{art.name} license section: {art.obj.license!r}")


@check("PKG-LIC-002")
def license_agrees_with_manifest(ctx: Context) -> Iterator[Result]:
    spdx = str(ctx.manifest.get("license", ""))
    spdx_gpl = spdx_is_gpl_compatible(spdx)
    for art in ctx.loaded():
        assert art.obj is not None
        if art.obj.license is None:
            continue
        section_gpl = section_is_gpl_compatible(art.obj.license)
        if section_gpl == spdx_gpl:
            yield ctx.result("PKG-LIC-002", Status.PASS, f"{art.name}: {art.obj.license!r} agrees with {spdx!r} on GPL")
        else:
            yield ctx.result(
                "PKG-LIC-002",
                Status.FAIL,
                f"{art.name}: license section {art.obj.license!r} is "
                f"{'' if section_gpl else 'not '}GPL-compatible for the kernel, "
                f"but the manifest's {spdx!r} is {'' if spdx_gpl else 'not '}GPL-compatible",
            )


@check("PKG-LIC-003")
def gpl_only_helpers_need_gpl(ctx: Context) -> Iterator[Result]:
    for art in ctx.loaded():
        assert art.obj is not None
        gpl_only = sorted(art.usage.gpl_only_helpers)
        if not gpl_only:
            yield ctx.result("PKG-LIC-003", Status.PASS, f"{art.name} calls no GPL-only helper")
        elif section_is_gpl_compatible(art.obj.license):
            yield ctx.result("PKG-LIC-003", Status.PASS, f"{art.name} calls GPL-only helpers under {art.obj.license!r}")
        else:
            yield ctx.result(
                "PKG-LIC-003",
                Status.FAIL,
                f"{art.name} calls GPL-only helpers ({', '.join(gpl_only)}) under non-GPL license "
                f"{art.obj.license!r}; the verifier will refuse it",
                helpers=gpl_only,
            )
