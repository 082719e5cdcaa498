"""The main job's wall time (`bpfcert certify`: example packages, reference runtime, ISA engines on the host and
every cached kernel), side by side in the same run with simply booting those kernels and shutting them down through
the same scheduler (same parallelism), and with the main job without its runtime suite (what the packages, the ISA
engines and the kernel profile cost), so that the runtime suite's share shows. Goals: main job <= 60 s and <= 1.5x
boot-only. Each figure is one fresh process, as a user runs it.

Usage: python3 bench/bench_main_job.py [--timeout S] [--skip-full]"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.certify_cmd import check_input, suite_argv
from bpfcert.cli import build_parser
from bpfcert.targets.kernels import cached_kernels
from bpfcert.targets.series import SERIES

ROOT = Path(__file__).resolve().parent.parent
BOOT_ONLY = """
from bpfcert.targets.schedule import Scheduler
names = {names!r}
with Scheduler() as scheduler:  # the plugin's: default accelerator and jobs
    scheduler.start(names)
    for name in names:
        scheduler.get(name).call("hello")
"""


def timed(argv: list[str], timeout: float) -> tuple[float, int | str]:
    """Wall seconds of `argv` run from the checkout, and its exit code ("timeout" if it ran out of time)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    try:
        code: int | str = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    return time.monotonic() - started, code


def without_runtime(output: Path) -> list[str]:
    """The main job's pytest arguments less the runtime under test (its suite then skips at once)."""
    output.mkdir(parents=True)  # as certify makes it: pytest's --rootdir
    args = build_parser("certify").parse_args(["certify", "--output", str(output)])
    argv = suite_argv(args, output, check_input(args))
    at = argv.index("--runtime")
    return [sys.executable, "-m", "pytest", *argv[:at], *argv[at + 2:]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed to each run")
    parser.add_argument("--skip-full", action="store_true", help="leave out the full main job (runtime suite)")
    args = parser.parse_args()
    kernels = [s for s in SERIES if s in cached_kernels()]
    print(f"targets: host + {', '.join(kernels) or 'no cached kernel'}; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f} before")
    boot, code = timed([sys.executable, "-c", BOOT_ONLY.format(names=kernels)], args.timeout)
    print(f"boot-only (boot {len(kernels)} kernels, hello, shut down): {boot:7.1f} s (exit {code})")
    with tempfile.TemporaryDirectory(prefix="bench-main-") as tmp:
        out = Path(tmp)
        part, code = timed(without_runtime(out / "part"), args.timeout)
        print(f"main job without the runtime suite:  {part:7.1f} s = {part / boot:5.2f}x boot-only (exit {code})")
        if not args.skip_full:
            full, code = timed([sys.executable, "-m", "bpfcert", "certify", "--output", str(out / "full")],
                               args.timeout)
            print(f"main job (bpfcert certify):          {full:7.1f} s = {full / boot:5.2f}x boot-only (exit {code});"
                  f" goals <= 60 s and <= 1.5x")
            print(f"the runtime suite's share:           {full - part:7.1f} s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
