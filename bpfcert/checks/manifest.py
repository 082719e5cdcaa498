"""Manifest checks: presence and parsing (PKG-MAN-001), schema (PKG-MAN-002), references (PKG-MAN-003),
signature (PKG-SIG-001)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result

if TYPE_CHECKING:
    from bpfcert.package import Package


def manifest_results(pkg: Package) -> Iterator[Result]:
    """PKG-MAN-001..003 and problems found while opening the package; these gate every other check."""
    from bpfcert.package import manifest_reference_errors, validate_manifest

    ctx = Context(pkg, {})
    parses, valid, resolves = ctx.judging("PKG-MAN-001"), ctx.judging("PKG-MAN-002"), ctx.judging("PKG-MAN-003")
    yield from pkg.problems
    if any(r.id == parses.requirement for r in pkg.problems):
        return
    if pkg.manifest is None:
        yield parses.failed("no bpfpkg.json or bpfpkg.yaml at the package root")
        return
    yield parses.passed(f"manifest {pkg.manifest_path.name if pkg.manifest_path else ''} parses")
    errors = validate_manifest(pkg.manifest)
    if errors:
        for err in errors:
            yield valid.failed(f"{err.path}: {err.message}", subject=err.path, path=err.path)
        return
    yield valid.passed("manifest is valid against package.schema.json")
    ref_errors = manifest_reference_errors(pkg.manifest)
    for message in ref_errors:
        yield resolves.failed(message)
    if not ref_errors:
        yield resolves.passed("names are unique and every reference resolves")


@check("PKG-SIG-001", absent="the manifest carries no signature")
def signature_verifies(ctx: Context) -> Iterator[Result]:
    if "signature" not in ctx.manifest:
        return
    from bpfcert.signing import verify_manifest

    problem = verify_manifest(ctx.manifest)
    if problem is None:
        yield ctx.passed("signature verifies over the canonical manifest")
    else:
        yield ctx.failed(f"signature does not verify: {problem}", path="$.signature")
