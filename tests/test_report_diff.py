"""`bpfcert report diff A B`: rows matched by requirement ID x subject x target; regressions (met -> not met),
fixes (the reverse), other status changes, new and removed rows; text and JSON; exit 1 only on a regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bpfcert.cli import main
from bpfcert.report.diff import diff
from bpfcert.results import Result, Status
from tests.signed_reports import run_doc


def row(req: str, status: Status, subject: str = "package:a", target: str = "host") -> Result:
    return Result.of(req, status, f"{req} {status}", subject=subject, target=target)


BEFORE = [
    row("RT-INS-001", Status.PASS),
    row("RT-UNI-001", Status.FAIL),
    row("RT-LST-001", Status.PASS),
    row("RT-IDM-001", Status.PASS, target="6.1"),
    row("RT-RBK-001", Status.SKIP),
]
AFTER = [
    row("RT-INS-001", Status.ERROR),  # regression
    row("RT-UNI-001", Status.PASS),  # fix
    row("RT-LST-001", Status.PASS),  # unchanged
    row("RT-IDM-001", Status.PASS, target="6.12"),  # new (and the 6.1 row removed)
    row("RT-RBK-001", Status.XFAIL),  # neither met -> unmet nor the reverse
]


def test_diff_sorts_every_change() -> None:
    d = diff(BEFORE, AFTER)
    assert [(c.id, c.before, c.after) for c in d.regressions] == [("RT-INS-001", "pass", "error")]
    assert [(c.id, c.before, c.after) for c in d.fixes] == [("RT-UNI-001", "fail", "pass")]
    assert [(c.id, c.target) for c in d.new] == [("RT-IDM-001", "6.12")]
    assert [(c.id, c.target) for c in d.removed] == [("RT-IDM-001", "6.1")]
    assert [(c.id, c.before, c.after) for c in d.changed] == [("RT-RBK-001", "skip", "xfail")]
    assert diff(BEFORE, BEFORE).to_json() == {k: [] for k in ("regressions", "fixes", "changed", "new", "removed")}


def test_repeated_rows_of_one_key_are_matched_in_order() -> None:
    before = [row("RT-CRS-001", Status.PASS), row("RT-CRS-001", Status.PASS)]
    after = [row("RT-CRS-001", Status.PASS), row("RT-CRS-001", Status.FAIL), row("RT-CRS-001", Status.PASS)]
    d = diff(before, after)
    assert len(d.regressions) == 1 and len(d.new) == 1 and not d.removed


def test_a_should_failure_is_a_regression_too() -> None:
    before = [row("PKG-PRG-003", Status.PASS, target="static")]
    after = [row("PKG-PRG-003", Status.FAIL, target="static")]
    assert len(diff(before, after).regressions) == 1


def test_cli_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(run_doc(*BEFORE)))
    b.write_text(json.dumps(run_doc(*AFTER)))
    assert main(["report", "diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "regressions: 1\n  RT-INS-001    package:a on host: pass -> error" in out and "fixes: 1" in out
    assert main(["report", "diff", str(b), str(a), "--format", "json"]) == 1  # the fix reversed is a regression
    doc = json.loads(capsys.readouterr().out)
    assert doc["regressions"][0]["id"] == "RT-UNI-001" and doc["fixes"][0]["id"] == "RT-INS-001"
    assert main(["report", "diff", str(a), str(a)]) == 0


def test_cli_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.json").write_text('{"results": [{"id": 1}]}')
    (tmp_path / "y.json").write_text("[]")
    assert main(["report", "diff", str(tmp_path / "x.json"), str(tmp_path / "x.json")]) == 2
    assert "a result row is malformed" in capsys.readouterr().err
    assert main(["report", "diff", str(tmp_path / "y.json"), str(tmp_path / "nope.json")]) == 2
    assert "not a report document" in capsys.readouterr().err
