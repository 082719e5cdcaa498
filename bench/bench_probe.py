"""Benchmark `bpfcert probe --target all`: wall time, and per target the probe's own time and load counts.

Usage: python3 bench/bench_probe.py [--target SPEC] [--accel auto|kvm|tcg] [--runs N]
The "Done when" bar: host + the four cached kernels in <= 15 s wall on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET_SECONDS = 15.0


def run_once(target: str, accel: str) -> tuple[float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "bpfcert", "probe", "--target", target, "--accel", accel, "-o", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        if not out.exists():
            sys.exit(f"bpfcert probe failed (exit {proc.returncode}): {proc.stderr.strip()}")
        report: dict[str, object] = json.loads(out.read_text())
    return wall, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="all")
    parser.add_argument("--accel", default="auto", choices=["auto", "kvm", "tcg"])
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    walls = []
    for run in range(1, args.runs + 1):
        wall, report = run_once(args.target, args.accel)
        walls.append(wall)
        print(f"run {run}: bpfcert probe --target {args.target}: {wall:.2f} s wall")
        for entry in report["targets"]:  # type: ignore[attr-defined]
            if "error" in entry:
                print(f"  {entry['name']:>5}: ERROR {entry['error']['kind']}: {entry['error']['message']}")
                continue
            stats = entry["findings"]["probe_stats"]
            sections = ", ".join(f"{k} {v:.2f}" for k, v in stats["sections"].items())
            helpers = entry["findings"]["helpers"]["probed_prog_types"]
            release = entry["findings"]["system"]["release"]
            print(
                f"  {entry['name']:>5}: {release} accel={entry.get('accel', '-')}"
                f" probe call {entry['probe_call_seconds']:.2f} s (probes {stats['seconds']:.2f} s),"
                f" {stats['loads']} loads ({sections});"
                f" helpers for {','.join(helpers)}"
            )
    best = min(walls)
    verdict = "within" if best <= BUDGET_SECONDS else "OVER"
    print(f"best wall {best:.2f} s: {verdict} the {BUDGET_SECONDS:.0f} s budget")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
