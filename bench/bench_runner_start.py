"""Start-up of the reference runtime as a runner on a target, the way RT-CRS-001 restarts it after each kill: a new
interpreter (cold) against a fork from its fork server (runner.json `preload`, bpfcert/targets/forkserver.py),
alternated in the same run. Each start is timed up to the runner's `start` reply; the fork server's own start is
paid by the first forked start and reported apart.

    python bench/bench_runner_start.py [--target 6.1] [--runs 10]

Prints medians and their ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.runners.client import RunnerClient
from bpfcert.runners.discovery import Runner, find
from bpfcert.targets.schedule import Scheduler
from bpfcert.targets.series import HOST
from bpfcert.targets.target import Target


def started(target: Target, runner: Runner) -> float:
    """Seconds to start `runner` on `target` and get its start reply (then stopped)."""
    begun = time.monotonic()
    client = RunnerClient.start(target, runner)
    took = time.monotonic() - begun
    client.stop()
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="6.1", help="host or a cached kernel (default 6.1)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    scratch = "/tmp" if args.target == HOST else "/run/tmp"
    forked = find("reference").with_env({"BPFCERT_REFERENCE_STATE": f"{scratch}/bench-runner-start"})
    cold = dataclasses.replace(forked, preload=())
    with Scheduler() as scheduler:
        scheduler.start([args.target])
        target = scheduler.get(args.target)
        first = started(target, forked)  # starts the fork server
        times: dict[str, list[float]] = {"cold": [], "forked": []}
        for _ in range(args.runs):
            times["cold"].append(started(target, cold))
            times["forked"].append(started(target, forked))
    medians = {how: statistics.median(values) for how, values in times.items()}
    print(f"target {args.target}, {args.runs} starts each, alternated")
    print(f"first forked start (the fork server starts): {first * 1000:7.1f} ms")
    for how, median in medians.items():
        print(f"{how:6} start, median: {median * 1000:7.1f} ms (min {min(times[how]) * 1000:.1f})")
    print(f"forked / cold: {medians['forked'] / medians['cold']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
