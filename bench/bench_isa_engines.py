"""Benchmark the ISA engines on the host: the whole case set against the host kernel in one process (one
`isa_run` op: one map, one load and one BPF_PROG_TEST_RUN per case), side by side in the same run with the fastest
one-process-per-case alternative here (a fresh `python -S -c` per case running the same adapter on that one case,
as plugin-based suites start one plugin per case), and DPDK's librte_bpf through its kept-alive worker.

    python bench/bench_isa_engines.py [--suite DIR] [--baseline-sample N] [--runs N]

The cases are the .data files of --suite (default conformance/isa). The per-process baseline runs a sample of N
cases (default 30; the machine is shared) and is scaled to the whole set. Prints figures; asserts nothing (targets:
>= 300 cases in <= 0.3 s, >= 2x the per-process baseline). Needs root.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ONE_CASE = (
    "import sys; from bpfcert.targets.isa_run import isa_run; "
    "print(isa_run([[sys.argv[1], sys.argv[2]]])['outcomes'][0])"
)


def suite_cases(directory: Path) -> list[tuple[bytes, bytes]]:
    from bpfcert.isa.case import read_suite

    return [(c.program, c.memory) for c in read_suite(directory) if c.skip is None]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, default=ROOT / "conformance" / "isa")
    parser.add_argument("--baseline-sample", type=int, default=30)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from bpfcert.isa.kernel_engine import kernel_engine
    from bpfcert.targets.host import HostTarget

    cases = suite_cases(args.suite)
    source = f"{args.suite} ({len(cases)} runnable cases)"
    engine = kernel_engine(HostTarget(), "linux-kernel-jit")

    batch_times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        outcomes = engine.run_batch(cases)
        batch_times.append(time.perf_counter() - started)
    batch = statistics.median(batch_times)
    refused = sum(o.error is not None for o in outcomes)

    sample = cases[:: max(1, len(cases) // args.baseline_sample)][: args.baseline_sample]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    for program, memory in sample:
        argv = [sys.executable, "-S", "-c", ONE_CASE, program.hex(), memory.hex()]
        subprocess.run(argv, env=env, check=True, capture_output=True)
    per_process = (time.perf_counter() - started) / len(sample)
    baseline = per_process * len(cases)

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"cases: {source}; kernel {os.uname().release}, engine {engine.name}; load average {load}")
    print(
        f"one process, one op:     {batch * 1000:8.1f} ms for {len(cases)} cases "
        f"({batch / len(cases) * 1e6:.0f} us/case, {refused} refused by the verifier; median of {args.runs})"
    )
    print(
        f"one process per case:    {baseline * 1000:8.1f} ms for {len(cases)} cases "
        f"({per_process * 1000:.1f} ms/case, measured on {len(sample)})"
    )
    print(f"ratio:                   {baseline / batch:8.1f}x faster in one process")

    from bpfcert.isa.dpdk_engine import DpdkEngine
    from bpfcert.isa.engine import EngineCrash

    for jit in (False, True):
        dpdk = DpdkEngine(jit)
        crashes = 0
        started = time.perf_counter()
        for program, memory in cases:
            try:
                dpdk.run(program, memory)
            except EngineCrash:
                crashes += 1
        elapsed = time.perf_counter() - started
        dpdk.close()
        print(
            f"{dpdk.name + ':':24} {elapsed * 1000:8.1f} ms for {len(cases)} cases "
            f"({elapsed / len(cases) * 1e6:.0f} us/case through its worker, {crashes} worker crashes)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
