"""JUnit XML: one testsuite per package, one testcase per result, the requirement ID as classname.
MUST failures are <failure>, errors <error>, skips <skipped>; SHOULD failures are warnings in <system-err>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from bpfcert.checks import Report
from bpfcert.report import summary
from bpfcert.results import Status


def to_junit(reports: Iterable[Report]) -> str:
    root = ET.Element("testsuites", name="bpfcert")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in reports:
        counts = summary(report)
        suite_counts = {
            "tests": len(report.results),
            "failures": counts["must_failed"],
            "errors": counts["error"],
            "skipped": counts["skip"],
        }
        attrs = {"name": report.package, **{k: str(v) for k, v in suite_counts.items()}}
        suite = ET.SubElement(root, "testsuite", attrs)
        for k, v in suite_counts.items():
            totals[k] += v
        for r in report.results:
            case = ET.SubElement(
                suite, "testcase", classname=r.id, name=f"{r.id} [{r.level}] {r.message}"[:200]
            )
            if r.status is Status.FAIL and r.level == "MUST":
                ET.SubElement(case, "failure", message=r.message, type=r.id).text = r.message
            elif r.status is Status.FAIL:
                ET.SubElement(case, "system-err").text = f"warning ({r.level} not met): {r.message}"
            elif r.status is Status.ERROR:
                ET.SubElement(case, "error", message=r.message, type=r.id).text = r.message
            elif r.status is Status.SKIP:
                ET.SubElement(case, "skipped", message=r.message)
    root.attrib.update({k: str(v) for k, v in totals.items()})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
