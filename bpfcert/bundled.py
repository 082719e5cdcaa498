"""Where bpfcert lives: its package directory (`PACKAGE`, whose parent is what `import bpfcert` resolved from),
and the data it ships: the standard (`spec`), the example packages (`examples`), the runner folders (`runners`) and
the conformance suite (`conformance`, its ISA cases in conformance/isa).

A wheel installs them inside the package (bpfcert/spec, bpfcert/examples, bpfcert/runner_folders -- bpfcert/runners
is the protocol's code; pyproject.toml maps them there); a checkout, editable install included, keeps them beside it
at the repository root."""

from __future__ import annotations

from pathlib import Path

from bpfcert.errors import BpfcertError

PACKAGE = Path(__file__).resolve().parent
INSTALLED_AS = {"runners": "runner_folders"}  # where a name inside the package is taken by code


def directory(name: str) -> Path:
    """The directory of shipped data `name`: inside the installed package, else beside it in a checkout."""
    for path in (PACKAGE / INSTALLED_AS.get(name, name), PACKAGE.parent / name):
        if path.is_dir():
            return path
    raise BpfcertError(f"bpfcert's {name}/ is missing from {PACKAGE} and {PACKAGE.parent} (a broken install?)")
