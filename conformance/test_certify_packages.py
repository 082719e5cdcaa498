"""The package suite of a certification: the static checks on each package given with --package (default: the
bundled examples and their bpfeb builds), every Result recorded with the package as its subject (NAME@VERSION, as
bpfcert.package.package_subject names it: `+bpfeb` added for big-endian objects, so that the two builds of one
package are rows of their own)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from bpfcert.checks import check_package
from bpfcert.package import open_package, package_subject
from bpfcert.pytest_plugin import certified_packages
from bpfcert.results import Result, Status


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "certified_package" in metafunc.fixturenames:
        paths = certified_packages(metafunc.config.getoption("--package"))
        ids = [("bpfeb/" if Path(p).parent.name == "bpfeb" else "") + Path(p).name for p in paths]
        metafunc.parametrize("certified_package", paths, ids=ids)


def as_package_row(r: Result, name: str) -> Result:
    """`r` about package `name` (NAME@VERSION): subject package:NAME@VERSION, then /its own subject if any."""
    return Result(r.id, r.status, r.message, level=r.level, target=r.target, evidence=r.evidence,
                  subject=f"package:{name}/{r.subject}" if r.subject else f"package:{name}")


def test_package_conforms(certified_package: str, record: Callable[[Iterable[Result]], list[Result]]) -> None:
    with open_package(certified_package) as pkg:
        report, name = check_package(pkg), package_subject(pkg)
    rows = record(as_package_row(r, name) for r in report.results)
    bad = [f"{r.id} {r.subject}: {r.message}" for r in rows if r.status not in (Status.PASS, Status.SKIP)]
    assert report.verdict == "conformant", "\n".join(bad)
