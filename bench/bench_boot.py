"""Boot benchmark for the kernel targets: boot -> agent ready per kernel, QEMU peak RSS (VmHWM), and the wall
time of all cached kernels two at a time, each against the former guests (one CPU, x86 with acpi=off: the
baseline, booted in turn with today's in the same run). Usage: python3 bench/bench_boot.py [--accel tcg] [--rounds N]"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.targets import machines, vm
from bpfcert.targets.kernels import cached_kernels
from bpfcert.targets.schedule import Scheduler
from bpfcert.targets.series import SERIES

T = TypeVar("T")


@contextlib.contextmanager
def former_machines() -> Iterator[None]:
    """Boot guests as they were before GUEST_CPUS (the baseline): one CPU, no isolcpus, x86 with acpi=off."""
    saved_cpus, saved = machines.GUEST_CPUS, dict(machines.MACHINES)
    isolated = f" isolcpus={saved_cpus - 1}"
    machines.GUEST_CPUS = 1
    for key, m in saved.items():
        cmdline = m.arch.cmdline.replace(isolated, "") + (" acpi=off" if m.arch.name == "x86_64" else "")
        machines.MACHINES[key] = m._replace(arch=m.arch._replace(cmdline=cmdline))
    try:
        yield
    finally:
        machines.GUEST_CPUS = saved_cpus
        machines.MACHINES.update(saved)


def both(run: Callable[[], T]) -> dict[str, T]:
    """`run` on the former guests, then on today's: {"former": ..., "now": ...}."""
    with former_machines():
        former = run()
    return {"former": former, "now": run()}


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


def summary(runs: list[dict[str, float | str]]) -> dict[str, Any]:
    ready = [float(r["ready_s"]) for r in runs]
    return {
        "ready_median_s": round(statistics.median(ready), 2),
        "ready_min_s": round(min(ready), 2),
        "qemu_peak_rss_mb": round(max(float(r["rss_mb"]) for r in runs), 1),
        "accel": runs[0]["accel"],
    }


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
        runs = [both(partial(one_boot, s, args.accel)) for _ in range(args.rounds)]  # in turn: noise hits both
        rows[s] = {config: summary([r[config] for r in runs]) for config in ("former", "now")}
        former, now = rows[s]["former"], rows[s]["now"]
        print(
            f"{s:5} boot->ready median {now['ready_median_s']:5.2f} s (min {now['ready_min_s']:5.2f}; former "
            f"{former['ready_median_s']:5.2f} s, x{now['ready_median_s'] / former['ready_median_s']:.2f})"
            f"  QEMU peak RSS {now['qemu_peak_rss_mb']:6.1f} MB (former {former['qemu_peak_rss_mb']:6.1f})"
            f"  accel {now['accel']}"
        )

    def all_kernels() -> tuple[float, list[str]]:
        started = time.monotonic()
        with Scheduler(args.accel, jobs=2) as scheduler:
            results = scheduler.run(series, lambda t: t.call("hello")["release"])
        return time.monotonic() - started, [name for name, r in results.items() if isinstance(r, Exception)]

    walls = both(all_kernels)
    failed = walls["former"][1] + walls["now"][1]
    print(
        f"all {len(series)} kernels two at a time (boot + hello + shutdown): {walls['now'][0]:.2f} s "
        f"(former {walls['former'][0]:.2f} s, x{walls['now'][0] / walls['former'][0]:.2f})"
        + (f"  FAILED: {failed}" if failed else "")
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    walls_s = {config: round(wall, 2) for config, (wall, _) in walls.items()}
    print(json.dumps({"per_kernel": rows, "all_two_at_a_time_s": walls_s}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
