"""`bpfcert certify` on the host: the package suite over the bundled examples or given packages, results.jsonl,
report.json and junit.xml in the output directory (nothing written elsewhere), exit codes 0/1/2/3; the main job
(no arguments): what it runs, its progress per target, and each VM booted once for every module that uses it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import main
from bpfcert.pytest_plugin import certified_packages
from bpfcert.results import Report, Status

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def certify(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bpfcert", "certify", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_certify_the_bundled_examples_writes_the_reports_and_nothing_else(tmp_path: Path) -> None:
    proc = certify(tmp_path, *certified_packages([]))  # the package suite's own default: examples + bpfeb builds
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
    claimed = {p for manifest in names for p in json.loads(manifest.read_text())["conformsTo"]}
    assert doc["profiles"][0] == "package-core" and set(doc["profiles"]) == claimed  # the profiles judged
    assert f"(profiles: {', '.join(doc['profiles'])})" in proc.stdout
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


def main_job_argv(*args: str) -> list[str]:
    from bpfcert.certify_cmd import suite_argv
    from bpfcert.cli import build_parser

    return suite_argv(build_parser("certify").parse_args(["certify", *args]), Path("/out"), [])


def test_certify_without_arguments_is_the_main_job() -> None:
    """Examples, the reference runtime and every ISA engine on the plugin's default targets (host + cached
    kernels); naming a runtime or packages keeps today's meaning (no ISA engines, host unless --target)."""
    argv = main_job_argv()
    assert "--package" not in argv and "--target" not in argv and argv[argv.index("-m") + 1] == "not hub_client"
    assert argv[argv.index("--runtime") + 1] == "reference"
    assert argv[argv.index("--engine") + 1].split(",") == [
        "python-reference", "linux-kernel", "dpdk-interp", "dpdk-jit"]
    targeted = main_job_argv("--target", "host,6.1")
    assert targeted[targeted.index("--target") + 1] == "host,6.1" and "--engine" in targeted
    runtime = main_job_argv("--runtime", "reference")
    assert "--engine" not in runtime and runtime[runtime.index("--target") + 1] == "host"
    packages = main_job_argv(str(EXAMPLES / "socket-filter"))
    assert "--engine" not in packages and "--runtime" not in packages
    assert packages[-2:] == ["-m", "not hub_client and not vm"]


def test_main_job_on_the_host_certifies_examples_runtime_and_isa_engines(tmp_path: Path) -> None:
    """The main job on the host: every example package, the reference runtime and the host's ISA engines in one
    report, progress per target on stderr, the verdicts and report.html's path last on stdout."""
    proc = certify(tmp_path, "--target", "host", "--output", "out")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    jsonschema.validate(doc, spec.schema("report"))
    assert doc["kind"] == "runtime" and doc["run"]["complete"] and doc["run"]["runtime"] == "reference"
    engines = {r.get("evidence", {}).get("engine") for r in doc["results"] if r["id"].startswith("ISA-")}
    assert engines >= {"python-reference", "linux-kernel-jit", "dpdk-interp", "dpdk-jit"}
    assert {(t["engine"], t["target"]) for t in doc["totals"]} == {(e, "host") for e in engines}  # per group, version
    reference = [r for r in doc["results"] if r.get("evidence", {}).get("engine") == "python-reference"]
    assert len(reference) >= 300 and {r["status"] for r in reference} == {"pass"}
    assert any(r["subject"].startswith("package:") for r in doc["results"])
    assert any(r["id"].startswith("RT-") and r["target"] == "host" for r in doc["results"])
    assert "bpfcert: host ready" in proc.stderr and "bpfcert: host tests done (" in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"report: {tmp_path / 'out' / 'report.html'}" and lines[-2].startswith("verdict: ")
    assert any(line.startswith("profile runtime-core: ") for line in lines)


def test_hub_client_tests_are_deselected_by_their_marker_unless_the_profile_is_asked_for(tmp_path: Path) -> None:
    """The hub client's tests carry the hub_client marker; certify's selection (-m) leaves them out of the main
    job and runs them with --profile hub-client."""
    from bpfcert.certify_cmd import suite_argv
    from bpfcert.cli import build_parser

    def collected(*args: str) -> str:
        argv = suite_argv(build_parser("certify").parse_args(["certify", "--target", "host", *args]), tmp_path, [])
        proc = subprocess.run([sys.executable, "-m", "pytest", *argv, "--collect-only"], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert "test_runtime_hub.py::" not in collected() and "deselected" in collected("--runtime", "reference")
    assert "test_runtime_hub.py::test_hub_cli_004" in collected("--profile", "hub-client")
    marked = subprocess.run([sys.executable, "-m", "pytest", "conformance", "-p", "no:cacheprovider", "--collect-only",
                             "-q", "-m", "hub_client", "--target", "host"], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert marked.returncode == 0 and "test_runtime_hub.py::" in marked.stdout, marked.stdout + marked.stderr


@pytest.mark.vm
def test_one_session_boots_each_vm_once_for_every_module(tmp_path: Path, vm_series: str) -> None:
    """Two modules of the suite (the kernel profile's and the ISA cases') on one VM: one boot (the scheduler's
    progress, a boot counter), the ISA cases recorded there, the target's progress said to be done. (test_isa
    fails where the kernel refuses valid programs: tests/test_isa_kernel_vm.py names those findings.)"""
    suite = ROOT / "conformance"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite / "test_kernel_targets.py"), str(suite / "test_isa.py"), "-q",
         "-s", "-p", "no:cacheprovider", "--target", vm_series, "--engine", "linux-kernel",
         "--results", str(tmp_path / "results.jsonl"), "--rootdir", str(tmp_path), "--basetemp", str(tmp_path / "t")],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.stderr.count(f"bpfcert: {vm_series} booting") == 1, proc.stdout + proc.stderr
    assert f"bpfcert: {vm_series} tests done (" in proc.stderr
    assert re.search(r"\b2 passed", proc.stdout), proc.stdout  # the kernel profile's two tests
    report = Report.from_stream(tmp_path / "results.jsonl")
    assert report.complete and set(report.run["targets"]) == {vm_series}
    assert {r.evidence.get("engine") for r in report.results if r.id == "ISA-BASE-001"} == {
        "linux-kernel-jit", "linux-kernel-interp"}
