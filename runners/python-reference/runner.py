"""The reference interpreter as a runner that speaks `exec`: a program the interpreter refuses is the command's
`verifier-rejected` failure, one that faults while running (out-of-bounds access, call depth, instruction budget)
its `internal` failure, as for the other ISA runners."""

from __future__ import annotations

from typing import Any

import bpfcert
from bpfcert.isa.interpreter import RFC_GROUPS, Fault, Refused, load
from bpfcert.runners.serve import RunnerFailure, serve


def execute(request: dict[str, Any]) -> dict[str, Any]:
    try:
        program = load(bytes.fromhex(request["program_hex"]))
    except Refused as exc:
        raise RunnerFailure("verifier-rejected", str(exc)) from None
    try:
        return {"r0": program.run(bytes.fromhex(request["memory_hex"])).r0}
    except Fault as exc:
        raise RunnerFailure("internal", str(exc)) from None


def main() -> None:
    start = {
        "runtime": {
            "name": "python-reference",
            "vendor": "bpfcert",
            "version": bpfcert.__version__,
            "homepage": "https://www.rfc-editor.org/rfc/rfc9669",
            "source": "bpfcert/isa/interpreter.py",
        },
        "claims": {
            "profiles": sorted(f"isa-{group}" for group in RFC_GROUPS),
            "capabilities": ["exec"],
        },
    }
    serve(start, {"exec": execute})


if __name__ == "__main__":
    main()
