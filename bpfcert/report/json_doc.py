"""JSON: the report document (spec/report.schema.json); several reports make a JSON array of documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bpfcert import SPEC_VERSION, __version__
from bpfcert.report import summary, verdicts, writer
from bpfcert.results import Report


def document(report: Report) -> dict[str, Any]:
    """The report document (spec/report.schema.json): a package check's names its package and inventory, a run
    read back from a results stream its metadata (`run`) and the product certified; both the verdict of each
    profile (report.verdicts) and, in certified mode, the reasons for any "Not certified" first."""
    doc: dict[str, Any] = {"bpfcert": __version__, "specVersion": SPEC_VERSION, "kind": report.kind}
    doc["mode"] = "certified" if report.certified_mode else "normal"
    if report.certified_mode:
        doc["reasons"] = verdicts.reasons(report)
    if report.product is not None:
        doc["product"] = report.product
    if report.run:
        run = {k: v for k, v in report.run.items() if k not in ("product", "mode")}
        doc["run"] = {"subject": report.source, "complete": report.complete, **run, "accelerator": report.accelerator}
    else:
        manifest = report.manifest if isinstance(report.manifest, dict) else {}
        doc["package"] = {
            "source": report.source,
            "name": manifest.get("name") if isinstance(manifest.get("name"), str) else None,
            "version": manifest.get("version") if isinstance(manifest.get("version"), str) else None,
        }
    doc |= {
        "profiles": report.profiles,
        "verdict": report.verdict,
        "verdicts": {v.profile: v.to_json() for v in verdicts.profile_verdicts(report)},
        "summary": summary(report),
        "results": [r.to_json() for r in report.results],
    }
    if not report.run:
        doc["inventory"] = report.inventory
    if report.kind in ("isa", "runtime"):  # a runtime run may have ISA engines too (the main job)
        from bpfcert.report import isa

        cases = isa.cases(report)
        if cases or report.kind == "isa":
            doc |= {"cases": cases, "totals": isa.totals(report)}
    return doc


@writer("json", ".json")
def render(reports: Sequence[Report]) -> str:
    docs = [document(r) for r in reports]
    return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
