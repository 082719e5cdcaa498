"""The ISA part of a report (kind "isa"): one row per case, and pass/fail/skip/error counts per group and per cpu
version for each engine on each target, read from the results' evidence (bpfcert.isa.suite writes it)."""

from __future__ import annotations

from typing import Any

from bpfcert.report import printable
from bpfcert.results import Report, Result, Status

COUNTED = (Status.PASS, Status.FAIL, Status.SKIP, Status.ERROR)


def _rows(report: Report) -> list[Result]:
    return [r for r in report.results if "case" in r.evidence and "engine" in r.evidence]


def cases(report: Report) -> list[dict[str, Any]]:
    """Each case on each engine and target: its group, cpu version, verdict, expected, got and message."""
    keys = ("group", "cpu_version", "expected", "got")
    return [
        {"case": r.evidence["case"], "engine": r.evidence["engine"], "target": r.target, "verdict": str(r.status),
         "message": r.message, **{k: r.evidence.get(k) for k in keys}}
        for r in _rows(report)
    ]


def totals(report: Report) -> list[dict[str, Any]]:
    """Per engine and target (in order of appearance): counts per group and per cpu version ("v1".."v4")."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _rows(report):
        key = (str(r.evidence["engine"]), r.target)
        entry = out.setdefault(key, {"engine": key[0], "target": key[1], "groups": {}, "cpu_versions": {}})
        cells = (("groups", str(r.evidence.get("group"))), ("cpu_versions", f"v{r.evidence.get('cpu_version')}"))
        for table, name in cells:
            counts = entry[table].setdefault(name, {str(s): 0 for s in COUNTED})
            if r.status in COUNTED:
                counts[str(r.status)] += 1
    for entry in out.values():
        for table in ("groups", "cpu_versions"):
            entry[table] = dict(sorted(entry[table].items()))
    return list(out.values())


def table_lines(report: Report) -> list[str]:
    """The pass/fail/skip/error table per group and per cpu version of each engine on each target."""
    lines: list[str] = []
    for entry in totals(report):
        lines.append(f"  {printable(entry['engine'])} on {printable(entry['target'])}:")
        lines.append(f"    {'':<12}{'pass':>6}{'fail':>6}{'skip':>6}{'error':>7}")
        for table in ("groups", "cpu_versions"):
            for name, counts in entry[table].items():
                label = printable(name) if table == "groups" else f"cpu {name}"
                lines.append(
                    f"    {label:<12}{counts['pass']:>6}{counts['fail']:>6}{counts['skip']:>6}{counts['error']:>7}"
                )
    return lines


def failure_lines(result: Result) -> list[str]:
    """Under a failed case: what was expected, what the engine gave, and the program disassembled."""
    if "case" not in result.evidence:
        return []
    got, expected = result.evidence.get("got"), result.evidence.get("expected")
    lines = [f"{'':10}expected {printable(str(expected))}, got {printable(str(got))}"]
    lines += [f"{'':12}{printable(line)}" for line in str(result.evidence.get("program", "")).splitlines()]
    return lines
