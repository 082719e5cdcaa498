"""`requires` covers what the code uses: helpers (PKG-REQ-001), kfuncs (PKG-REQ-002), program types
(PKG-REQ-003), map types (PKG-REQ-004), and a kernel version new enough for all of it (PKG-REQ-005)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks import Context, check
from bpfcert.results import Result, Status


def _coverage(ctx: Context, req_id: str, key: str, used: dict[str, set[str]]) -> Iterator[Result]:
    """One result per artifact: every name it uses must be listed in requires[key]."""
    listed = {str(x) for x in ctx.requires().get(key, [])}
    for artifact, names in used.items():
        missing = sorted(names - listed)
        if missing:
            yield ctx.result(
                req_id,
                Status.FAIL,
                f"{artifact} uses {', '.join(missing)} but requires.{key} does not list "
                f"{'it' if len(missing) == 1 else 'them'}",
                missing=missing,
            )
        else:
            yield ctx.result(req_id, Status.PASS, f"requires.{key} covers the {len(names)} {key} of {artifact}")


@check("PKG-REQ-001")
def helpers_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "PKG-REQ-001", "helpers", {a.name: set(a.usage.helpers) for a in ctx.loaded()})


@check("PKG-REQ-002")
def kfuncs_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "PKG-REQ-002", "kfuncs", {a.name: set(a.usage.kfuncs) for a in ctx.loaded()})


@check("PKG-REQ-003")
def prog_types_covered(ctx: Context) -> Iterator[Result]:
    used: dict[str, set[str]] = {a.name: set(a.usage.prog_types) for a in ctx.loaded()}
    for decl in ctx.declared("programs"):
        used.setdefault(decl["artifact"], set()).add(decl["type"])
    yield from _coverage(ctx, "PKG-REQ-003", "prog_types", used)


@check("PKG-REQ-004")
def map_types_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "PKG-REQ-004", "map_types", {a.name: set(a.usage.map_types) for a in ctx.loaded()})


@check("PKG-REQ-005")
def kernel_new_enough(ctx: Context) -> Iterator[Result]:
    from bpfcert.errors import BpfcertError
    from bpfcert.knowledge.kernel import format_version, parse_requirement

    spec = ctx.requires().get("kernel")
    needed = max((a.usage.min_kernel for a in ctx.loaded()), default=(0, 0))
    reasons = sorted({r for a in ctx.loaded() for r in a.usage.min_kernel_reasons})
    if spec is None:
        yield ctx.result(
            "PKG-REQ-005",
            Status.FAIL,
            f"requires.kernel is missing; the code needs >={format_version(needed)}",
            reasons=reasons,
        )
        return
    try:
        declared = parse_requirement(str(spec))
    except BpfcertError as exc:
        yield ctx.result("PKG-REQ-005", Status.FAIL, f"requires.kernel {spec!r}: {exc}")
        return
    if declared >= needed:
        yield ctx.result(
            "PKG-REQ-005", Status.PASS, f"requires.kernel {spec} >= {format_version(needed)} the code needs"
        )
    else:
        newest = [r for r in reasons if r.endswith(format_version(needed))] or reasons
        yield ctx.result(
            "PKG-REQ-005",
            Status.FAIL,
            f"requires.kernel {spec} is lower than {format_version(needed)}: {'; '.join(newest)}",
            needed=format_version(needed),
            reasons=reasons,
        )
