"""`bpfcert certify`: run the conformance suite (conformance/, shipped with bpfcert) in-process under pytest with
the bpfcert plugin, streaming results.jsonl into the output directory, then read the stream back and write
report.json and junit.xml there, the text summary on stdout. pytest's own output and the targets' progress go to
stderr. Nothing is written outside the output directory: no pytest cache, no bytecode, no Hypothesis database
(the plugin drops it with --results), temporary files under it (removed afterwards)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path

from bpfcert import bundled
from bpfcert.errors import BpfcertError
from bpfcert.results import Report

STREAM = "results.jsonl"
REPORTS = {"json": "report.json", "junit": "junit.xml"}


def suite_argv(args: argparse.Namespace, output: Path, package_profiles: list[str]) -> list[str]:
    """pytest's arguments for this certification; `package_profiles` are those the package suite judges."""
    suite = bundled.directory("conformance")
    argv = [
        str(suite), "-p", "bpfcert.pytest_plugin", "-p", "no:cacheprovider", "-c", "/dev/null",
        "--rootdir", str(output), "--confcutdir", str(suite), "--basetemp", str(output / "tmp"), "-q",
        "-s",  # no capture: the targets' progress (from background threads too) reaches stderr as it happens
        "--results", str(output / STREAM), "--target", args.target,
    ]
    for package in args.packages:
        argv += ["--package", str(Path(package).resolve())]
    for profile in dict.fromkeys([*(args.profile or []), *package_profiles]):
        argv += ["--profile", profile]
    if args.runtime:
        argv += ["--runtime", args.runtime]
    elif args.runner:
        argv += ["--runner", str(Path(args.runner).resolve())]
    else:
        argv += ["-m", "not vm"]  # no runtime: the package suite only, no kernel targets
    return argv


def check_input(args: argparse.Namespace) -> list[str]:
    """Unusable input (unknown runtime or profile, a package that cannot be opened) stops before anything runs.
    The package profiles the package suite will judge: package-core and those each package claims."""
    from bpfcert import spec
    from bpfcert.checks.profiles import selected_profiles
    from bpfcert.package import open_package
    from bpfcert.pytest_plugin import certified_packages

    if args.runtime or args.runner:
        from bpfcert.runners import discovery

        discovery.find(args.runtime, args.runner)
    unknown = sorted(set(args.profile or []) - set(spec.profiles()))
    if unknown:
        raise BpfcertError(f"unknown profile(s) {', '.join(unknown)} (known: {', '.join(spec.profiles())})")
    judged: list[str] = []
    for package in certified_packages(args.packages):
        with open_package(package) as pkg:
            manifest = pkg.manifest
        claimed = selected_profiles(manifest if isinstance(manifest, dict) else None, None)
        judged += [p for p in claimed if p not in judged]
    return judged


def importable_suite() -> None:
    """Let the suite's modules import each other as `conformance.*`: from a checkout, its root goes on the path;
    installed, the suite is bpfcert.conformance, aliased."""
    suite = bundled.directory("conformance")
    if suite.parent == bundled.PACKAGE:
        import importlib

        sys.modules.setdefault("conformance", importlib.import_module("bpfcert.conformance"))
    elif str(suite.parent) not in sys.path:
        sys.path.insert(0, str(suite.parent))


def command(args: argparse.Namespace) -> int:
    import pytest

    package_profiles = check_input(args)
    output = Path(args.output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BpfcertError(f"cannot create the output directory {output}: {exc.strerror}") from None
    output = output.resolve()
    importable_suite()
    bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the suite
    try:
        with contextlib.redirect_stdout(sys.stderr):
            code = pytest.main(suite_argv(args, output, package_profiles))
    finally:
        sys.dont_write_bytecode = bytecode
        shutil.rmtree(output / "tmp", ignore_errors=True)
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RuntimeError(f"the conformance suite did not run: pytest exit code {code}")
    report = Report.from_stream(output / STREAM)
    from bpfcert.report import writers

    every = writers()
    for name, filename in REPORTS.items():
        (output / filename).write_text(every[name].render([report]), encoding="utf-8")
    sys.stdout.write(every["text"].render([report]))
    return 0 if report.verdict == "conformant" else 1
