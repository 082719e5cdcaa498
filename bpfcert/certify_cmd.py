"""`bpfcert certify`: run the conformance suite (conformance/, shipped with bpfcert) in-process under pytest with
the bpfcert plugin, streaming results.jsonl into the output directory, then read the stream back and write
the reports there (report.json, junit.xml, report.html, summary.md, badge.json), the text summary and the path of
report.html on stdout.

Without packages, --runtime or --runner it is the main job: the bundled example packages, the reference runtime and
the ISA engines (MAIN_ENGINES: the reference interpreter and DPDK's on the host, the kernel's JIT and interpreter on
every target) on the host and every cached kernel (or --target), in one pytest session that boots each VM once
for everything it runs there. Explicit arguments keep their meaning: --runtime/--runner certify that runtime (and
the packages) on --target (default host); packages alone, the package suite.

`--product FILE` names the vendor's product.yaml (its claimed profiles are certified unless --profile says
otherwise); `--certified` is certified mode (bpfcert.report.verdicts); known failures become XFAIL with
--expected-failures; with --sign, report.json gets a certificate and its signature report.json.sig. pytest's own
output and the targets' progress go to stderr. Nothing is written outside the output directory: no pytest cache, no
bytecode, no Hypothesis database (the plugin drops it with --results), temporary files under it (removed
afterwards)."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path

from bpfcert import bundled
from bpfcert.errors import BpfcertError
from bpfcert.product import load_product
from bpfcert.results import Report

STREAM = "results.jsonl"
MAIN_RUNTIME = "reference"
MAIN_ENGINES = ("python-reference", "linux-kernel", "dpdk-interp", "dpdk-jit")
REPORTS = {"json": "report.json", "junit": "junit.xml", "html": "report.html", "markdown": "summary.md",
           "badge": "badge.json"}


def pytest_argv(tests: str, output: Path) -> list[str]:
    """pytest's arguments for running `tests` of the bundled suite with the bpfcert plugin, streaming into `output`
    and writing nothing outside it (no cache, no config found upwards, temporary files under it)."""
    suite = bundled.directory("conformance")
    return [
        tests, "-p", "bpfcert.pytest_plugin", "-p", "no:cacheprovider", "-c", "/dev/null",
        "--rootdir", str(output), "--confcutdir", str(suite), "--basetemp", str(output / "tmp"), "-q",
        "-s",  # no capture: the targets' progress (from background threads too) reaches stderr as it happens
        # the plugin and Hypothesis are imported before pytest starts: their assertions need no rewriting
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
        "--results", str(output / STREAM),
    ]  # fmt: skip


def is_main_job(args: argparse.Namespace) -> bool:
    """Whether this certify is the main job: no package, runtime, runner, engine or hub named."""
    return not (args.packages or args.runtime or args.runner or args.engine or args.hub)


def suite_argv(args: argparse.Namespace, output: Path, package_profiles: list[str]) -> list[str]:
    """pytest's arguments for this certification; `package_profiles` are those the package suite judges."""
    suite = bundled.directory("conformance")
    argv = pytest_argv(str(suite), output)
    if args.target or not is_main_job(args):  # the main job's default is the plugin's: host + cached kernels
        argv += ["--target", args.target or "host"]
    argv += profile_argv(args, package_profiles)
    if args.hub:
        argv[0] = str(suite / "test_hub.py")  # the hub suite only (its hub-client rows judge bpfcert's own client)
        storage = ["--hub-storage", str(Path(args.hub_storage).resolve())] if args.hub_storage else []
        return [*argv, "--hub", args.hub, *storage, "-m", "not vm", "--profile", "hub"]
    argv += ["--ignore", str(suite / "test_hub.py")]  # a registry's suite: only with --hub
    marks = [] if "hub-client" in (args.profile or []) else ["not hub_client"]  # installing from a hub: if asked
    if is_main_job(args):
        return [*argv, "-m", " and ".join(marks), *worker_argv(args.target), "--runtime", MAIN_RUNTIME,
                "--engine", ",".join(MAIN_ENGINES)]
    for package in args.packages:
        argv += ["--package", str(Path(package).resolve())]
    if args.engine:
        argv += ["--engine", args.engine]
    if args.runtime:
        argv += ["--runtime", args.runtime]
    elif args.runner:
        argv += ["--runner", str(Path(args.runner).resolve())]
    elif args.engine:  # ISA engines without a runtime: the package and ISA suites
        argv[0:1] = [str(suite / "test_certify_packages.py"), str(suite / "test_isa.py")]
    else:
        return [*argv, "-m", " and ".join([*marks, "not vm"])]  # no runtime: the package suite only, no targets
    return [*argv, "-m", " and ".join(marks), *worker_argv(args.target or "host")]  # -m "" selects every test


def worker_argv(target: str | None) -> list[str]:
    """pytest-xdist's arguments when `target` (the plugin's --target) names several targets:
    that many workers, up to the VMs booted at a time (default_jobs), each target's tests on one of them
    (bpfcert.pytest_workers); none for a single target or a bad name (the plugin reports that)."""
    from bpfcert.errors import TargetError
    from bpfcert.targets.target import default_jobs, resolve_names

    try:
        names = resolve_names(target)
    except TargetError:
        return []
    if len(names) < 2:
        return []
    return ["-n", str(min(default_jobs(), len(names))), "--dist", "loadgroup"]


