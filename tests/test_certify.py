"""`bpfcert certify` on the host: the package suite over the bundled examples or given packages, results.jsonl,
report.json and junit.xml in the output directory (nothing written elsewhere), exit codes 0/1/2/3."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import main
from bpfcert.results import Report, Status

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def certify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bpfcert", "certify", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_certify_the_bundled_examples_writes_the_reports_and_nothing_else(tmp_path: Path) -> None:
    proc = certify(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "bpfcert-report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bpfcert-report"]  # no cache, bytecode or database
    assert sorted(p.name for p in out.iterdir()) == [
        "badge.json", "junit.xml", "report.html", "report.json", "results.jsonl", "summary.md"]
    doc = json.loads((out / "report.json").read_text())
    jsonschema.validate(doc, spec.schema("report"))
    assert (doc["kind"], doc["verdict"], doc["run"]["complete"]) == ("package", "conformant", True)
    names = [*EXAMPLES.glob("*/bpfpkg.json"), *EXAMPLES.glob("bpfeb/*/bpfpkg.json")]  # and their bpfeb builds
    subjects = {r["subject"].partition("/")[0] for r in doc["results"]}
    assert len(subjects) == len(names) and all(s.startswith("package:") for s in subjects)
    assert "package:xdp-counter@1.0.0+bpfeb" in subjects
    assert doc["results"] == [r.to_json() for r in Report.from_stream(out / "results.jsonl").results]
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert [int(s.get("tests", 0)) for s in suites] == [len(doc["results"])]  # one target: "static"
    assert proc.stdout.splitlines()[-1] == f"report: {out / 'report.html'}" and "verdict: conformant" in proc.stdout
    assert "passed" in proc.stderr  # pytest's own lines go to stderr, the summary alone to stdout


def test_certify_runs_the_isa_suite_of_the_engines_given(tmp_path: Path) -> None:
    pkg = EXAMPLES / "socket-filter"
    proc = certify(tmp_path, "--output", "out", "--engine", "python-reference", str(pkg))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = Report.from_stream(tmp_path / "out" / "results.jsonl")
    isa = [r for r in report.results if r.evidence.get("engine") == "python-reference"]
    assert len(isa) > 500 and {r.status for r in isa} == {Status.PASS} and "ISA-BASE-001" in {r.id for r in isa}


def test_certify_a_nonconformant_package_exits_1(tmp_path: Path) -> None:
    pkg = Path(shutil.copytree(EXAMPLES / "socket-filter", tmp_path / "pkg", ignore=shutil.ignore_patterns("src")))
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    proc = certify(tmp_path, "--output", "out", str(pkg))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = Report.from_stream(tmp_path / "out" / "results.jsonl")
    failed = [r for r in report.results if r.status is Status.FAIL]
    assert failed and all(r.subject.startswith("package:socket-filter") for r in failed)
    assert report.run["packages"] == [str(pkg)] and report.verdict == "nonconformant"


def test_certify_a_profile_nothing_judges_is_not_run_and_exits_1(tmp_path: Path) -> None:
    """Without a runtime no kernel test runs: the kernel profile's requirements are NOT_RUN rows, not absent."""
    proc = certify(tmp_path, "--profile", "kernel", str(EXAMPLES / "socket-filter"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "bpfcert-report" / "report.json").read_text())
    kernel = {i for i, r in spec.catalogue().items() if r.profile == "kernel"}
    assert {r["id"] for r in doc["results"] if r["status"] == "not-run"} == kernel


def test_certify_in_certified_mode_with_a_product(tmp_path: Path) -> None:
    """The product.yaml's claimed profile is certified; certified mode allows no skip (socket-filter skips two
    requirements that do not apply to it), so it is "Not certified", the reasons first, and exits 1."""
    (tmp_path / "product.yaml").write_text("vendor: Acme\nproduct: filter\nversion: '1.0'\ncontact: a@acme.example\n"
                                           "profiles: [package-core]\n")
    proc = certify(tmp_path, "--certified", "--product", "product.yaml", str(EXAMPLES / "socket-filter"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = tmp_path / "bpfcert-report"
    doc = json.loads((out / "report.json").read_text())
    jsonschema.validate(doc, spec.schema("report"))
    assert doc["mode"] == "certified" and doc["product"]["vendor"] == "Acme" and doc["profiles"] == ["package-core"]
    assert doc["verdicts"]["package-core"]["verdict"] == "Not certified" and doc["verdict"] == "conformant"
    skips = [r for r in doc["results"] if r["status"] == "skip"]
    assert skips and len(doc["reasons"]) == len(skips)
    assert proc.stdout.splitlines()[1].startswith("  NOT CERTIFIED")
    assert json.loads((out / "badge.json").read_text())["message"] == "not certified"
    assert (out / "summary.md").read_text().splitlines()[2].startswith("**Not certified**")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--runtime", "no-such-runtime"], "unknown runtime 'no-such-runtime'"),
        (["--runner", "/nonexistent"], "--runner /nonexistent: not a folder"),
        (["--profile", "gold"], "unknown profile(s) gold"),
        (["--engine", "linux-kernel,bogus"], "unknown ISA runtime 'bogus'"),
        (["/nonexistent/pkg"], "/nonexistent/pkg"),
        (["--product", "/nonexistent/product.yaml"], "cannot read the product file /nonexistent/product.yaml"),
    ],
)
def test_unusable_input_exits_2_in_one_line_before_writing_anything(
    tmp_path: Path, args: list[str], says: str
) -> None:
    proc = certify(tmp_path, *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and says in proc.stderr and proc.stderr.startswith("bpfcert certify: error")
    assert list(tmp_path.iterdir()) == []


def test_a_suite_that_cannot_run_is_an_internal_error_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pytest, "main", lambda argv: pytest.ExitCode.USAGE_ERROR)
    assert main(["certify", "--output", str(tmp_path / "out")]) == 3
    assert "did not run" in capsys.readouterr().err
