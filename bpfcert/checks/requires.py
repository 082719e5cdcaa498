"""`requires` covers what the code uses: helpers (PKG-REQ-001), kfuncs (PKG-REQ-002), program types
(PKG-REQ-003), map types (PKG-REQ-004), a kernel version new enough for all of it (PKG-REQ-005), and the
kernel's BTF when the code needs it (PKG-REQ-007); it lists nothing the code does not use (PKG-REQ-006)."""

from __future__ import annotations

from collections.abc import Iterator

from bpfcert.checks.context import Context
from bpfcert.checks.registry import check
from bpfcert.results import Result, Status


def _coverage(ctx: Context, key: str, used: dict[str, set[str]]) -> Iterator[Result]:
    """One result per artifact: every name it uses must be listed in requires[key]."""
    listed = {str(x) for x in ctx.requires().get(key, [])}
    for artifact, names in used.items():
        missing = sorted(names - listed)
        if missing:
            yield ctx.failed(
                f"{artifact} uses {', '.join(missing)} but requires.{key} does not list "
                f"{'it' if len(missing) == 1 else 'them'}",
                subject=f"artifact:{artifact}",
                missing=missing,
            )
        else:
            yield ctx.passed(
                f"requires.{key} covers the {len(names)} {key} of {artifact}",
                subject=f"artifact:{artifact}",
            )


@check("PKG-REQ-001")
def helpers_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "helpers", {a.name: set(a.usage.helpers) for a in ctx.loaded()})


@check("PKG-REQ-002")
def kfuncs_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "kfuncs", {a.name: set(a.usage.kfuncs) for a in ctx.loaded()})


@check("PKG-REQ-003")
def prog_types_covered(ctx: Context) -> Iterator[Result]:
    """Both what the manifest declares (programs[].type) and what the sections imply, each said as such."""
    listed = {str(x) for x in ctx.requires().get("prog_types", [])}
    implied = {a.name: set(a.usage.prog_types) for a in ctx.loaded()}
    declared: dict[str, set[str]] = {}
    for decl in ctx.declared("programs"):
        declared.setdefault(decl["artifact"], set()).add(str(decl["type"]))
    for artifact in sorted(implied.keys() | declared.keys()):
        from_code = sorted(implied.get(artifact, set()) - listed)
        from_manifest = sorted(declared.get(artifact, set()) - listed - set(from_code))
        if not from_code and not from_manifest:
            count = len(implied.get(artifact, set()) | declared.get(artifact, set()))
            yield ctx.passed(f"requires.prog_types covers the {count} prog_types of {artifact}")
            continue
        parts = [f"its sections imply {', '.join(from_code)}"] if from_code else []
        if from_manifest:
            parts.append(f"the manifest declares programs of type {', '.join(from_manifest)} in it")
        yield ctx.failed(
            f"{artifact}: {' and '.join(parts)}, which requires.prog_types does not list",
            missing=from_code + from_manifest,
            implied_by_sections=from_code,
            declared_by_manifest=from_manifest,
        )


@check("PKG-REQ-004")
def map_types_covered(ctx: Context) -> Iterator[Result]:
    yield from _coverage(ctx, "map_types", {a.name: set(a.usage.map_types) for a in ctx.loaded()})


@check("PKG-REQ-005")
def kernel_new_enough(ctx: Context) -> Iterator[Result]:
    from bpfcert.errors import BpfcertError
    from bpfcert.knowledge.kernel import format_version, parse_requirement
    from bpfcert.usage import kernel_floor

    spec = ctx.requires().get("kernel")
    needed, reasons = kernel_floor(a.usage for a in ctx.loaded())
    floor = "; ".join(reasons) or format_version(needed)
    if spec is None:
        yield ctx.failed(
            f"requires.kernel is missing; the code needs >={format_version(needed)} ({floor})",
            expected=f">={format_version(needed)}",
            reasons=reasons,
        )
        return
    try:
        declared = parse_requirement(str(spec))
    except BpfcertError as exc:
        yield ctx.failed(f"requires.kernel {spec!r}: {exc}")
        return
    if declared >= needed:
        yield ctx.passed(f"requires.kernel {spec} meets the code's floor ({floor})", reasons=reasons)
    else:
        yield ctx.failed(
            f"requires.kernel {spec} is lower than the code's floor: {floor}",
            expected=f">={format_version(needed)}",
            actual=str(spec),
            needed=format_version(needed),
            reasons=reasons,
        )


@check("PKG-REQ-006")
def nothing_unused_required(ctx: Context) -> Iterator[Result]:
    """One result per requires list (and btf): listed names that no loaded artifact uses."""
    unloaded = sorted(a.name for a in ctx.artifacts if a.obj is None)
    if unloaded:
        yield ctx.result(
            Status.NOT_RUN,
            f"not run: {', '.join(unloaded)} did not load, so what the code uses is not fully known",
        )
        return
    usages = [a.usage for a in ctx.loaded()]
    used = {
        "helpers": set().union(*(u.helpers for u in usages)),
        "kfuncs": set().union(*(u.kfuncs for u in usages)),
        "prog_types": set().union(*(u.prog_types for u in usages)) | {str(d["type"]) for d in ctx.declared("programs")},
        "map_types": set().union(*(u.map_types for u in usages)),
    }
    requires = ctx.requires()
    for key, names in used.items():
        listed = requires.get(key, [])
        unused = sorted({str(x) for x in listed} - names) if isinstance(listed, list) else []
        if unused:
            yield ctx.failed(
                f"requires.{key} lists {', '.join(unused)}, which no artifact's code uses",
                subject=f"requires.{key}",
                unused=unused,
                path=f"$.requires.{key}",
            )
        else:
            yield ctx.passed(
                f"requires.{key} lists only what the code uses",
                subject=f"requires.{key}",
                path=f"$.requires.{key}",
            )
    if requires.get("btf") is True and not any(u.btf_needs for u in usages):
        yield ctx.failed(
            "requires.btf is true, but no artifact's code needs the kernel's BTF",
            subject="requires.btf",
            expected=False,
            actual=True,
            path="$.requires.btf",
        )


@check("PKG-REQ-007")
def btf_required(ctx: Context) -> Iterator[Result]:
    declared = ctx.requires().get("btf")
    for art in ctx.loaded():
        needs = art.usage.btf_needs
        if not needs:
            message = f"{art.name}: no code needs the kernel's BTF"
            yield ctx.passed(message, subject=art.subject)
        elif declared is True:
            message = f"requires.btf is true, as {art.name} needs: {needs[0]}"
            yield ctx.passed(message, subject=art.subject)
        else:
            yield ctx.failed(
                f"requires.btf is {str(declared).lower() if declared is not None else 'missing'}, but {art.name} "
                f"needs the kernel's BTF: {'; '.join(needs)}",
                subject=art.subject,
                expected=True,
                actual=declared,
                path="$.requires.btf",
                reasons=needs,
            )
