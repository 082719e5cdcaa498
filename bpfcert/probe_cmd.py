"""The `bpfcert probe` command: run the "probe" op (bpfcert.targets.probes) on each target, render the findings
as text or JSON, and predict from packages' code whether each target runs them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bpfcert.targets.probes import (
    AVAILABLE,
    HELPER_PROG_TYPES,
    INCONCLUSIVE,
    NOT_ALLOWED,
    UNSUPPORTED,
    read_kconfig,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable

    from bpfcert.portability import CodeNeeds


def probe_request(
    prog_types: Iterable[str] = (), kfuncs: Iterable[str] = (), kconfig: Iterable[str] = ()
) -> dict[str, Any]:
    """The "probe" op's arguments: defaults, plus what predicting packages needs (the helpers of the program
    types their code uses, the kfuncs it calls, the kconfig keys their manifests declare)."""
    request: dict[str, Any] = {
        "helper_prog_types": list(dict.fromkeys([*HELPER_PROG_TYPES, *prog_types])),
    }
    if kconfig := sorted(set(kconfig)):
        request["kconfig"] = kconfig
    if kfuncs := sorted(set(kfuncs)):
        request["kfuncs"] = kfuncs
    return request


def _probe_target(target: Any, request: dict[str, Any]) -> tuple[dict[str, Any], Any, float]:
    """The target's info, its probe findings, and the probe call's wall time seen from the host (for a VM:
    the guest's imports, the probes and the serial round trip)."""
    started = time.monotonic()
    findings = target.call("probe", **request)
    return target.info().to_json(), findings, round(time.monotonic() - started, 3)


def _target_entry(name: str, outcome: Any) -> dict[str, Any]:
    from bpfcert.errors import TargetError

    if isinstance(outcome, TargetError):
        error = {"kind": outcome.kind, "message": str(outcome), "console_tail": outcome.console}
        return {"name": name, "error": error}
    info, findings, seconds = outcome
    return {**info, "name": name, "probe_call_seconds": seconds, "findings": findings}


def kconfig_from_kernel_cache(entry: dict[str, Any], keys: list[str]) -> None:
    """A guest cannot read its own config (Debian kernels have no /proc/config.gz and the guest's /boot is the
    host's): take the requested keys from the config file cached with that kernel on the host."""
    kconfig = entry.get("findings", {}).get("kconfig")
    if not keys or kconfig is None or kconfig.get("source"):
        return
    from bpfcert.targets.kernels import cached_kernels

    cached = cached_kernels().get(entry["name"])
    if cached is None or cached.release != entry["findings"]["system"]["release"]:
        return
    source, values = read_kconfig(cached.release, [str(cached.config)])
    if source is not None:
        kconfig.update(source=f"host:{source}", values={k: values.get(k) for k in keys})


def _text(entry: dict[str, Any]) -> list[str]:
    """A few summary lines for one target."""
    if "error" in entry:
        return [f"{entry['name']}: ERROR ({entry['error']['kind']}) {entry['error']['message']}"]
    f = entry["findings"]
    system = f["system"]

    def count(group: dict[str, Any]) -> str:
        statuses = [v["status"] for v in group.values()]
        return "/".join(str(statuses.count(s)) for s in (AVAILABLE, UNSUPPORTED, INCONCLUSIVE))

    def unsupported(kind: str) -> str:
        return ", ".join(k for k, v in f[kind].items() if v["status"] == UNSUPPORTED) or "none"

    isa = ",".join(v for v, r in f["isa"].items() if r["status"] == AVAILABLE) or "none"
    helpers = f["helpers"]
    lines = [
        f"{entry['name']}: {system['release']} ({system['machine']}, accel {entry.get('accel', '-')}) "
        f"btf={'yes' if system['btf'] else 'no'} jit={_jit(system['bpf_jit_enable'])} "
        f"unprivileged_bpf_disabled={system['unprivileged_bpf_disabled']}",
        f"  program types {count(f['prog_types'])}  map types {count(f['map_types'])} "
        f"(available/unsupported/inconclusive)",
        f"  unsupported program types: {unsupported('prog_types')}",
        f"  unsupported map types: {unsupported('map_types')}",
        f"  ISA {isa}  bounded loops: {f['bounded_loops']['status']}  large programs: {f['large_programs']['status']}",
        "  links: " + "  ".join(f"{k} {v['status']}" for k, v in f.get("link_types", {}).items()),
    ]
    for prog_type, group in helpers["by_prog_type"].items():
        lines.append(
            f"  helpers for {prog_type}: {len(group[AVAILABLE])} available, {len(group[NOT_ALLOWED])} not allowed "
            f"for this program type, {len(group[INCONCLUSIVE])} inconclusive"
        )
    lines += [f"  helpers not probed for {t}: {why}" for t, why in helpers["skipped_prog_types"].items()]
    missing = helpers["missing"]
    lines.append(f"  helpers missing from this kernel ({len(missing)}): {', '.join(missing) or 'none'}")
    for kind in ("prog_types", "map_types"):
        odd = {k: v.get("evidence", "") for k, v in f[kind].items() if v["status"] == INCONCLUSIVE}
        lines += [f"  inconclusive {kind[:-1].replace('_', ' ')} {k}: {e}" for k, e in odd.items()]
    return lines


def _jit(bpf_jit_enable: int | None) -> str:
    """The JIT state as net.core.bpf_jit_enable shows it; a kernel without the sysctl has no JIT (CONFIG_BPF_JIT
    unset: the interpreter runs every program)."""
    return "no (interpreter only)" if bpf_jit_enable is None else str(bpf_jit_enable)


def _package_label(package: dict[str, Any]) -> str:
    return " ".join(filter(None, [package["name"], package["version"]])) or package["source"]


def _portability_text(packages: list[dict[str, Any]], entries: list[dict[str, Any]]) -> list[str]:
    """The package x target table (the limiting feature per cell), then each package's reasons and unknowns,
    where its manifest's requires predict otherwise, and where its manifest disagrees with its code."""
    from bpfcert.portability import cell, table

    names = [e["name"] for e in entries]
    errors = {e["name"]: f"error ({e['error']['kind']})" for e in entries if "error" in e}
    rows = [(_package_label(p), {**errors, **{r["target"]: cell(r) for r in p["predictions"]}}) for p in packages]
    lines = ["portability, from the code (exit 1 when a target does not run a package):", *table(rows, names)]
    for package in packages:
        label = _package_label(package)
        for prediction in package["predictions"]:
            said = prediction["manifest"]
            details = [f"    - {r}" for r in prediction["reasons"][1:]]
            details += [f"    ? {u}" for u in prediction["unknown"]]
            if said["meets"] != prediction["meets"]:
                details.append(f"    the manifest's requires predict {'yes' if said['meets'] else 'no'}")
                details += [f"      - {r}" for r in said["reasons"]]
            if details:
                lines += [f"  {label} on {prediction['target']}:", *details]
        if package["manifest_disagrees"]:
            lines.append(f"  {label}: the manifest disagrees with the code:")
            lines += [f"    - {d}" for d in package["manifest_disagrees"]]
    return lines


def _open_for_prediction(path: str) -> tuple[CodeNeeds, dict[str, Any]]:
    """A package's code needs and its manifest; PackageError if it is unusable."""
    from bpfcert.errors import PackageError
    from bpfcert.package import open_package
    from bpfcert.portability import code_needs

    with open_package(path) as pkg:
        if pkg.manifest is None:
            first = pkg.problems[0].message if pkg.problems else "no manifest"
            raise PackageError(f"cannot read the package's manifest: {first}")
        return code_needs(pkg), pkg.manifest


def _declared_kconfig(manifest: dict[str, Any]) -> dict[str, Any]:
    requires = manifest.get("requires")
    kconfig = requires.get("kconfig") if isinstance(requires, dict) else None
    return {k: v for k, v in kconfig.items() if isinstance(k, str)} if isinstance(kconfig, dict) else {}


def _package_entry(needs: CodeNeeds, manifest: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    """A package's report entry: what its code needs, where its manifest disagrees, and one prediction per
    probed target (from the code, with what the manifest's requires alone would predict)."""
    from bpfcert.portability import manifest_disagreements, predict, predict_code

    kconfig = _declared_kconfig(manifest)
    return {
        "source": needs.source,
        "name": needs.name,
        "version": needs.version,
        "needs": needs.to_json(),
        "manifest_disagrees": manifest_disagreements(needs, manifest),
        "predictions": [
            {
                **predict_code(needs, e["findings"], e["name"], kconfig),
                "manifest": {k: v for k, v in predict(manifest, e["findings"]).items() if k != "target"},
            }
            for e in entries
            if "findings" in e
        ],
    }


def command(args: argparse.Namespace) -> int:
    """`bpfcert probe`: probe each target, print text or JSON, save the JSON where asked (-o); with --package,
    predict from each package's code whether each target runs it. Exit 1 if a target errored or does not run
    a package, 2 for unusable input."""
    import datetime
    import json
    from pathlib import Path

    from bpfcert import __version__
    from bpfcert.errors import BpfcertError
    from bpfcert.targets.schedule import Progress, Scheduler
    from bpfcert.targets.target import resolve_names

    opened = [_open_for_prediction(path) for path in args.package or []]
    request = probe_request(
        prog_types=[t for needs, _ in opened for t in needs.prog_types],
        kfuncs=[k for needs, _ in opened for k in needs.kfuncs if not k.startswith("btf_id:")],
        kconfig=[k for _, manifest in opened for k in _declared_kconfig(manifest)],
    )
    names = resolve_names(args.target)
    with Scheduler(args.accel, progress=None if args.quiet else Progress("probe")) as scheduler:
        outcomes = scheduler.run(
            names,
            lambda t: _probe_target(t, request),
            summary=lambda outcome: f"{outcome[1]['probe_stats']['loads']} loads",
        )
    entries = [_target_entry(name, outcomes[name]) for name in names]
    for entry in entries:
        kconfig_from_kernel_cache(entry, request.get("kconfig", []))
    packages = [_package_entry(needs, manifest, entries) for needs, manifest in opened]
    report: dict[str, Any] = {
        "bpfcert": __version__,
        "kind": "probe",
        "created": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "targets": entries,
    }
    if packages:
        report["packages"] = packages
    if args.output:
        path = Path(args.output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(report, indent=2) + "\n")
        except OSError as exc:
            raise BpfcertError(f"cannot save the probe report to {path}: {exc.strerror}") from None
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        for entry in entries:
            print("\n".join(_text(entry)))
        if packages:
            print("\n".join(_portability_text(packages, entries)))
    failed = any("error" in e for e in entries)
    return 1 if failed or any(not r["meets"] for p in packages for r in p["predictions"]) else 0
