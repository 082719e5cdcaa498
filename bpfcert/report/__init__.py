"""Report writers: one results model in, JSON / JUnit / text out.

Text from a package (names, paths, manifest values) reaches every writer; the text and JUnit writers pass it
through `printable`, so that it cannot forge lines or terminal output. JSON escapes it by itself.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bpfcert import SPEC_VERSION, __version__
from bpfcert.checks import Report
from bpfcert.results import Status


def printable(text: str) -> str:
    """`text` with every non-printable character (controls, ANSI escapes, line separators, bidi overrides, lone
    surrogates) written as a visible Python-style escape: "\\x1b", "\\n", "\\u202e"."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(report: Report) -> dict[str, int]:
    counts = Counter(str(r.status) for r in report.results)
    out = {s.value: counts.get(s.value, 0) for s in Status}
    out["must_failed"] = sum(1 for r in report.results if r.level == "MUST" and r.status is Status.FAIL)
    out["should_failed"] = sum(1 for r in report.results if r.level != "MUST" and r.status is Status.FAIL)
    return out


def to_json(report: Report) -> dict[str, Any]:
    """The report document (spec/report.schema.json)."""
    manifest = report.manifest if isinstance(report.manifest, dict) else {}
    return {
        "bpfcert": __version__,
        "specVersion": SPEC_VERSION,
        "kind": "package-check",
        "package": {
            "source": report.package,
            "name": manifest.get("name") if isinstance(manifest.get("name"), str) else None,
            "version": manifest.get("version") if isinstance(manifest.get("version"), str) else None,
        },
        "profiles": report.profiles,
        "verdict": report.verdict,
        "summary": summary(report),
        "results": [r.to_json() for r in report.results],
        "inventory": report.inventory,
    }
