"""Expected failures (bpfcert.report.expected): a listed failure is XFAIL and does not fail the verdict, a listed
row that passes is a loud XPASS that does; every writer and the schema know both statuses; a malformed file is
refused in one line before anything runs. `bpfcert certify --expected-failures` on a real run, and --sign."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.pytest_plugin import certified_packages
from bpfcert.report import expected, writers
from bpfcert.report.json_doc import document
from bpfcert.report.text import report_text
from bpfcert.results import Report, Result, Status
from tests.signed_reports import key_pair

ROOT = Path(__file__).resolve().parent.parent

ROWS = [
    Result.of("RT-INS-001", Status.FAIL, "made an extra map", subject="package:a", target="6.1"),
    Result.of("RT-INS-001", Status.PASS, "exact", subject="package:b", target="6.1"),
    Result.of("RT-INS-001", Status.FAIL, "made an extra map", subject="package:a", target="host"),
    Result.of("RT-UNI-001", Status.ERROR, "runner died", subject="package:a", target="6.1"),
]


def entries(tmp_path: Path, text: str) -> list[expected.ExpectedFailure]:
    (tmp_path / "xfail.yaml").write_text(text)
    return expected.load(tmp_path / "xfail.yaml")


def test_listed_failures_become_xfail_and_no_longer_fail_the_verdict(tmp_path: Path) -> None:
    known = entries(tmp_path, """
- {id: RT-INS-001, target: "6.1", subject: "package:a", reason: "extra map on 6.1, bug #12"}
- {id: RT-UNI-001, target: "6.1", reason: "flaky runner"}
- {id: RT-INS-001, target: "host", reason: "same bug"}
""")
    out = expected.apply(ROWS[:1] + ROWS[2:], known)
    assert [r.status for r in out] == [Status.XFAIL, Status.XFAIL, Status.XFAIL]
    assert "bug #12" in out[0].message and "made an extra map" in out[0].message
    assert Report("r", out, kind="runtime", run={"targets": {}}).verdict == "conformant"
    assert Report("r", ROWS[:1], kind="runtime", run={"targets": {}}).verdict == "nonconformant"


def test_an_unexpected_pass_is_xpass_and_fails_the_run(tmp_path: Path) -> None:
    known = entries(tmp_path, '- {id: RT-INS-001, target: "6.1", reason: "extra map on 6.1"}\n')
    out = expected.apply(ROWS[:2], known)
    assert [r.status for r in out] == [Status.XFAIL, Status.XPASS]
    assert out[1].message.startswith("UNEXPECTED PASS")
    report = Report("r", out, kind="runtime", run={"targets": {}})
    assert report.verdict == "nonconformant"
    text = report_text(report)
    assert text.index("XPASS") < text.index("XFAIL")  # first, loud


def test_subject_and_target_narrow_an_entry(tmp_path: Path) -> None:
    known = entries(tmp_path, '- {id: RT-INS-001, target: "6.1", subject: "package:zzz", reason: "r"}\n')
    assert expected.apply(ROWS, known) == ROWS
    assert expected.unmatched(ROWS, known) == known


def test_every_writer_and_the_schema_know_xfail_and_xpass() -> None:
    rows = [
        Result.of("RT-INS-001", Status.XFAIL, "known", subject="package:a", target="6.1"),
        Result.of("RT-UNI-001", Status.XPASS, "UNEXPECTED PASS", subject="package:a", target="6.1"),
    ]
    report = Report("r", rows, ["runtime-core"], kind="runtime", run={"targets": {"6.1": {"name": "6.1"}}})
    jsonschema.validate(document(report), spec.schema("report"))
    for w in writers().values():
        assert "UNEXPECTED PASS" in w.render([report]) or w.name == "badge"
    case = {c.get("classname"): c for c in ET.fromstring(writers()["junit"].render([report])).iter("testcase")}
    assert case["RT-INS-001"].find("skipped") is not None and case["RT-UNI-001"].find("failure") is not None
    assert "1 xfail, 1 xpass" in report_text(report)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{id: RT-INS-001}", "is not of type"),
        ("- {id: RT-INS-001, target: host}", '"reason" is a required property'),
        ("- {id: rt-ins-1, target: host, reason: r}", "does not match"),
        ("- {id: RT-XXX-999, target: host, reason: r}", "unknown requirement ID RT-XXX-999"),
        ("- [unclosed", "not YAML"),
        ("- &e {id: RT-INS-001, target: host, reason: r}\n- *e\n", "YAML aliases are not allowed"),
    ],
)
def test_a_malformed_file_is_refused_naming_what_is_wrong(tmp_path: Path, text: str, reason: str) -> None:
    with pytest.raises(BpfcertError, match=reason):
        entries(tmp_path, text)


def test_certify_applies_expected_failures_and_signs(tmp_path: Path) -> None:
    """A real package-suite run: an entry for a requirement that passes makes an XPASS (exit 1), and --sign writes a
    certificate and a signature that verify accepts."""
    pem, public = key_pair()
    (tmp_path / "key.pem").write_bytes(pem)
    (tmp_path / "xfail.yaml").write_text(
        "- {id: PKG-MAN-001, target: static, subject: 'package:xdp-counter@1.0.0', reason: 'claims it fails'}\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "certify", "--output", "out", "--expected-failures", "xfail.yaml",
         "--sign", "key.pem", *certified_packages([])],  # the package suite (no arguments: the main job)
        capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "XPASS" in proc.stdout and "1 xpass" in proc.stdout
    out = tmp_path / "out"
    doc = json.loads((out / "report.json").read_text())
    jsonschema.validate(doc, spec.schema("report"))
    assert doc["verdict"] == "nonconformant" and doc["certificate"]["certifiedMode"] is False
    xpass = [r for r in doc["results"] if r["status"] == "xpass"]
    assert [(r["id"], r["subject"]) for r in xpass] == [("PKG-MAN-001", "package:xdp-counter@1.0.0")]
    stream = Report.from_stream(out / "results.jsonl")  # the stream keeps what the check decided
    assert all(r.status is not Status.XPASS for r in stream.results)
    (tmp_path / "trusted").write_text(f"{public} test\n")
    verify = subprocess.run(
        [sys.executable, "-m", "bpfcert", "report", "verify", "out/report.json", "--trusted-keys", "trusted"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
