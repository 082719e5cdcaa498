"""Boot benchmark for the kernel targets: boot -> agent ready per kernel, QEMU peak RSS (VmHWM), and the wall
time of all cached kernels two at a time. Usage: python3 bench/bench_boot.py [--accel tcg] [--rounds N]"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.targets import vm
from bpfcert.targets.kernels import cached_kernels
from bpfcert.targets.schedule import Scheduler
from bpfcert.targets.series import SERIES


def peak_rss_mb(pid: int) -> float:
    """VmHWM of `pid` in MiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return kb / 1024


def one_boot(series: str, accel: str) -> dict[str, float | str]:
    target = vm.boot(series, accel)
    try:
        target.call("hello")
        return {"ready_s": target.boot_seconds, "rss_mb": peak_rss_mb(target.pids[0]), "accel": target.accel}
    finally:
        target.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accel", default="tcg", choices=["auto", "kvm", "tcg"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    series = [s for s in SERIES if s in cached_kernels()]
    if not series:
        print("no cached kernels; run `bpfcert kernels fetch`", file=sys.stderr)
        return 1
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rows = {}
    for s in series:
        runs = [one_boot(s, args.accel) for _ in range(args.rounds)]
        ready = [float(r["ready_s"]) for r in runs]
        rows[s] = {
            "ready_median_s": round(statistics.median(ready), 2),
            "ready_min_s": round(min(ready), 2),
            "qemu_peak_rss_mb": round(max(float(r["rss_mb"]) for r in runs), 1),
            "accel": runs[0]["accel"],
        }
        print(
            f"{s:5} boot->ready median {rows[s]['ready_median_s']:5.2f} s (min {rows[s]['ready_min_s']:5.2f})"
            f"  QEMU peak RSS {rows[s]['qemu_peak_rss_mb']:6.1f} MB  accel {rows[s]['accel']}"
        )
    started = time.monotonic()
    with Scheduler(args.accel, jobs=2) as scheduler:
        results = scheduler.run(series, lambda t: t.call("hello")["release"])
    wall = time.monotonic() - started
    failed = [name for name, r in results.items() if isinstance(r, Exception)]
    print(
        f"all {len(series)} kernels two at a time (boot + hello + shutdown): {wall:.2f} s"
        + (f"  FAILED: {failed}" if failed else "")
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(json.dumps({"per_kernel": rows, "all_two_at_a_time_s": round(wall, 2)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
