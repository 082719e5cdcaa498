"""Benchmark the reference runtime on the host: install and uninstall of examples/xdp-counter-v1 (XDP on `lo` of a
private network namespace, pins on a private bpffs), and upgrade v1 -> v2 -> rollback, each request timed through
the runner protocol (`python -m refruntime serve`, so interpreter start-up is paid once), plus one cold
`python -m refruntime install` process for comparison.

    python bench/bench_reference.py [--runs N]

Prints medians; asserts nothing (target: install and uninstall <= 100 ms each). Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "runners" / "reference"
V1, V2 = ROOT / "examples" / "xdp-counter-v1", ROOT / "examples" / "xdp-counter-v2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    netns = f"bench-ref-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bench-ref-") as tmp:
        bpffs = Path(tmp) / "bpffs"
        bpffs.mkdir()
        subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "BPFCERT_REFERENCE_STATE": str(Path(tmp) / "state"),
                "BPFCERT_REFERENCE_BPFFS": str(bpffs / "bpfcert"),
            }
            run(netns, env, args.runs)
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=False)
            subprocess.run(["umount", "-l", str(bpffs)], check=False)
    return 0


def run(netns: str, env: dict[str, str], runs: int) -> None:
    argv = ["ip", "netns", "exec", netns, sys.executable, "-m", "refruntime"]
    proc = subprocess.Popen(
        [*argv, "serve"], cwd=RUNNER, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None

    def ask(request: dict[str, Any]) -> float:
        started = time.perf_counter()
        proc.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        reply = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        elapsed = (time.perf_counter() - started) * 1000
        assert reply["ok"], reply
        return elapsed

    ask({"cmd": "start", "protocol_version": 1})
    install = {"cmd": "install", "package": str(V1), "options": {"interface": "lo"}}
    uninstall = {"cmd": "uninstall", "name": "xdp-counter"}
    first = ask(install), ask(uninstall)
    times: dict[str, list[float]] = {"install": [], "uninstall": [], "upgrade": [], "rollback": []}
    for _ in range(runs):
        times["install"].append(ask(install))
        times["upgrade"].append(ask({"cmd": "upgrade", "package": str(V2), "options": {}}))
        times["rollback"].append(ask({"cmd": "rollback", "name": "xdp-counter"}))
        times["uninstall"].append(ask(uninstall))
    ask({"cmd": "stop"})
    proc.wait(timeout=30)
    print(f"first request of a fresh runner: install {first[0]:.1f} ms, uninstall {first[1]:.1f} ms")
    for op, values in times.items():
        print(f"{op:9s} median {statistics.median(values):6.1f} ms  max {max(values):6.1f} ms  ({runs} runs)")
    started = time.perf_counter()
    subprocess.run(
        [*argv, "install", str(V1), "--interface", "lo"], cwd=RUNNER, env=env, check=True, capture_output=True
    )
    middle = time.perf_counter()
    subprocess.run([*argv, "uninstall", "xdp-counter"], cwd=RUNNER, env=env, check=True, capture_output=True)
    ended = time.perf_counter()
    print(
        f"one process each (start-up included): install {(middle - started) * 1000:.1f} ms, "
        f"uninstall {(ended - middle) * 1000:.1f} ms"
    )


if __name__ == "__main__":
    sys.exit(main())
