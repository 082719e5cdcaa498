"""The `bpfcert` command as a user meets it: exit codes, output formats, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "socket-filter"


def bpfcert(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpfcert", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_check_text_conformant() -> None:
    proc = bpfcert("check", str(EXAMPLE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: conformant" in proc.stdout


def test_check_json_report_matches_schema() -> None:
    proc = bpfcert("check", str(EXAMPLE), "--format", "json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(spec.schema("report")).validate(doc)
    assert doc["verdict"] == "conformant"
    assert {"name": "ipv4_tcp_only", "section": "socket", "type": "socket_filter"}.items() <= doc[
        "inventory"
    ]["programs"][0].items()
    assert {m["name"] for m in doc["inventory"]["maps"]} >= {"verdict_counters"}


def test_check_junit_parses(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    assert main(["check", str(EXAMPLE), "--format", "junit", "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    cases = root.findall(".//testcase")
    assert cases and all(c.get("classname", "").startswith("PKG-") for c in cases)
    assert root.get("failures") == "0"


def test_nonconformant_exit_1_and_junit_failure(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(pkg)], check=True)
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    proc = bpfcert("check", str(pkg), "--format", "junit")
    assert proc.returncode == 1
    failures = ET.fromstring(proc.stdout).findall(".//failure")
    assert [f.get("type") for f in failures] == ["PKG-ART-003"]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "/nonexistent/package"],
        ["check", "/dev/null"],
        ["pack", "/nonexistent.o", "-o", "/tmp/x"],
        ["pack", "/bin/true", "-o", "/tmp/x"],
        ["import", "bpfman", "/nonexistent.o", "--programs", "{}", "-o", "/tmp/x"],
        ["import", "eunomia", "/etc/hostname", "-o", "/tmp/x"],
        ["check", str(EXAMPLE), "--profile", "no-such-profile"],
    ],
)
def test_unusable_input_exit_2_one_line(args: list[str]) -> None:
    proc = bpfcert(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bpfcert ")


def test_internal_error_exit_3_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A crash is not a verdict: exit 3 and one line on stderr naming the exception, no traceback."""

    def crash(args: object) -> int:
        raise ValueError("boom\nverdict: conformant")

    monkeypatch.setattr("bpfcert.commands.check", crash)
    monkeypatch.delenv("BPFCERT_DEBUG", raising=False)
    assert main(["check", str(EXAMPLE)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("bpfcert check: internal error: ValueError: boom\\nverdict: conformant")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_internal_error_traceback_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(args: object) -> int:
        raise KeyError("x")

    monkeypatch.setattr("bpfcert.commands.check", crash)
    monkeypatch.setenv("BPFCERT_DEBUG", "1")
    assert main(["check", str(EXAMPLE)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("(please report)")


def test_closed_stdout_is_not_a_verdict() -> None:
    """A reader that goes away (`| head`) gives the shell's SIGPIPE status, not 1 (nonconformant)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bpfcert", "check", str(EXAMPLE), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert err == b""


def test_examples_main_job_writes_reports(tmp_path: Path) -> None:
    proc = bpfcert("examples", "--reports", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = sorted(tmp_path.glob("*.json"))
    assert len(reports) >= 4
    validator = jsonschema.Draft202012Validator(spec.schema("report"))
    for path in reports:
        validator.validate(json.loads(path.read_text()))
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "0"
