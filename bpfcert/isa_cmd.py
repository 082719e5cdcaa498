"""`bpfcert isa`: run ISA cases (the bundled conformance/isa/ or `--suite DIR`) on an engine, and `bpfcert isa fuzz`:
compare an engine with the reference interpreter on generated programs, saving each disagreement as a case.

A run is conformance/test_isa.py under pytest in-process (as `bpfcert certify` runs the whole suite), streaming
results.jsonl into the output directory (a temporary one unless --output), read back as the report printed in the
chosen format. pytest's own output goes to stderr."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

from bpfcert import bundled
from bpfcert.certify_cmd import output_directory, pytest_argv, run_suite
from bpfcert.errors import BpfcertError
from bpfcert.isa import suite


def check_input(args: argparse.Namespace) -> Path:
    """The suite directory, once the runtime name and the cases are known to be usable (else BpfcertError)."""
    suite.check_runtime(args.runtime)
    if args.target and not suite.on_kernel(args.runtime):
        raise BpfcertError(f"{args.runtime} runs on the host: --target applies to the linux-kernel engines")
    if args.target:
        from bpfcert.targets.target import resolve_names

        resolve_names(args.target)
    from bpfcert.isa.case import read_suite

    directory = Path(args.suite) if args.suite else bundled.directory("conformance") / "isa"
    if not directory.is_dir():
        raise BpfcertError(f"--suite {directory}: not a directory")
    if not read_suite(directory):
        raise BpfcertError(f"--suite {directory}: no .data cases in it")
    return directory


def suite_argv(args: argparse.Namespace, directory: Path, output: Path) -> list[str]:
    """pytest's arguments for running `directory`'s cases on args.runtime."""
    test = bundled.directory("conformance") / "test_isa.py"
    return [
        *pytest_argv(f"{test}::test_isa_cases", output), "--target", args.target or "host", "--engine", args.runtime,
        "--isa-suite", str(directory.resolve()),
    ]


def run(args: argparse.Namespace) -> int:
    from bpfcert.report import writers

    directory = check_input(args)
    with contextlib.ExitStack() as stack:
        if args.output:
            output = output_directory(args.output)
        else:
            output = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bpfcert-isa-"))).resolve()
        report = run_suite(suite_argv(args, directory, output), output, "the ISA suite")
    sys.stdout.write(writers()[args.format].render([report]))
    return 0 if report.verdict == "conformant" else 1


def fuzz(args: argparse.Namespace) -> int:
    """Differential fuzzing of one engine against the reference; 1 when it found a disagreement (saved)."""
    from bpfcert.isa.fuzz import fuzz as differential
    from bpfcert.targets.host import HostTarget

    engines = suite.open_engines(args.runtime, HostTarget() if suite.on_kernel(args.runtime) else None)
    save = output_directory(args.save)
    found = 0
    for engine in engines:
        try:
            cases = differential(engine, args.examples, save, args.seconds, findings=args.findings, start=args.seed)
        finally:
            engine.close()
        found += len(cases)
        for case in cases:
            print(f"{engine.name}: disagrees with python-reference on {case.name}: saved {save / case.name}.data")
        print(f"{engine.name}: {len(cases)} disagreement(s) in at most {args.examples} examples")
    return 1 if found else 0


def command(args: argparse.Namespace) -> int:
    if args.action == "fuzz":
        if not args.save:
            raise BpfcertError("isa fuzz needs --save DIR (where counterexamples are written)")
        return fuzz(args)
    return run(args)
