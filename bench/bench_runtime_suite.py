"""The runtime suite's wall time over the host and every cached kernel (issue goal: <= 3 min on 2 cores, each VM
booted once per run), as `bpfcert certify --runtime reference --target all` runs it: with the targets shared out
among pytest-xdist workers (bpfcert.pytest_workers; -n = default_jobs), and, in the same run as the baseline, in
one process, one target after another. Each figure is one fresh pytest process over conformance/test_runtime*.py,
VM boots included; the slowest tests of each run are printed after it.

Usage: python3 bench/bench_runtime_suite.py [--runtime NAME] [--target SPEC] [--timeout S] [--serial-only]"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.certify_cmd import worker_argv

ROOT = Path(__file__).resolve().parent.parent
SUITE = ["conformance/test_runtime.py", "conformance/test_runtime_model.py", "conformance/test_runtime_hub.py"]


def run(argv: list[str], timeout: float) -> tuple[float, str]:
    """Wall seconds of pytest with `argv` over the runtime suite, and its last line (the counts)."""
    command = [sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider", "--durations=5", *argv]
    started = time.monotonic()
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, "timeout"
    seconds = time.monotonic() - started
    slowest = re.findall(r"^\s*[\d.]+s (?:call|setup)\s+.*$", proc.stdout, re.M)
    for line in slowest:
        print(f"    {line.strip()}")
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    return seconds, f"{lines[-1].strip('= ')} (exit {proc.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", default="reference")
    parser.add_argument("--target", default="all", help="the targets (default: host + the four kernels)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each run")
    parser.add_argument("--serial-only", action="store_true", help="only the one-process baseline")
    args = parser.parse_args()
    common = ["--runtime", args.runtime, "--target", args.target]
    print(f"targets {args.target}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} before")
    workers = worker_argv(args.target)
    shared = None
    if workers and not args.serial_only:
        shared, summary = run([*common, *workers], args.timeout)
        print(f"side by side ({' '.join(workers)}): {shared:7.1f} s  {summary}")
    serial, summary = run(common, args.timeout)
    print(f"one process, one target at a time: {serial:7.1f} s  {summary}")
    if shared:
        print(f"side by side: {shared:.1f} s = {serial / shared:.2f}x faster than one at a time; goal <= 180 s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
