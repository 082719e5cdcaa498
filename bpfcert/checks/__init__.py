"""Static package checks: one small function per requirement ID, registered with @check.

A check receives the Context (the opened package, its manifest and parsed artifacts) and yields Results.
Checks never print and never decide exit codes; `run_checks` orders them and applies profiles.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.elf import BpfObject
    from bpfcert.package import Package
    from bpfcert.usage import ObjectUsage

CheckFn = Callable[["Context"], Iterable[Result]]
REGISTRY: dict[str, CheckFn] = {}
# Check modules, in report order. Importing one registers its checks.
MODULES = ("manifest", "artifacts", "programs", "maps", "license", "requires", "portable", "service")


def check(req_id: str) -> Callable[[CheckFn], CheckFn]:
    """Register `fn` as the check of requirement `req_id` (which must be in the catalogue)."""

    def register(fn: CheckFn) -> CheckFn:
        spec.requirement(req_id)
        REGISTRY[req_id] = fn
        return fn

    return register


def result(
    req_id: str, status: Status, message: str, *, target: str = "static", evidence: dict[str, Any] | None = None
) -> Result:
    """A Result of requirement `req_id`, at the level the catalogue gives it."""
    level = spec.requirement(req_id).level
    return Result(req_id, status, message, level=level, target=target, evidence=evidence or {})


@dataclass
class Artifact:
    """One declared artifact: its manifest entry, resolved path, parsed object and what its code uses.

    `failure` is the (requirement ID, reason) that stopped loading it; such an artifact has no object, so the
    checks after that requirement pass over it and only that requirement reports it.
    """

    entry: dict[str, Any]
    path: Path | None = None
    obj: BpfObject | None = None
    analysis: ObjectUsage | None = None
    failure: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return str(self.entry.get("path", "?"))

    @property
    def usage(self) -> ObjectUsage:
        assert self.analysis is not None, "only loaded artifacts have a usage"
        return self.analysis

    def failed_at(self, req_id: str) -> str | None:
        """The reason this artifact failed `req_id` while loading, if it did."""
        return self.failure[1] if self.failure and self.failure[0] == req_id else None


@dataclass
class Context:
    package: Package
    manifest: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)

    def result(self, req_id: str, status: Status, message: str, **evidence: Any) -> Result:
        return result(req_id, status, message, evidence=evidence)

    def loaded(self) -> Iterator[Artifact]:
        """Artifacts that loaded: object parsed, ELF64 EM_BPF, code decoded."""
        return (a for a in self.artifacts if a.obj is not None)

    def artifact(self, path: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.entry.get("path") == path), None)

    def declared(self, kind: str) -> list[dict[str, Any]]:
        items = self.manifest.get(kind, [])
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def requires(self) -> dict[str, Any]:
        req = self.manifest.get("requires", {})
        return req if isinstance(req, dict) else {}


def selected_profiles(manifest: dict[str, Any] | None, requested: list[str] | None) -> list[str]:
    """The profiles to check: those requested, else those the package claims; package-core always."""
    known = spec.profiles()
    names = list(requested or [])
    if not names and manifest and isinstance(manifest.get("conformsTo"), list):
        names = [p for p in manifest["conformsTo"] if isinstance(p, str) and p in known]
    out: list[str] = ["package-core"]
    for name in names:
        if name not in known:
            from bpfcert.errors import BpfcertError

            raise BpfcertError(f"unknown profile {name!r} (known: {', '.join(sorted(known))})")
        out.extend(p for p in known[name] if p not in out)
    return out


def run_checks(ctx: Context, profiles: list[str]) -> list[Result]:
    """Run every registered check whose requirement belongs to one of `profiles`, in catalogue order."""
    for module in MODULES:
        importlib.import_module(f"bpfcert.checks.{module}")
    catalogue = spec.catalogue()
    results: list[Result] = []
    for req_id, requirement in catalogue.items():
        fn = REGISTRY.get(req_id)
        if fn is None or requirement.profile not in profiles:
            continue
        results.extend(fn(ctx))
    return results


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


def check_package(pkg: Package, requested_profiles: list[str] | None = None) -> Report:
    """Check an opened package against the selected profiles.

    Manifest problems stop the run early (later checks would only repeat them); an artifact that fails to load
    is reported once, by the requirement it failed, and left out of the checks that need its object.
    """
    from bpfcert.checks.artifacts import load_artifacts
    from bpfcert.checks.manifest import manifest_results

    manifest = pkg.manifest
    profiles = selected_profiles(manifest if isinstance(manifest, dict) else None, requested_profiles)
    results = list(manifest_results(pkg))
    if manifest is None or any(r.id.startswith("PKG-MAN-") and r.status is not Status.PASS for r in results):
        return Report(str(pkg.source), manifest, profiles, results, {"programs": [], "maps": []})
    ctx = Context(pkg, manifest)
    ctx.artifacts = load_artifacts(pkg, manifest)
    results.extend(run_checks(ctx, profiles))
    return Report(str(pkg.source), manifest, profiles, results, inventory(ctx))


def inventory(ctx: Context) -> dict[str, Any]:
    """Everything the objects define: entry programs (libbpf's definition) and every map, internal ones included."""
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
