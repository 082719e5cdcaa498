"""JSON: the report document (spec/report.schema.json); several reports make a JSON array of documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bpfcert import SPEC_VERSION, __version__
from bpfcert.report import summary, writer
from bpfcert.results import Report


def document(report: Report) -> dict[str, Any]:
    """The report document (spec/report.schema.json): a package check's names its package and inventory, a run
    read back from a results stream its metadata (`run`)."""
    doc: dict[str, Any] = {"bpfcert": __version__, "specVersion": SPEC_VERSION, "kind": report.kind}
    if report.run:
        doc["run"] = {"subject": report.source, "complete": report.complete, **report.run}
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
        "summary": summary(report),
        "results": [r.to_json() for r in report.results],
    }
    if not report.run:
        doc["inventory"] = report.inventory
    if report.kind == "isa":
        from bpfcert.report import isa

        doc |= {"cases": isa.cases(report), "totals": isa.totals(report)}
    return doc


@writer("json", ".json")
def render(reports: Sequence[Report]) -> str:
    docs = [document(r) for r in reports]
    return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
