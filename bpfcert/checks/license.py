"""Licence checks: a license section (PKG-LIC-001) that agrees with the manifest's SPDX expression, itself
valid SPDX (PKG-LIC-002), and GPL-only helpers only under a license the kernel treats as GPL-compatible
(PKG-LIC-003)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.knowledge.licenses import parse_spdx, section_is_gpl_compatible, spdx_is_gpl_compatible
from bpfcert.results import Result


def _gpl(compatible: bool) -> str:
    return "GPL-compatible" if compatible else "not GPL-compatible"


@check("PKG-LIC-001")
def license_section_present(ctx: Context) -> Iterator[Result]:
    for art in ctx.artifacts:
        if art.obj is None:
            yield ctx.not_loaded(art)
        elif art.obj.license is None:
            yield ctx.failed(
                f"{art.name} has no license section, so the kernel treats its programs as not GPL-compatible",
                subject=art.subject,
                expected="a license section",
                actual=None,
            )
        else:
            yield ctx.passed(f"{art.name} license section: {art.obj.license!r}", subject=art.subject)


@check("PKG-LIC-002")
def license_agrees_with_manifest(ctx: Context) -> Iterator[Result]:
    spdx = str(ctx.manifest.get("license", ""))
    normalised, problem = parse_spdx(spdx)
    if normalised is None:
        yield ctx.failed(
            f"the manifest's license {spdx!r} is not a valid SPDX expression: {problem} "
            "(name a licence outside the SPDX list as LicenseRef-<name>)",
            subject="$.license",
            path="$.license",
            actual=spdx,
        )
        return
    offers_gpl = spdx_is_gpl_compatible(normalised)
    offers = "offers the code under a GPL" if offers_gpl else "offers the code under no GPL"
    for art in ctx.artifacts:
        if art.obj is None:
            yield ctx.not_loaded(art)
            continue
        if art.obj.license is None:
            continue  # PKG-LIC-001 reports it
        section_gpl = section_is_gpl_compatible(art.obj.license)
        treats = f"the kernel treats license section {art.obj.license!r} as {_gpl(section_gpl)}"
        if section_gpl == offers_gpl:
            yield ctx.passed(f"{art.name}: {treats}, and {spdx!r} {offers}", subject=art.subject)
        else:
            yield ctx.failed(
                f"{art.name}: {treats}, but the manifest's {spdx!r} {offers}",
                subject=art.subject,
                path="$.license",
                expected=_gpl(offers_gpl),
                actual=_gpl(section_gpl),
            )


@check("PKG-LIC-003")
def gpl_only_helpers_need_gpl(ctx: Context) -> Iterator[Result]:
    for art in ctx.artifacts:
        if art.obj is None:
            yield ctx.not_loaded(art)
            continue
        gpl_only = sorted(art.usage.gpl_only_helpers)
        license = art.obj.license
        if not gpl_only:
            yield ctx.passed(f"{art.name} calls no GPL-only helper", subject=art.subject)
        elif section_is_gpl_compatible(license):
            yield ctx.passed(
                f"{art.name} calls GPL-only helpers and the kernel treats {license!r} as GPL-compatible",
                subject=art.subject,
            )
        else:
            under = f"{license!r}" if license is not None else "a missing license section"
            yield ctx.failed(
                f"{art.name} calls GPL-only helpers ({', '.join(gpl_only)}), but the kernel treats {under} as not "
                "GPL-compatible for GPL-only helpers, so the verifier refuses the program",
                subject=art.subject,
                helpers=gpl_only,
                expected="a license the kernel treats as GPL-compatible",
                actual=license,
            )
