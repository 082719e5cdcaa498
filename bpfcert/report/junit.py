"""JUnit XML: one testsuite per package and target (named by the package's name and version, and the target
unless it is "static"), one testcase per result; an incomplete run is an errored "run complete" testcase.

A testcase is named by requirement ID and subject only, never by message text, so CI can follow it across runs
(a requirement with several rows of one subject gets " #2", " #3" in report order). MUST failures and MUST rows
not run are <failure>, so is any unexpected pass (xpass), errors <error>, skips, expected failures (xfail)
and other rows not run <skipped>; SHOULD failures are warnings in
<system-err>. Text from the package is escaped (report.printable): XML 1.0 cannot carry most control
characters, not even as character references.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bpfcert.report import printable, writer
from bpfcert.results import Report, Result, Status


def _case_names(results: list[Result]) -> list[str]:
    seen: Counter[str] = Counter()
    out = []
    for r in results:
        name = printable(f"{r.id} {r.subject}" if r.subject else r.id)
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return out


def _outcome(r: Result) -> str:
    """The JUnit element of a result: failure, error, skipped, system-err (a warning) or "" (passed)."""
    if r.status is Status.FAIL:
        return "failure" if r.level == "MUST" else "system-err"
    if r.status is Status.XPASS:
        return "failure"  # at any level: the expected-failures file is stale
    if r.status is Status.NOT_RUN:
        return "failure" if r.level == "MUST" else "skipped"
    return {Status.ERROR: "error", Status.SKIP: "skipped", Status.XFAIL: "skipped"}.get(r.status, "")


INCOMPLETE = "the run stopped before its end: the results stream has no footer"


def _suites(reports: Sequence[Report]) -> list[tuple[Report, str, list[Result]]]:
    """(report, target, its results on that target), in order of first appearance; a report without results
    still gets its suite."""
    out = []
    for report in reports:
        by_target: dict[str, list[Result]] = {}
        for r in report.results:
            by_target.setdefault(r.target, []).append(r)
        out += [(report, target, rows) for target, rows in (by_target or {"static": []}).items()]
    return out


@writer("junit", ".xml")
def render(reports: Sequence[Report]) -> str:
    import xml.etree.ElementTree as ET  # only when JUnit is asked for: its import costs ~10 ms

    root = ET.Element("testsuites", name="bpfcert")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report, target, results in _suites(reports):
        outcomes = [_outcome(r) for r in results]
        suite_counts = {
            "tests": len(results) + (not report.complete),
            "failures": outcomes.count("failure"),
            "errors": outcomes.count("error") + (not report.complete),
            "skipped": outcomes.count("skipped"),
        }
        name = report.title if target == "static" else f"{report.title} on {target}"
        attrs = {"name": printable(name), **{k: str(v) for k, v in suite_counts.items()}}
        suite = ET.SubElement(root, "testsuite", attrs)
        for k, v in suite_counts.items():
            totals[k] += v
        if not report.complete:
            case = ET.SubElement(suite, "testcase", classname="bpfcert", name="run complete")
            ET.SubElement(case, "error", message=INCOMPLETE, type="incomplete").text = INCOMPLETE
        for r, name, outcome in zip(results, _case_names(results), outcomes, strict=True):
            case = ET.SubElement(suite, "testcase", classname=r.id, name=name)
            message = printable(r.message)
            if outcome == "system-err":
                ET.SubElement(case, outcome).text = f"warning ({r.level} not met): {message}"
            elif outcome == "skipped":
                ET.SubElement(case, outcome, message=message)
            elif outcome:
                ET.SubElement(case, outcome, message=message, type=r.id).text = message
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
