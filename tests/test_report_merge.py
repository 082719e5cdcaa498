"""`bpfcert report merge`: shards from real runs on the host (the reference runtime's certification and a
package-only run) merged into one report; a missing, incomplete (no footer) or unreadable shard is named and
makes the verdict incomplete, never dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import main
from bpfcert.pytest_plugin import certified_packages
from bpfcert.results import Report

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the reference runtime's stream on the host, a package-only run's stream)."""
    if os.geteuid() != 0:
        pytest.skip("the reference runtime's certification needs root (bpf, netns, bpffs mounts)")
    base = tmp_path_factory.mktemp("shards")
    examples = certified_packages([])  # named: certify without arguments is the main job, not the package suite
    for name, args in (("runtime", ["--runtime", "reference", "--target", "host"]), ("packages", examples)):
        proc = subprocess.run(
            [sys.executable, "-m", "bpfcert", "certify", "--output", name, *args], capture_output=True, text=True,
            cwd=base, timeout=600, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(ROOT)},
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return base / "runtime" / "results.jsonl", base / "packages" / "results.jsonl"


def merge(capsys: pytest.CaptureFixture[str], out: Path, *streams: Path) -> tuple[int, str, dict[str, object]]:
    code = main(["report", "merge", *map(str, streams), "-o", str(out)])
    text = capsys.readouterr().out
    doc = json.loads((out / "report.json").read_text())
    jsonschema.validate(doc, spec.schema("report"))
    return code, text, doc


def test_complete_shards_merge_into_one_conformant_report(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, packages = (Report.from_stream(p) for p in shards)
    code, text, doc = merge(capsys, tmp_path, *shards)
    assert code == 0 and "verdict: conformant" in text
    assert doc["kind"] == "runtime" and doc["verdict"] == "conformant" and doc["run"]["complete"] is True
    assert [s["state"] for s in doc["run"]["shards"]] == ["complete", "complete"]
    assert (tmp_path / "junit.xml").is_file()
    # every row of either shard is there; the package suite's rows, which both shards ran, once
    keys = Counter((r["id"], r.get("subject", ""), r["target"], r["status"]) for r in doc["results"])
    for report in (runtime, packages):
        assert {(r.id, r.subject, r.target, str(r.status)) for r in report.results} <= set(keys)
    assert len(doc["results"]) == len(runtime.results)  # the runtime run's rows include the package suite's
    assert set(doc["run"]["targets"]) == {"host"} and doc["run"]["runners"]


def test_a_missing_shard_is_named_and_the_verdict_incomplete(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lost = tmp_path / "shard-6.1-runtime-core" / "results.jsonl"
    code, text, doc = merge(capsys, tmp_path / "out", *shards, lost)
    assert code == 1 and doc["verdict"] == "incomplete" and doc["run"]["complete"] is False
    assert f"shard {lost}: missing" in text
    named = doc["run"]["shards"][2]
    assert (named["stream"], named["state"]) == (str(lost), "missing") and "did not run" in named["reason"]


def test_an_incomplete_or_unreadable_shard_is_named(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    died = tmp_path / "died.jsonl"
    died.write_text("".join(shards[1].read_text().splitlines(keepends=True)[:-1]))  # no footer: the job died
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("\x1b[31mnot a stream\n")
    code, text, doc = merge(capsys, tmp_path / "out", shards[0], died, garbage)
    assert code == 1 and doc["verdict"] == "incomplete"
    states = {Path(s["stream"]).name: s["state"] for s in doc["run"]["shards"]}
    assert states == {"results.jsonl": "complete", "died.jsonl": "incomplete", "garbage.jsonl": "unreadable"}
    assert "died.jsonl: incomplete" in text and "garbage.jsonl: unreadable" in text and "\x1b" not in text


def test_a_failing_shard_makes_the_merge_nonconformant(
    shards: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = shards[1].read_text().splitlines(keepends=True)
    failing = tmp_path / "failing.jsonl"
    failing.write_text("".join(line.replace('"status":"pass"', '"status":"fail"', 1) if i == 1 else line
                               for i, line in enumerate(lines)))
    code, _, doc = merge(capsys, tmp_path / "out", shards[0], failing)
    assert code == 1 and doc["verdict"] == "nonconformant" and doc["run"]["complete"] is True
