"""Foreign-architecture targets: boot -> agent ready per cached SERIES/ARCH target (one VM at a time, against the
x86_64 kernel of the same series booted in the same run as the baseline), the guest userland's build time,
cold (resolve, download, unpack, merge, compile into an empty cache) and cached (resolve, found), and (--isa) the
bundled ISA suite's time per kernel engine (linux-kernel-jit@arm64, ...; the target already booted) against the
python-reference interpreter on the host in the same run.
Usage: python3 bench/bench_arch.py [--rounds N] [--no-userland] [--isa]"""

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


def isa_seconds(name: str) -> dict[str, float]:
    """Boot `name` under TCG and run the bundled ISA suite on each engine its kernel offers: engine -> seconds."""
    from bpfcert import bundled
    from bpfcert.isa import suite
    from bpfcert.isa.case import read_suite
    from bpfcert.isa.kernel_engine import kernel_engines

    cases = read_suite(bundled.directory("conformance") / "isa")
    target = vm.boot(name, "tcg")
    try:
        out = {}
        for engine in kernel_engines(target)[0]:
            started = time.monotonic()
            list(suite.run_cases(engine, cases, name))
            out[engine.name] = round(time.monotonic() - started, 2)
        return out
    finally:
        target.close()


def reference_isa_seconds() -> float:
    """The bundled ISA suite on the python-reference interpreter, in this process (the baseline)."""
    from bpfcert import bundled
    from bpfcert.isa import suite
    from bpfcert.isa.case import read_suite
    from bpfcert.isa.interpreter import ReferenceEngine

    cases = read_suite(bundled.directory("conformance") / "isa")
    started = time.monotonic()
    list(suite.run_cases(ReferenceEngine(), cases, "host"))
    return time.monotonic() - started


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
    parser.add_argument("--isa", action="store_true", help="also time the ISA suite per kernel engine")
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
    isa: dict[str, float] = {}
    if args.isa:
        reference = reference_isa_seconds()
        isa["python-reference"] = round(reference, 2)
        for machine in foreign:
            for engine, seconds in isa_seconds(machine.name).items():
                isa[f"{engine} on {machine.name}"] = seconds
                print(f"ISA suite {engine:28} on {machine.name:10} {seconds:6.2f} s ({seconds / reference:5.1f}x the "
                      f"python-reference on the host, {reference:.2f} s)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({"boot": rows, "userland": build, "isa": isa}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
