"""JSON: the report document (spec/report.schema.json); several reports make a JSON array of documents."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bpfcert import SPEC_VERSION, __version__
from bpfcert.report import summary, writer
from bpfcert.results import Report


def document(report: Report) -> dict[str, Any]:
    """The report document (spec/report.schema.json)."""
    manifest = report.manifest if isinstance(report.manifest, dict) else {}
    return {
        "bpfcert": __version__,
        "specVersion": SPEC_VERSION,
        "kind": "package-check",
        "package": {
            "source": report.source,
            "name": manifest.get("name") if isinstance(manifest.get("name"), str) else None,
            "version": manifest.get("version") if isinstance(manifest.get("version"), str) else None,
        },
        "profiles": report.profiles,
        "verdict": report.verdict,
        "summary": summary(report),
        "results": [r.to_json() for r in report.results],
        "inventory": report.inventory,
    }


@writer("json", ".json")
def render(reports: Sequence[Report]) -> str:
    docs = [document(r) for r in reports]
    return json.dumps(docs[0] if len(docs) == 1 else docs, indent=2) + "\n"
