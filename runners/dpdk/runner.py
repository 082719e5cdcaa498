"""DPDK's librte_bpf as a runner that speaks `exec` (bpfcert.isa.dpdk_engine does the work, the library in a
worker process of its own). BPFCERT_DPDK_JIT=1 selects the JIT, else the interpreter. A refusal or a run-time fault is
the command's failure; a library crash or hang (EngineCrash) ends the runner, which the harness reports as a crash."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from bpfcert.isa.dpdk_engine import DpdkEngine
from bpfcert.runners.serve import RunnerFailure, serve


def _version() -> str:
    try:
        query = ["dpkg-query", "-W", "-f", "${Version}", "librte-bpf23"]
        return subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main() -> None:
    engine = DpdkEngine(jit=os.environ.get("BPFCERT_DPDK_JIT") == "1")

    def execute(request: dict[str, Any]) -> dict[str, Any]:
        outcome = engine.run(bytes.fromhex(request["program_hex"]), bytes.fromhex(request["memory_hex"]))
        if outcome.error is not None:
            code = "internal" if outcome.error.startswith("librte_bpf faulted") else "verifier-rejected"
            raise RunnerFailure(code, outcome.error)
        return {"r0": outcome.r0}

    start = {
        "runtime": {
            "name": engine.name,
            "vendor": "DPDK (Debian package librte-bpf23)",
            "version": _version(),
            "homepage": "https://www.dpdk.org/",
            "source": "https://git.dpdk.org/dpdk/tree/lib/bpf",
        },
        "claims": {"profiles": [], "capabilities": ["exec"]},
    }
    try:
        serve(start, {"exec": execute})
    finally:
        engine.close()


if __name__ == "__main__":
    main()
