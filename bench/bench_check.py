"""Benchmark `bpfcert check`: throughput over a directory of packages on one core, and the wall time of one
`bpfcert check` process on a ~50 KB object, interpreter start-up included.

    python bench/bench_check.py [--packages N] [--runs N]

Prints figures; asserts nothing (targets: >= 50 objects/s, <= 150 ms per invocation).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def fifty_kb_package(work: Path) -> Path:
    """A package whose single object is ~50 KB: the biggest bundled/corpus object, packed."""
    from bpfcert.cli import main

    objects = sorted(
        [*ROOT.glob("examples/*/*.o"), *ROOT.glob("tests/data/objects/*.o")],
        key=lambda p: abs(p.stat().st_size - 50_000),
    )
    for obj in objects:
        out = work / f"pkg-{obj.stem}"
        if main(["pack", str(obj), "-o", str(out)]) == 0:
            return out
    raise SystemExit("no packable object found")


def throughput(packages: list[Path]) -> float:
    from bpfcert.checks import check_package
    from bpfcert.package import open_package

    start = time.perf_counter()
    for path in packages:
        with open_package(path) as pkg:
            check_package(pkg)
    return len(packages) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        examples = sorted(p.parent for p in ROOT.glob("examples/*/bpfpkg.json"))
        copies = []
        for i in range(args.packages):
            dst = work / f"copy{i}"
            shutil.copytree(examples[i % len(examples)], dst, ignore=shutil.ignore_patterns("src"))
            copies.append(dst)
        throughput(copies[:4])  # warm imports
        rate = throughput(copies)
        print(
            f"check throughput: {rate:.0f} packages/s on one core ({args.packages} packages, 1 object each)"
        )

        pkg = fifty_kb_package(work)
        obj = next(pkg.glob("*.o"))
        exe = shutil.which("bpfcert") or ""
        cmd = [exe, "check", str(pkg)] if exe else [sys.executable, "-m", "bpfcert", "check", str(pkg)]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True)
            times.append(time.perf_counter() - t0)
        print(
            f"single `bpfcert check` of a {obj.stat().st_size / 1000:.0f} KB object: "
            f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms "
            f"over {args.runs} runs (exit {proc.returncode}; {' '.join(cmd[:2])})"
        )


if __name__ == "__main__":
    main()
