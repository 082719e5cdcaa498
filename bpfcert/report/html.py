"""HTML: one self-contained page (templates/report.html.j2, jinja2 with autoescaping) -- in certified mode the
reasons first, then the run and product, each profile's verdict, the targets, a requirement x target matrix and
every row that did not pass with its evidence. It reads without JavaScript; a little inline script filters the
matrix and details by status, profile and target, from the controls or the URL fragment
(`report.html#status=fail&profile=kernel&target=6.1`). A Content-Security-Policy allows that script alone (by its
hash) and no external resource. Text from packages and runners is escaped twice over: report.printable, then
HTML escaping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bpfcert import SPEC_VERSION, __version__, spec
from bpfcert.report import arch_of, per_arch, printable, summary, verdicts, writer
from bpfcert.results import Report, Result, Status

TEMPLATES = Path(__file__).resolve().parent / "templates"
# How bad a status is (a matrix cell shows its worst; details list the worst first); any other status ranks worst.
BADNESS = {Status.FAIL: 0, Status.ERROR: 1, Status.NOT_RUN: 2, Status.SKIP: 3, Status.PASS: 4}
EVIDENCE_CHARS = 20_000  # shown per row; a console dump can be megabytes
TARGET_FIELDS = (  # what the targets table shows of a TargetInfo
    ("release", "kernel"), ("version", "version (Debian package; host: uname -v)"), ("deb_sha256", ".deb sha256"),
    ("arch", "arch"), ("accel", "accelerator"), ("boot_seconds", "boot s"),
)


def _evidence(evidence: dict[str, Any]) -> str:
    text = json.dumps(evidence, indent=2, ensure_ascii=False, default=str)
    if len(text) > EVIDENCE_CHARS:
        text = f"{text[:EVIDENCE_CHARS]}\n… ({len(text)} characters in all; report.json has them)"
    return "\n".join(printable(line) for line in text.split("\n"))


def _covering(report: Report) -> dict[str, list[str]]:
    """Requirement profile -> the report's profiles whose verdict covers it."""
    out: dict[str, list[str]] = {}
    for profile in report.profiles:
        for covered in spec.profiles().get(profile, [profile]):
            out.setdefault(covered, []).append(profile)
    return out


def _matrix(report: Report, targets: list[str]) -> list[dict[str, Any]]:
    """One row per requirement with results (catalogue order), one cell per target: its worst status and counts."""
    catalogue, covering = spec.catalogue(), _covering(report)
    by_id: dict[str, list[Result]] = {}
    for r in report.results:
        by_id.setdefault(r.id, []).append(r)
    order = {i: n for n, i in enumerate(catalogue)}
    rows = []
    for req_id in sorted(by_id, key=lambda i: (order.get(i, len(order)), i)):
        req = catalogue.get(req_id)
        cells = []
        for target in targets:
            statuses = [r.status for r in by_id[req_id] if r.target == target]
            worst = min(statuses, key=lambda s: BADNESS.get(s, -1), default=None)
            shown = "" if worst is None else f"{worst} {statuses.count(worst)}/{len(statuses)}"
            shown = shown.removesuffix(" 1/1")
            cells.append({"target": printable(target), "status": str(worst or "none"), "shown": shown,
                          "statuses": " ".join(sorted({str(s) for s in statuses}))})
        rows.append({
            "id": req_id, "level": by_id[req_id][0].level, "title": req.title if req else "(not in this catalogue)",
            "profile": req.profile if req else "", "profiles": " ".join(covering.get(req.profile, []) if req else []),
            "cells": cells,
        })
    return rows


def _details(report: Report) -> list[dict[str, Any]]:
    covering, catalogue = _covering(report), spec.catalogue()
    out = []
    for r in sorted(report.results, key=lambda r: BADNESS.get(r.status, -1)):
        if r.status is Status.PASS:
            break
        req = catalogue.get(r.id)
        out.append({
            "id": r.id, "level": r.level, "status": str(r.status), "target": printable(r.target),
            "subject": printable(r.subject), "message": printable(r.message),
            "evidence": _evidence(r.evidence) if r.evidence else "",
            "fix": req.fix if req and r.status is Status.FAIL else "",
            "profiles": " ".join(covering.get(req.profile, []) if req else []),
        })
    return out


def _targets(report: Report) -> list[dict[str, Any]]:
    infos = report.run.get("targets", {})
    out = []
    for name in report.targets:
        info = infos.get(name, {})
        fields = [(label, printable(str(info[key]))) for key, label in TARGET_FIELDS if info.get(key) is not None]
        probes = info.get("probes") if isinstance(info.get("probes"), dict) else {}
        fields += [(f"probes: {printable(str(family))}", printable(", ".join(f"{k} {v}" for k, v in counts.items())))
                   for family, counts in probes.items() if isinstance(counts, dict)]
        if name == "static" and not info:
            fields = [("what", "the package checks, static: no kernel")]
        out.append({"name": printable(name), "fields": fields, "error": printable(str(info.get("error") or ""))})
    return out


def view(report: Report) -> dict[str, Any]:
    """What the template shows of one report, every string from the report already made printable."""
    product = report.product or {}
    judged = verdicts.profile_verdicts(report)
    targets = report.targets
    run = report.run
    meta = [("bpfcert", run.get("bpfcert", __version__)), ("standard", run.get("specVersion", SPEC_VERSION)),
            ("kind", report.kind), ("mode", "certified" if report.certified_mode else "normal"),
            ("started", run.get("started")), ("ended", run.get("ended") or ("-" if report.run else None)),
            ("host", run.get("host")), ("accelerator", report.accelerator if report.run else None)]
    return {
        "title": printable(" ".join(str(product[k]) for k in ("vendor", "product", "version")) if product
                           else report.title),
        "source": printable(report.source),
        "product": [(k, printable(str(product[k]))) for k in ("vendor", "product", "version", "contact")
                    if k in product] + ([("claims", printable(", ".join(map(str, product["profiles"]))))]
                                        if product else []),
        "meta": [(k, printable(str(v))) for k, v in meta if v is not None],
        "verdict": report.verdict, "complete": report.complete, "certified_mode": report.certified_mode,
        "reasons": [printable(r) for r in verdicts.reasons(report)],
        "verdicts": judged, "worst": verdicts.worst(judged), "summary": summary(report),
        "targets": _targets(report), "target_names": [printable(t) for t in targets],
        "target_arches": [printable(arch_of(report, t) or "") for t in targets],
        "arches": [(printable(a), counts) for a, counts in per_arch(report).items()],
        "matrix": _matrix(report, targets), "details": _details(report),
    }


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["css"] = lambda text: "v-" + str(text).lower().replace(" ", "-")  # a verdict or status as a class
    return env


@writer("html", ".html")
def render(reports: Sequence[Report]) -> str:
    import base64
    import hashlib

    env = _environment()
    script = (TEMPLATES / "filters.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    views = [view(r) for r in reports]
    page: str = env.get_template("report.html.j2").render(
        reports=views, script=script, script_hash=f"sha256-{digest}", statuses=[s.value for s in Status],
        profiles=list(dict.fromkeys(printable(p) for r in reports for p in r.profiles)),
        targets=list(dict.fromkeys(t for v in views for t in v["target_names"])),
        css=(TEMPLATES / "report.css").read_text(encoding="utf-8"),
    )
    return page if page.endswith("\n") else page + "\n"
