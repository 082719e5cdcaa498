"""`bpfcert check`'s cost (it has 150 ms for everything, interpreter included): a check of an example builds
only the check command's parser, imports nothing it does not use, and reads files by their size, not their
limit. bench/bench_check.py measures it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bpfcert.cli import HANDLERS, build_parser

ROOT = Path(__file__).resolve().parent.parent

# What `bpfcert check` of an example must not import: the SPDX library and its parser (a listed identifier, or
# what a kernel license string maps to, is known without them), and the targets (only other commands' --help
# names them).
NOT_IMPORTED = ("license_expression", "boolean", "bpfcert.targets")


def imported_by_check(package: str) -> list[str]:
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['bpfcert', 'check', {package!r}]\n"
        "try:\n    runpy.run_module('bpfcert', run_name='__main__')\n"
        "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n"
        "print(' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[-1].split()


@pytest.mark.parametrize("example", ["xdp-counter-v1", "core-tracing"])
def test_check_of_an_example_imports_neither_the_spdx_library_nor_the_targets(example: str) -> None:
    unwanted = [m for m in imported_by_check(f"examples/{example}") if m.startswith(NOT_IMPORTED)]
    assert unwanted == []


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(HANDLERS))
def test_a_command_alone_is_built_as_in_the_whole_parser(command: str) -> None:
    alone, whole = subcommands(build_parser(command)), subcommands(build_parser())
    assert list(alone) == [command]
    assert alone[command].format_help() == whole[command].format_help()


def test_reading_an_artifact_or_manifest_allocates_its_size_not_the_limit(tmp_path: Path) -> None:
    import tracemalloc

    from bpfcert.package import ARCHIVE_MEMBER_MAX_BYTES, load_manifest, read_artifact

    obj = tmp_path / "prog.bpf.o"
    obj.write_bytes(b"\x7fELF" * 1000)
    manifest = tmp_path / "bpfpkg.json"
    manifest.write_text('{"name": "x"}')
    tracemalloc.start()
    try:
        assert read_artifact(obj, ARCHIVE_MEMBER_MAX_BYTES) == obj.read_bytes()
        assert load_manifest(manifest) == {"name": "x"}
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 << 10, f"{peak} bytes allocated to read 4 KB"
