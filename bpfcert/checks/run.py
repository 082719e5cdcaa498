"""Running the checks: every requirement of the selected profiles judged, in catalogue order, into a Report.

A report is complete: every requirement of every profile checked gets at least one row, one per subject it
judges. A check that yields nothing becomes one SKIP "not applicable: <why>" row (the reason registered with
@check), or NOT_RUN when artifacts it would have judged did not load; when the manifest fails PKG-MAN-00x,
every later requirement is one NOT_RUN row naming it.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.checks.artifacts import load_artifacts
from bpfcert.checks.context import Context
from bpfcert.checks.inventory import inventory
from bpfcert.checks.manifest import manifest_results
from bpfcert.checks.profiles import selected_profiles
from bpfcert.checks.registry import NOT_APPLICABLE, REGISTRY
from bpfcert.results import Report, Result, Status

if TYPE_CHECKING:
    from bpfcert.package import Package

# Check modules, in report order. Importing one registers its checks.
MODULES = ("manifest", "artifacts", "programs", "maps", "license", "requires", "portable", "service")


def run_checks(ctx: Context, profiles: list[str], judged: Collection[str] = ()) -> list[Result]:
    """Run the check of every requirement of `profiles` but those already `judged`, in catalogue order; one
    row at least for each."""
    _register_checks()
    results: list[Result] = []
    for req_id, requirement in spec.catalogue().items():
        if requirement.profile not in profiles or req_id in judged:
            continue
        fn = REGISTRY.get(req_id)
        if fn is None:
            results.append(Result.of(req_id, Status.NOT_RUN, "not run: no check implements it"))
        else:
            results.extend(list(fn(ctx.judging(req_id))) or [_nothing_judged(ctx, req_id)])
    return results


@functools.cache
def _register_checks() -> None:
    """Import the check modules (once: a run of many packages asks for every package)."""
    for module in MODULES:
        importlib.import_module(f"bpfcert.checks.{module}")


def _nothing_judged(ctx: Context, req_id: str) -> Result:
    """The one row of a requirement whose check judged nothing: not applicable, or not run for want of objects."""
    unloaded = [a.name for a in ctx.artifacts if a.obj is None]
    if req_id in NOT_APPLICABLE or not unloaded:
        why = NOT_APPLICABLE.get(req_id, "nothing in the package it judges")
        return Result.of(req_id, Status.SKIP, f"not applicable: {why}")
    return Result.of(req_id, Status.NOT_RUN, f"not run: {', '.join(unloaded)} did not load")


def check_package(pkg: Package, requested_profiles: list[str] | None = None) -> Report:
    """Check an opened package against the selected profiles.

    Manifest problems stop the run early: every later requirement is NOT_RUN (its check would only repeat
    them), while the inventory still lists what the objects hold. An artifact that fails to load is reported
    by the requirement it failed, and NOT_RUN by the checks that need its object.
    """
    manifest = pkg.manifest
    profiles = selected_profiles(manifest if isinstance(manifest, dict) else None, requested_profiles)
    results = list(manifest_results(pkg))
    gate = next((r.id for r in results if r.id.startswith("PKG-MAN-") and r.status is not Status.PASS), None)
    if manifest is None or gate is not None:
        reason = f"not run: the manifest failed {gate or 'PKG-MAN-001'}"
        seen = {r.id for r in results}
        results += [
            Result.of(req_id, Status.NOT_RUN, reason)
            for req_id, requirement in spec.catalogue().items()
            if requirement.profile in profiles and req_id not in seen
        ]
        ctx = Context(pkg, {})
        ctx.artifacts = load_artifacts(pkg, {"artifacts": [{"path": p} for p in _object_paths(pkg, manifest)]})
    else:
        ctx = Context(pkg, manifest)
        ctx.artifacts = load_artifacts(pkg, manifest)
        results.extend(run_checks(ctx, profiles, {r.id for r in results if r.id.startswith("PKG-MAN-")}))
    return Report(str(pkg.source), results, profiles=profiles, manifest=manifest, inventory=inventory(ctx))


def _object_paths(pkg: Package, manifest: Any) -> list[str]:
    """Where the objects of a package with an unusable manifest are: the artifact paths the manifest lists,
    else every *.o file at the package root."""
    entries = manifest.get("artifacts") if isinstance(manifest, dict) else None
    listed = (
        [e["path"] for e in entries if isinstance(e, dict) and isinstance(e.get("path"), str)]
        if (isinstance(entries, list))
        else []
    )
    return listed or sorted(p.name for p in pkg.root.glob("*.o"))
