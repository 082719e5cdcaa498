"""Targets shared out among pytest-xdist workers (bpfcert.pytest_workers): the groups, the lines a worker forwards
and the controller replays, and a real `pytest -n 2 --dist loadgroup` run in which each target's tests stay on one
worker and every result reaches the one results stream."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bpfcert.certify_cmd import worker_argv
from bpfcert.pytest_workers import FORWARDED, Controller, Forwarded, groups, runs_here
from bpfcert.results import Report, Result, Status


def test_groups_are_balanced_and_stable() -> None:
    kernels = ["host", "5.10", "6.1", "6.12", "7.2"]
    dealt = groups(kernels, 2)
    assert dealt == groups(list(reversed(kernels)), 2)  # the same targets make the same groups, in any order
    per_group: dict[str, list[str]] = {}
    for target, group in dealt.items():
        per_group.setdefault(group, []).append(target)
    assert sorted(len([t for t in ts if t != "host"]) for ts in per_group.values()) == [2, 2]
    assert set(groups(kernels, 1).values()) == {"targets-0"}
    # a guest of another architecture weighs three of the host's: it gets a group to itself
    foreign = groups(["6.1/arm64", "6.1", "6.12", "7.2"], 2)
    assert [t for t, g in foreign.items() if g == foreign["6.1/arm64"]] == ["6.1/arm64"]


def test_forwarded_lines_are_replayed_in_order() -> None:
    forwarded = Forwarded()
    result = Result.of("RT-INS-001", Status.FAIL, "a pin left", target="6.1", subject="package:x",
                       evidence={"pins": ["/sys/fs/bpf/x"]})
    forwarded.note("target", {"name": "6.1", "path": Path("/x")})
    forwarded.result(result)
    kept: list[Result] = []
    notes: list[tuple[str, dict[str, Any]]] = []
    controller = Controller(kept.append, lambda kind, data: notes.append((kind, data)))
    report = SimpleNamespace(user_properties=[("other", 1), (FORWARDED, forwarded.drain())])
    controller.pytest_runtest_logreport(report)  # type: ignore[arg-type]
    assert kept == [result]
    assert notes == [("target", {"name": "6.1", "path": "/x"})]  # JSON values only cross to the controller
    assert report.user_properties == [("other", 1)]
    assert forwarded.drain() == []
    node = SimpleNamespace(workeroutput={FORWARDED: {"lines": [["result", result.to_json()]], "targets": ["6.1: x"]}})
    controller.pytest_testnodedown(node, None)
    assert kept == [result, result] and controller.summary == ["6.1: x"]


def test_certify_shares_several_targets_out() -> None:
    assert worker_argv("host,6.1") == ["-n", "2", "--dist", "loadgroup"]
    assert worker_argv("host") == []
    assert worker_argv("no-such-kernel") == []  # the plugin names the bad target


TESTS = '''
from bpfcert.results import Result, Status

def test_boot(target, record):
    record(Result.of("KRN-BOOT-001", Status.PASS, "up", target=target.name))

def test_splat(target, record):
    record(Result.of("KRN-SPLAT-001", Status.PASS, "quiet", target=target.name))

def test_runs_here_knows_only_its_groups(target, request):
    from bpfcert.pytest_workers import runs_here

    assert runs_here(request.config, target.name)
    assert not runs_here(request.config, "6.1" if target.name == "host" else "host")

def test_no_target(record):
    record(Result.of("PKG-MAN-001", Status.PASS, "static", target="static"))
'''


def run_workers(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """pytest -n 2 over TESTS on host and 6.1 with the bpfcert plugin; 6.1 has no cached kernel here (an empty
    BPFCERT_CACHE), so its tests skip without booting anything."""
    (tmp_path / "test_two_targets.py").write_text(TESTS)
    (tmp_path / "cache").mkdir()
    env = {**os.environ, "BPFCERT_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_two_targets.py"), "-p", "bpfcert.pytest_plugin",
         "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), "-v", "-n", "2",
         "--target", "host,6.1", "--results", str(tmp_path / "results.jsonl"), *extra],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_each_target_stays_on_one_worker_and_streams_to_the_controller(tmp_path: Path) -> None:
    proc = run_workers(tmp_path, "--dist", "loadgroup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    workers: dict[str, set[str]] = {}
    for worker, target in re.findall(r"\[(gw\d)\] .*(?:PASSED|SKIPPED) \S+\[(host|6\.1)\]@targets-\d", proc.stdout):
        workers.setdefault(target, set()).add(worker)
    assert {t: len(w) for t, w in workers.items()} == {"host": 1, "6.1": 1}, proc.stdout
    # a VM that cannot open here is not booted ahead by its worker either (as in one process): its tests skip
    assert "6.1: failed" not in proc.stdout + proc.stderr and "host: " in proc.stdout, proc.stdout + proc.stderr
    report = Report.from_stream(tmp_path / "results.jsonl")  # complete: header, lines, footer
    rows = {(r.id, r.target, r.status) for r in report.results}
    assert {("KRN-BOOT-001", "host", Status.PASS), ("KRN-SPLAT-001", "host", Status.PASS),
            ("PKG-MAN-001", "static", Status.PASS)} <= rows
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [line["name"] for line in lines if line["type"] == "target"] == ["host"]  # once, by its worker


def test_workers_without_loadgroup_are_refused(tmp_path: Path) -> None:
    proc = run_workers(tmp_path)
    assert proc.returncode != 0
    assert "--dist loadgroup" in proc.stdout + proc.stderr


def test_one_process_runs_every_target() -> None:
    config = SimpleNamespace(pluginmanager=SimpleNamespace(get_plugin=lambda name: None))
    assert runs_here(config, "6.1")  # type: ignore[arg-type]