def profile_argv(args: argparse.Namespace, package_profiles: list[str]) -> list[str]:
    """The profiles certified (--profile, else the product's claims; and those the package suite judges), the
    product and certified mode."""
    argv: list[str] = []
    claimed = args.profile or (load_product(args.product)["profiles"] if args.product else [])
    for profile in dict.fromkeys([*claimed, *package_profiles]):
        argv += ["--profile", profile]
    if args.product:
        argv += ["--product", str(Path(args.product).resolve())]
    if args.certified:
        argv.append("--certified")
    return argv


def check_input(args: argparse.Namespace) -> list[str]:
    """Unusable input (unknown runtime or profile, a package that cannot be opened) stops before anything runs.
    The package profiles the package suite will judge: package-core and those each package claims."""
    from bpfcert import spec
    from bpfcert.checks.profiles import selected_profiles
    from bpfcert.package import open_package
    from bpfcert.pytest_plugin import certified_packages

    if args.hub:
        from bpfcert.hub.reference import parse

        if parse(args.hub, repository_required=False).repository:
            raise BpfcertError(f"--hub {args.hub}: give the registry (oci://HOST:PORT), not a repository")
        if args.hub_storage:
            from bpfcert.hub.server import check_storage

            try:
                check_storage(Path(args.hub_storage))
            except BpfcertError as exc:
                raise BpfcertError(f"--hub-storage: {exc}") from None
    elif args.hub_storage:
        raise BpfcertError("--hub-storage DIR goes with --hub URL (the registry whose storage it is)")
    if args.runtime or args.runner:
        from bpfcert.runners import discovery

        discovery.find(args.runtime, args.runner)
    if args.target:
        from bpfcert.targets.target import resolve_names

        resolve_names(args.target)
    if args.engine:
        from bpfcert.isa.suite import check_runtime

        for name in args.engine.split(","):
            check_runtime(name.strip())
    unknown = sorted(set(args.profile or []) - set(spec.profiles()))
    if unknown:
        raise BpfcertError(f"unknown profile(s) {', '.join(unknown)} (known: {', '.join(spec.profiles())})")
    if args.product:
        load_product(args.product)
    if args.hub:
        return []  # a registry's suite judges no package
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


def output_directory(path: str) -> Path:
    """`path` made (with its parents) and resolved; a one-line error when it cannot be."""
    output = Path(path)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BpfcertError(f"cannot create the output directory {output}: {exc.strerror}") from None
    return output.resolve()


def run_suite(argv: list[str], output: Path, what: str) -> Report:
    """Run the bundled suite in-process under pytest with `argv` (streaming into output/STREAM), pytest's own lines
    on stderr, no bytecode beside the suite and its temporary files removed; the report read back from the stream.
    A suite that did not run at all is an internal error naming `what`."""
    import pytest

    importable_suite()
    bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ beside the suite
    try:
        with contextlib.redirect_stdout(sys.stderr):
            code = pytest.main(argv)
    finally:
        sys.dont_write_bytecode = bytecode
        shutil.rmtree(output / "tmp", ignore_errors=True)
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RuntimeError(f"{what} did not run: pytest exit code {code}")
    return Report.from_stream(output / STREAM)


def command(args: argparse.Namespace) -> int:
    package_profiles = check_input(args)
    key, expected_failures = None, None  # read before the run: a bad key or file stops it before it starts
    if args.sign:
        from bpfcert.pack import read_key_file
        from bpfcert.signing import load_private_key

        key = read_key_file(args.sign)
        load_private_key(key)
    if args.expected_failures:
        from bpfcert.report import expected

        expected_failures = expected.load(args.expected_failures)
    output = output_directory(args.output)
    report = run_suite(suite_argv(args, output, package_profiles), output, "the conformance suite")
    if expected_failures is not None:
        from bpfcert.report import expected

        report.results = expected.apply(report.results, expected_failures)
        for entry in expected.unmatched(report.results, expected_failures):
            print(f"bpfcert certify: warning: expected failure {entry.id} on {entry.target} matches no row",
                  file=sys.stderr)
    write_reports(report, output)
    if key is not None:
        sign_report(output / REPORTS["json"], key, certified_mode=args.certified)
    return exit_code(report)


def exit_code(report: Report) -> int:
    """0 when every profile is certified (certified mode) or the run conformed, else 1."""
    if report.certified_mode:
        from bpfcert.report.verdicts import CERTIFIED, profile_verdicts

        judged = profile_verdicts(report)
        return 0 if judged and all(v.verdict == CERTIFIED for v in judged) else 1
    return 0 if report.verdict == "conformant" else 1


def write_reports(report: Report, output: Path) -> None:
    """Write the report files (REPORTS) into `output`, the text summary and the path of report.html on stdout."""
    from bpfcert.report import writers

    every = writers()
    try:
        output.mkdir(parents=True, exist_ok=True)
        for name, filename in REPORTS.items():
            (output / filename).write_text(every[name].render([report]), encoding="utf-8")
    except OSError as exc:
        raise BpfcertError(f"cannot write the reports into {output}: {exc.strerror}") from None
    sys.stdout.write(every["text"].render([report]))
    sys.stdout.write(f"report: {output / REPORTS['html']}\n")


def sign_report(path: Path, key: bytes, *, certified_mode: bool) -> None:
    """Give the report document at `path` its certificate (issued today, UTC) and write its signature beside it."""
    import json
    from datetime import UTC, datetime

    from bpfcert.report import sign

    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["certificate"] = sign.certificate(doc, certified_mode=certified_mode, issued=datetime.now(UTC).date())
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    sidecar = sign.sign(doc, key)
    Path(f"{path}{sign.SIDECAR_SUFFIX}").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    print(f"signed {path} ({sidecar['digest']}), certificate valid until {doc['certificate']['expires']}")
