"""Does the running kernel meet a manifest's `requires`? Probes only what the package names (its program and map
types, its helpers for its own program types, its kfuncs, its kconfig keys) with bpfcert's probes, then judges
with `bpfcert.portability.predict`. Unknown answers (an inconclusive probe) never refuse a package."""

from __future__ import annotations

from typing import Any

from bpfcert import portability
from bpfcert.targets import bpf, probes


def _names(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def findings_for(manifest: dict[str, Any]) -> dict[str, Any]:
    """Probe findings (in `bpfcert probe`'s JSON shape) covering exactly what `manifest` requires."""
    requires = manifest.get("requires") if isinstance(manifest.get("requires"), dict) else {}
    assert isinstance(requires, dict)
    prober = probes.Prober()
    prog_types = _names(requires.get("prog_types"))
    program_types = [p.get("type") for p in manifest.get("programs", []) if isinstance(p, dict)]
    helper_types = [t for t in dict.fromkeys(_names(program_types) or prog_types) if t in bpf.PROG_TYPES]
    found_types = {t: prober.probe_prog_type(t).to_json() for t in dict.fromkeys(prog_types + helper_types)}
    helpers = _names(requires.get("helpers"))
    known = prober.helper_count() if helpers else len(bpf.HELPER_NAMES)
    by_type: dict[str, Any] = {}
    for t in helper_types:
        if found_types[t]["status"] != probes.AVAILABLE:
            continue
        group: dict[str, Any] = {probes.AVAILABLE: [], probes.NOT_ALLOWED: [], probes.INCONCLUSIVE: {}}
        for helper in helpers:
            short = helper.removeprefix("bpf_")
            if short not in bpf.HELPER_NAMES or bpf.HELPER_NAMES.index(short) >= known:
                continue
            finding = prober.probe_helper(t, bpf.HELPER_NAMES.index(short))
            if finding.status in (probes.AVAILABLE, probes.NOT_ALLOWED):
                group[finding.status].append(helper)
            else:
                group[probes.INCONCLUSIVE][helper] = finding.evidence
        by_type[t] = group
    kconfig = requires.get("kconfig") if isinstance(requires.get("kconfig"), dict) else {}
    assert isinstance(kconfig, dict)
    facts = probes.system_facts()
    source, config = probes.read_kconfig(facts["release"]) if kconfig else (None, {})
    out: dict[str, Any] = {
        "system": facts,
        "prog_types": found_types,
        "map_types": {
            t: probes.Prober().probe_map_type(t).to_json()
            for t in _names(requires.get("map_types"))
            if t in bpf.MAP_TYPES
        },
        "helpers": {"missing": [f"bpf_{n}" for n in bpf.HELPER_NAMES[known:]], "by_prog_type": by_type},
        "kconfig": {"source": source, "values": {k: config.get(k) for k in kconfig}},
    }
    kfuncs = _names(requires.get("kfuncs"))
    if kfuncs:
        out["kfuncs"] = {k: v.to_json() for k, v in probes.probe_kfuncs(kfuncs).items()}
    return out


def unmet(manifest: dict[str, Any]) -> list[str]:
    """The manifest's requirements the running kernel does not meet (empty: it meets them, as far as is known)."""
    reasons: list[str] = portability.predict(manifest, findings_for(manifest))["reasons"]
    return reasons
