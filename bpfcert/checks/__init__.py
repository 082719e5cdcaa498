"""Static package checks: one small function per requirement ID, registered with @check (checks.registry).

A check receives the Context (checks.context: the opened package, its manifest and parsed artifacts) and
yields Results. Checks never print and never decide exit codes; `run_checks` orders them and applies profiles.

A report is complete: every requirement of every profile checked gets at least one row, one per subject it
judges. A check that yields nothing becomes one SKIP "not applicable: <why>" row (the reason registered with
@check), or NOT_RUN when artifacts it would have judged did not load; when the manifest fails PKG-MAN-00x,
every later requirement is one NOT_RUN row naming it.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.checks.context import Context
from bpfcert.checks.registry import NOT_APPLICABLE, REGISTRY, result
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.package import Package

# Check modules, in report order. Importing one registers its checks.
MODULES = ("manifest", "artifacts", "programs", "maps", "license", "requires", "portable", "service")


def selected_profiles(manifest: dict[str, Any] | None, requested: list[str] | None) -> list[str]:
    """The profiles to check: those requested, else the package profiles the package claims; package-core always.

    Only profiles that apply to packages can be requested (BpfcertError otherwise)."""
    from bpfcert.errors import BpfcertError

    known = spec.profiles()
    applies = spec.profile_applies_to()
    names = list(requested or [])
    if not names and manifest and isinstance(manifest.get("conformsTo"), list):
        names = [p for p in manifest["conformsTo"] if isinstance(p, str) and applies.get(p) == "package"]
    out: list[str] = ["package-core"]
    for name in names:
        if name not in known:
            raise BpfcertError(f"unknown profile {name!r} (known: {', '.join(sorted(known))})")
        if applies[name] != "package":
            raise BpfcertError(
                f"profile {name} applies to {applies[name]} targets, not packages; see bpfcert probe"
            )
        out.extend(p for p in known[name] if p not in out)
    return out


def run_checks(ctx: Context, profiles: list[str], judged: Collection[str] = ()) -> list[Result]:
    """Run the check of every requirement of `profiles` but those already `judged`, in catalogue order; one
    row at least for each."""
    for module in MODULES:
        importlib.import_module(f"bpfcert.checks.{module}")
    results: list[Result] = []
    for req_id, requirement in spec.catalogue().items():
        if requirement.profile not in profiles or req_id in judged:
            continue
        fn = REGISTRY.get(req_id)
        rows = list(fn(ctx)) if fn else [result(req_id, Status.NOT_RUN, "not run: no check implements it")]
        results.extend(rows or [_nothing_judged(ctx, req_id)])
    return results


def _nothing_judged(ctx: Context, req_id: str) -> Result:
    """The one row of a requirement whose check judged nothing: not applicable, or not run for want of objects."""
    unloaded = [a.name for a in ctx.artifacts if a.obj is None]
    if req_id in NOT_APPLICABLE or not unloaded:
        why = NOT_APPLICABLE.get(req_id, "nothing in the package it judges")
        return result(req_id, Status.SKIP, f"not applicable: {why}")
    return result(req_id, Status.NOT_RUN, f"not run: {', '.join(unloaded)} did not load")


@dataclass
class Report:
    """Everything `bpfcert check` found about one package."""

    package: str
    manifest: dict[str, Any] | None
    profiles: list[str]
    results: list[Result]
    inventory: dict[str, Any]

    @property
    def verdict(self) -> str:
        from bpfcert.results import verdict

        return verdict(self.results)

    @property
    def title(self) -> str:
        """The package's name and version, or the base name of its source: a name stable across machines."""
        m = self.manifest if isinstance(self.manifest, dict) else {}
        name, version = m.get("name"), m.get("version")
        if isinstance(name, str) and name:
            return f"{name} {version}" if isinstance(version, str) and version else name
        return Path(self.package).name or self.package


def check_package(pkg: Package, requested_profiles: list[str] | None = None) -> Report:
    """Check an opened package against the selected profiles.

    Manifest problems stop the run early: every later requirement is NOT_RUN (its check would only repeat
    them), while the inventory still lists what the objects hold. An artifact that fails to load is reported
    by the requirement it failed, and NOT_RUN by the checks that need its object.
    """
    from bpfcert.checks.artifacts import load_artifacts
    from bpfcert.checks.manifest import manifest_results

    manifest = pkg.manifest
    profiles = selected_profiles(manifest if isinstance(manifest, dict) else None, requested_profiles)
    results = list(manifest_results(pkg))
    gate = next((r.id for r in results if r.id.startswith("PKG-MAN-") and r.status is not Status.PASS), None)
    if manifest is None or gate is not None:
        reason = f"not run: the manifest failed {gate or 'PKG-MAN-001'}"
        seen = {r.id for r in results}
        results += [
            result(req_id, Status.NOT_RUN, reason)
            for req_id, requirement in spec.catalogue().items()
            if requirement.profile in profiles and req_id not in seen
        ]
        ctx = Context(pkg, {})
        ctx.artifacts = load_artifacts(pkg, {"artifacts": [{"path": p} for p in _object_paths(pkg, manifest)]})
        return Report(str(pkg.source), manifest, profiles, results, inventory(ctx))
    ctx = Context(pkg, manifest)
    ctx.artifacts = load_artifacts(pkg, manifest)
    results.extend(run_checks(ctx, profiles, {r.id for r in results if r.id.startswith("PKG-MAN-")}))
    return Report(str(pkg.source), manifest, profiles, results, inventory(ctx))


def _object_paths(pkg: Package, manifest: Any) -> list[str]:
    """Where the objects of a package with an unusable manifest are: the artifact paths the manifest lists,
    else every *.o file at the package root."""
    entries = manifest.get("artifacts") if isinstance(manifest, dict) else None
    listed = [e["path"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)] if (
        isinstance(entries, list)
    ) else []
    return listed or sorted(p.name for p in pkg.root.glob("*.o"))


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
