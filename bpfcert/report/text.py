"""Plain text for people: one line per result (a failure followed by its "fix:" hint), failures first, then the
verdict."""

from __future__ import annotations

from bpfcert import spec
from bpfcert.checks import Report
from bpfcert.report import summary
from bpfcert.results import Status

ORDER = {Status.ERROR: 0, Status.FAIL: 1, Status.SKIP: 2, Status.PASS: 3}


def to_text(report: Report, verbose: bool = False) -> str:
    lines = [f"{report.package}  (profiles: {', '.join(report.profiles)})"]
    for r in sorted(report.results, key=lambda r: ORDER[r.status]):
        if r.status is Status.PASS and not verbose:
            continue
        tag = "WARN" if r.status is Status.FAIL and r.level != "MUST" else str(r.status).upper()
        lines.append(f"  {tag:<5} {r.id:<13} {r.level:<6} {r.message}")
        if r.status is Status.FAIL:
            lines.append(f"{'':8}fix: {spec.requirement(r.id).fix}")
    s = summary(report)
    lines.append(
        f"verdict: {report.verdict} ({s['pass']} passed, {s['must_failed']} failed, "
        f"{s['should_failed']} warnings, {s['skip']} skipped, {s['error']} errors)"
    )
    return "\n".join(lines) + "\n"
