"""Foreign-architecture targets: boot -> agent ready per cached SERIES/ARCH target (one VM at a time, against the
x86_64 kernel of the same series booted in the same run as the baseline), and the guest userland's build time,
cold (resolve, download, unpack, merge, compile into an empty cache) and cached (resolve, found).
Usage: python3 bench/bench_arch.py [--rounds N] [--no-userland]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.targets import userland, vm
from bpfcert.targets.debian import PrivateApt
from bpfcert.targets.kernels import cached_kernels
from bpfcert.targets.machines import MACHINES, Arch


def ready_seconds(name: str) -> float:
    """Boot `name` under TCG, say hello, shut down; boot -> agent ready in seconds."""
    target = vm.boot(name, "tcg")
    try:
        target.call("hello")
        return target.boot_seconds
    finally:
        target.close()


def userland_seconds(arch: Arch) -> tuple[float, float]:
    """(cold, cached) build time of `arch`'s userland in a fresh cache, through the cache's apt lists."""
    apt = PrivateApt.of(arch)  # read before BPFCERT_CACHE points elsewhere: its lists are up to date
    saved = os.environ.get("BPFCERT_CACHE")
    with tempfile.TemporaryDirectory(prefix="bpfcert-bench-userland-") as tmp:
        os.environ["BPFCERT_CACHE"] = tmp
        try:
            started = time.monotonic()
            userland.build(apt, log=lambda line: None)
            cold = time.monotonic() - started
            started = time.monotonic()
            userland.build(apt, log=lambda line: None)
            return cold, time.monotonic() - started
        finally:
            if saved is None:
                os.environ.pop("BPFCERT_CACHE", None)
            else:
                os.environ["BPFCERT_CACHE"] = saved


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-userland", action="store_true", help="skip the userland build (it downloads ~20 MB)")
    args = parser.parse_args()
    cached = cached_kernels()
    foreign = [m for m in MACHINES.values() if m.arch.name != "x86_64" and m.name in cached]
    if not foreign:
        print("no foreign-architecture kernel cached; run `bpfcert kernels fetch 6.1/arm64`", file=sys.stderr)
        return 1
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows: dict[str, dict[str, float | None]] = {}
    for machine in foreign:
        baseline_name = machine.spec.series if machine.spec.series in cached else None
        ready, baseline = [], []
        for _ in range(args.rounds):  # interleaved, so that both see the same load
            ready.append(ready_seconds(machine.name))
            if baseline_name:
                baseline.append(ready_seconds(baseline_name))
        median = statistics.median(ready)
        base = statistics.median(baseline) if baseline else None
        rows[machine.name] = {"ready_median_s": round(median, 2), "x86_64_median_s": base and round(base, 2)}
        ratio = f"  {median / base:4.2f}x the x86_64 {baseline_name} ({base:.2f} s)" if base else ""
        print(f"{machine.name:11} boot->ready median {median:5.2f} s (min {min(ready):5.2f}, goal 6 s){ratio}")
    build: dict[str, dict[str, float]] = {}
    if not args.no_userland:
        for arch in dict.fromkeys(m.arch for m in foreign):
            cold, warm = userland_seconds(arch)
            build[arch.debian] = {"cold_s": round(cold, 2), "cached_s": round(warm, 2)}
            print(f"{arch.debian} userland build: cold {cold:6.2f} s, cached {warm:5.2f} s ({cold / warm:5.1f}x)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({"boot": rows, "userland": build}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
