"""The results stream: written line by line (bpfcert.stream), read back as the one report model
(Report.from_stream); a stream without its footer -- a run that died -- reads back incomplete, never as a pass."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.errors import StreamError
from bpfcert.report import writers
from bpfcert.report.json_doc import document
from bpfcert.results import Report, Result, Status
from bpfcert.stream import ResultsStream

ROOT = Path(__file__).resolve().parent.parent
PASS = Result.of("PKG-MAN-001", Status.PASS, "parses", subject="package:a@1", target="static")
FAIL = Result.of("KRN-BOOT-001", Status.FAIL, "no agent", target="6.1", evidence={"expected": 1, "actual": 0})
TARGET_6_1 = {"name": "6.1", "release": "6.1.0-37-amd64", "series": "6.1", "version": "6.1.140-1",
              "deb_sha256": "ab" * 32, "accel": "kvm", "arch": "x86_64", "boot_seconds": 2.5}
START = {"target": "host", "protocol_version": 1, "runtime": {"name": "reference"},
         "claims": {"profiles": ["package-core"], "capabilities": ["pin"]}}


def write_stream(path: Path, results: list[Result], *, footer: bool = True) -> None:
    stream = ResultsStream(path)
    stream.header(kind="runtime", subject="runtime reference", targets=["host", "6.1"], profiles=["kernel"],
                  runtime="reference")
    stream.note("runner", START)
    for r in results:
        stream.result(r)
    stream.note("target", TARGET_6_1)  # known only after the header: a VM boots in the background
    if footer:
        stream.footer()


def test_round_trip_keeps_every_result_and_folds_in_the_run_metadata(tmp_path: Path) -> None:
    write_stream(tmp_path / "s.jsonl", [PASS, FAIL])
    report = Report.from_stream(tmp_path / "s.jsonl")
    assert report.results == [PASS, FAIL]
    assert (report.kind, report.source, report.complete, report.verdict) == (
        "runtime", "runtime reference", True, "nonconformant")
    assert report.profiles == ["kernel", "package-core"]  # selected, then those the runner claims
    assert report.run["targets"] == {"host": {"name": "host"}, "6.1": TARGET_6_1}
    assert report.run["runners"] == [START] and report.run["runtime"] == "reference"
    assert report.run["started"] <= report.run["ended"]
    jsonschema.validate(document(report), spec.schema("report"))


def test_every_line_is_flushed_as_it_is_written(tmp_path: Path) -> None:
    stream = ResultsStream(tmp_path / "s.jsonl")
    stream.header(kind="package", subject="p", targets=[], profiles=[])
    stream.result(PASS)
    lines = (tmp_path / "s.jsonl").read_text().splitlines()  # read while the stream is still open
    assert [json.loads(line)["type"] for line in lines] == ["header", "result"]


def test_a_stream_without_footer_is_incomplete_never_a_pass(tmp_path: Path) -> None:
    write_stream(tmp_path / "s.jsonl", [PASS], footer=False)
    report = Report.from_stream(tmp_path / "s.jsonl")
    assert report.results == [PASS] and not report.complete
    assert report.verdict == "incomplete"
    doc = document(report)
    jsonschema.validate(doc, spec.schema("report"))
    assert doc["verdict"] == "incomplete" and doc["run"]["complete"] is False
    junit = ET.fromstring(writers()["junit"].render([report]))
    assert junit.find("testsuite/testcase[@name='run complete']/error") is not None
    assert "INCOMPLETE" in writers()["text"].render([report])


def test_a_torn_last_line_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_stream(path, [PASS, FAIL], footer=False)
    path.write_text(path.read_text() + '{"type":"result","id":"PKG-')
    report = Report.from_stream(path)
    assert report.results == [PASS, FAIL] and report.verdict == "incomplete"


HEADER = json.dumps({"type": "header", "stream": 1, "kind": "package", "subject": "p", "targets": [], "profiles": []})
ROW = json.dumps({"type": "result", **PASS.to_json()})


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        ([HEADER, "{not json", ROW], 2, "not JSON"),
        ([ROW], 1, "does not start with its header"),
        ([HEADER, HEADER], 2, "a second header"),
        ([HEADER.replace('"stream": 1', '"stream": 2')], 1, "stream version 2"),
        ([HEADER, ROW.replace('"status": "pass"', '"status": "green"')], 2, "unknown status 'green'"),
        ([HEADER, ROW.replace('"id": "PKG-MAN-001", ', "")], 2, "result field(s) id missing"),
        ([HEADER, ROW.replace('"PKG-MAN-001"', '"../../etc"')], 2, "bad requirement ID"),
        ([HEADER, json.dumps({"type": "result", **PASS.to_json(), "duration": "1s"})], 2, "duration"),
        ([HEADER, "[1, 2]"], 2, "a line without its type"),
        ([HEADER, '{"type": "verdict"}'], 2, "unknown line type 'verdict'"),
        ([HEADER, ROW, '{"type": "footer", "results": 2}'], 3, "the footer counts 2 results"),
        ([HEADER, '{"type": "footer", "results": 0}', ROW], 3, "a line after the footer"),
        ([HEADER, "", ROW], 2, "not JSON"),
    ],
)
def test_malformed_streams_are_a_stream_error_naming_the_line(
    tmp_path: Path, lines: list[str], line: int, reason: str
) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(StreamError, match=rf"line {line}: .*{re.escape(reason)}"):
        Report.from_stream(path)


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\n"])
def test_empty_or_undecodable_streams_are_a_stream_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "s.jsonl").write_bytes(content)
    with pytest.raises(StreamError, match=r"s\.jsonl"):
        Report.from_stream(tmp_path / "s.jsonl")
    with pytest.raises(StreamError, match="cannot read"):
        Report.from_stream(tmp_path / "missing.jsonl")


HARNESS = '''
import time
from pathlib import Path

import pytest

from bpfcert.results import Result, Status


def test_decided(record):
    record([Result.of("PKG-MAN-001", Status.PASS, "one"), Result.of("PKG-MAN-002", Status.PASS, "two")])


def test_hangs(record):
    record(Result.of("PKG-ART-001", Status.PASS, "three"))
    Path("{flag}").write_text("killing time")
    time.sleep(60)
'''


def run_suite(tmp_path: Path, source: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(source))
    argv = [sys.executable, "-m", "pytest", str(tmp_path / "test_suite.py"), "-p", "bpfcert.pytest_plugin",
            "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "-q",
            "--results", str(tmp_path / "s.jsonl"), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_harness_killed_mid_run_leaves_an_incomplete_stream_with_every_decided_result(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    (tmp_path / "test_suite.py").write_text(HARNESS.replace("{flag}", str(flag)))
    argv = [sys.executable, "-m", "pytest", str(tmp_path / "test_suite.py"), "-p", "bpfcert.pytest_plugin",
            "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "-q",
            "--results", str(tmp_path / "s.jsonl")]
    proc = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert flag.exists(), "the harness never reached its hanging test"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    report = Report.from_stream(tmp_path / "s.jsonl")
    assert [r.message for r in report.results] == ["one", "two", "three"]
    assert not report.complete and report.verdict == "incomplete"


def test_plugin_writes_error_skip_and_not_run_rows(tmp_path: Path) -> None:
    """A requirement's test that errors or skips without recording is its ERROR or SKIP row; a requirement of a
    selected profile that no test recorded is a NOT_RUN row: the report never silently lacks one."""
    proc = run_suite(tmp_path, '''
        import pytest

        @pytest.mark.requirement("KRN-BOOT-001")
        def test_breaks():
            raise RuntimeError("the runner vanished")

        @pytest.mark.requirement("PKG-SIG-001")
        def test_does_not_apply():
            pytest.skip("no signing key here")

        def test_unmarked_failure():
            assert False
    ''', "--profile", "kernel")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = Report.from_stream(tmp_path / "s.jsonl")
    rows = {(r.id, r.status): r for r in report.results}
    assert "RuntimeError: the runner vanished" in rows["KRN-BOOT-001", Status.ERROR].message
    assert rows["PKG-SIG-001", Status.SKIP].message == "not applicable: no signing key here"
    kernel = {i for i, req in spec.catalogue().items() if req.profile == "kernel"} - {"KRN-BOOT-001"}
    assert kernel and {r.id for r in report.results if r.status is Status.NOT_RUN} == kernel
    assert report.complete and report.verdict == "nonconformant" and report.profiles == ["kernel"]
    assert len(report.results) == 2 + len(kernel)  # the unmarked failure has no requirement: no row


def test_plugin_streams_each_target_as_it_opens_and_shows_its_progress(tmp_path: Path) -> None:
    proc = run_suite(tmp_path, '''
        from bpfcert.results import Result, Status

        def test_on_target(target, record):
            record(Result.of("KRN-BOOT-001", Status.PASS, "answers", target=target.name))
    ''', "--target", "host", "-s")  # as certify runs it: no capture, so progress reaches stderr at once
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "bpfcert: host opening" in proc.stderr and "bpfcert: host ready" in proc.stderr
    report = Report.from_stream(tmp_path / "s.jsonl")
    assert report.run["targets"]["host"]["release"] == os.uname().release
    assert [(r.id, r.target) for r in report.results] == [("KRN-BOOT-001", "host")]


@pytest.mark.parametrize("stop", ["raise KeyboardInterrupt", "assert False"])
def test_a_run_cut_short_has_no_footer(tmp_path: Path, stop: str) -> None:
    """Ctrl-C, or -x after a failure: the tests not reached are not a pass, the stream reads back incomplete."""
    proc = run_suite(tmp_path, f'''
        from bpfcert.results import Result, Status

        def test_first(record):
            record(Result.of("PKG-MAN-001", Status.PASS, "one"))

        def test_stops():
            {stop}

        def test_never_reached(record):
            record(Result.of("PKG-MAN-002", Status.PASS, "two"))
    ''', "-x")
    assert proc.returncode in (1, 2), proc.stdout + proc.stderr
    report = Report.from_stream(tmp_path / "s.jsonl")
    assert [r.message for r in report.results] == ["one"] and report.verdict == "incomplete"
