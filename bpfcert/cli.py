"""The `bpfcert` command: argument parsing and exit codes. Work is done by the library, imported lazily
so that start-up stays cheap (a `bpfcert check` must finish well inside 150 ms)."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import cast

from bpfcert import __version__

EXIT_UNUSABLE = 2  # 0 conformant and 1 nonconformant are the handlers' verdicts
EXIT_INTERNAL = 3  # an uncaught exception: a bug, never a verdict
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a process killed by SIGPIPE
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# command -> "module:function"; each function takes the parsed arguments and returns the exit code.
HANDLERS = {
    "check": "bpfcert.commands:check",
    "pack": "bpfcert.commands:pack",
    "import": "bpfcert.commands:import_package",
    "examples": "bpfcert.commands:examples",
    "kernels": "bpfcert.targets.kernels:command",
    "probe": "bpfcert.probes:command",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpfcert", description="Conformance and certification for eBPF software."
    )
    p.add_argument("--version", action="version", version=f"bpfcert {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check", help="check a package statically against the standard")
    c.add_argument("package", help="package directory, .tar.gz archive, or manifest file")
    c.add_argument(
        "--profile", action="append", help="profile(s) to check (default: those the package claims)"
    )
    c.add_argument("--format", choices=["text", "json", "junit"], default="text")
    c.add_argument("-o", "--output", help="write the report here instead of standard output")

    k = sub.add_parser("pack", help="derive a manifest from BPF objects and write a package")
    k.add_argument("objects", nargs="+", help="BPF ELF objects (or executables embedding them)")
    k.add_argument("-o", "--output", required=True, help="package directory to write")
    k.add_argument("--name", help="package name (default: from the first object's file name)")
    k.add_argument("--version", dest="pkg_version", default="0.1.0", help="package version (SemVer)")
    k.add_argument("--license", help="SPDX license expression (default: from the objects' license section)")
    k.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign the manifest with")
    k.add_argument("--force", action="store_true", help="write into a non-empty output directory")

    i = sub.add_parser("import", help="convert another package format into a bpfcert package")
    isub = i.add_subparsers(dest="format", required=True, metavar="FORMAT")
    ib = isub.add_parser("bpfman", help="bpfman bytecode image contents (object + io.ebpf.* label values)")
    ib.add_argument("object")
    ib.add_argument("--programs", required=True, help="io.ebpf.programs label value (JSON or @file)")
    ib.add_argument("--maps", default="{}", help="io.ebpf.maps label value (JSON or @file)")
    ib.add_argument("-o", "--output", required=True)
    ie = isub.add_parser("eunomia", help="eunomia-bpf package.json")
    ie.add_argument("package_json")
    ie.add_argument("-o", "--output", required=True)

    e = sub.add_parser("examples", help="check the bundled example packages and write reports (the main job)")
    e.add_argument("--reports", default="reports/examples", help="directory for the JSON and JUnit reports")

    kn = sub.add_parser("kernels", help="manage the cache of Debian kernels booted as targets")
    ksub = kn.add_subparsers(dest="action", required=True, metavar="ACTION")
    kl = ksub.add_parser("list", help="series, exact version, cached or not")
    kl.add_argument("--format", choices=["text", "json"], default="text")
    kf = ksub.add_parser("fetch", help="download the newest point release of each series")
    kf.add_argument("series", nargs="*", help="5.10, 6.1, 6.12, 7.2 (default: all)")
    kf.add_argument(
        "--if-missing", action="store_true", help="only fetch series not cached yet (no network when warm)"
    )

    pr = sub.add_parser("probe", help="probe kernel features on targets")
    pr.add_argument("--target", default="host", help="host, 5.10, 6.1, 6.12, 7.2, comma-separated, or all")
    pr.add_argument("--format", choices=["text", "json"], default="text")
    pr.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    pr.add_argument("--package", help="predict for this package whether each target meets its requires")
    pr.add_argument("-o", "--output", help="also save the JSON here (default: reports/probe/<time>.json)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bpfcert.errors import BpfcertError

    module, _, func = HANDLERS[args.command].partition(":")
    try:
        handler = cast(Callable[[argparse.Namespace], int], getattr(importlib.import_module(module), func))
        code = handler(args)
        sys.stdout.flush()  # a closed pipe shows up here, not at exit
        return code
    except BpfcertError as exc:
        _say(args.command, f"error: {exc}")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        _say(args.command, "interrupted")
        return 130
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if os.environ.get("BPFCERT_DEBUG"):
            import traceback

            traceback.print_exc()
        _say(args.command, f"internal error: {type(exc).__name__}: {exc} (please report)")
        return EXIT_INTERNAL


def _say(command: str, message: str) -> None:
    """One line on stderr: control characters (from names in hostile input) are shown escaped."""
    line = CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    print(f"bpfcert {command}: {line}", file=sys.stderr)


def _discard_stdout() -> None:
    """The reader of standard output went away: send what is still buffered nowhere, so that the interpreter's
    final flush does not fail again."""
    stdout = sys.stdout
    if stdout is sys.__stdout__ and stdout is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
        os.close(devnull)
