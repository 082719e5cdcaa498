"""One results model: a Result is built one way (Result.of, its level from the catalogue), the report model sits
beside it in bpfcert.results, and a check states its requirement ID once, on its @check line."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

import bpfcert
from bpfcert.checks import check_package
from bpfcert.checks.context import Context
from bpfcert.checks.run import run_checks
from bpfcert.errors import BpfcertError
from bpfcert.package import open_package
from bpfcert.results import Report, Result, Status

PACKAGE = Path(bpfcert.__file__).resolve().parent
EXAMPLES = PACKAGE.parent / "examples"
REQ_ID = re.compile(r"\b[A-Z]+-[A-Z]+-\d{3}\b")


def test_result_of_takes_the_level_from_the_catalogue() -> None:
    row = Result.of("PKG-PRG-003", Status.FAIL, "x", subject="program:p", evidence={"a": 1})
    assert (row.id, row.level, row.target, row.subject, row.evidence) == (
        "PKG-PRG-003", "SHOULD", "static", "program:p", {"a": 1}
    )
    assert Result.of("PKG-LIC-001", Status.PASS, "ok", target="6.1").level == "MUST"
    with pytest.raises(BpfcertError, match="unknown requirement ID PKG-NOPE-001"):
        Result.of("PKG-NOPE-001", Status.PASS, "ok")


def test_only_the_results_model_calls_the_result_constructor() -> None:
    """Everywhere else a Result is built by Result.of, so that its level always comes from the catalogue."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "results.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Result":
                calls.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert calls == []


def _check_functions() -> Iterator[tuple[str, ast.FunctionDef]]:
    """(the ID on its @check line, the function) for every registered check."""
    for path in sorted((PACKAGE / "checks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Name) and deco.func.id == "check":
                    first = deco.args[0]
                    assert isinstance(first, ast.Constant)
                    yield str(first.value), node


def test_a_check_states_its_requirement_id_once() -> None:
    """The @check line names the requirement; the body never repeats it (or names another)."""
    found = list(_check_functions())
    assert len(found) >= 25, "every static package check is registered with @check"
    repeated = {
        req_id: ids
        for req_id, fn in found
        if (ids := [n.value for stmt in fn.body for n in ast.walk(stmt) if _names_an_id(n)])
    }
    assert repeated == {}


def _names_an_id(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(REQ_ID.search(node.value))


def test_the_registry_supplies_the_requirement_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from bpfcert.checks import programs
    from bpfcert.checks.registry import REGISTRY, check

    monkeypatch.setitem(REGISTRY, "PKG-PRG-003", programs.entry_programs_declared)

    @check("PKG-PRG-003")
    def made_up(ctx: Context) -> Iterator[Result]:
        yield ctx.failed("made up", subject="program:p", why=1)
        yield ctx.passed("fine")

    rows = [r for r in run_checks(Context(cast(Any, None), {}), ["package-core"]) if r.id == "PKG-PRG-003"]
    assert rows == [
        Result.of("PKG-PRG-003", Status.FAIL, "made up", subject="program:p", evidence={"why": 1}),
        Result.of("PKG-PRG-003", Status.PASS, "fine"),
    ]


def test_the_report_model_sits_beside_result() -> None:
    failed = Result.of("PKG-LIC-001", Status.FAIL, "no license section")
    report = Report(source="/tmp/x/pkg", results=[failed], profiles=["package-core"], manifest={"name": "n"})
    assert (report.verdict, report.title, report.inventory) == ("nonconformant", "n", {})
    assert Report(source="/tmp/x/odd", results=[]).title == "odd"
    assert Report(source="/tmp/x/odd", results=[]).verdict == "conformant"
    with open_package(EXAMPLES / "socket-filter") as pkg:
        checked = check_package(pkg)
    assert isinstance(checked, Report) and checked.source == str(EXAMPLES / "socket-filter")
