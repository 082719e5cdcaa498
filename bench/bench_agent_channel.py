"""Round trips over a VM target's agent channel (a virtio console, bpfcert/targets/machines.py): the agent's own
`hello`, and `runner_exchange` lines of growing length relayed to a runner that answers one short line (what a
runtime check does hundreds of times per kernel).

    python bench/bench_agent_channel.py [--target 6.1] [--runs 20]

Prints medians; asserts nothing. Before the virtio console, x86 guests used an emulated 16550 UART: 5.6 ms per
`hello` and 8.1 ms per 10-byte exchange in a 6.1 TCG guest, against 0.8 ms and 1.8 ms over the console.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfcert.targets.schedule import Scheduler

ECHO = ["/bin/sh", "-c", "while read -r line; do echo ok; done"]


def median_ms(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        begun = time.monotonic()
        call()
        times.append(time.monotonic() - begun)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="6.1", help="a cached kernel (default 6.1)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with Scheduler() as scheduler:
        scheduler.start([args.target])
        target = scheduler.get(args.target)
        print(f"target {args.target}, median of {args.runs}")
        print(f"hello:                  {median_ms(lambda: target.call('hello'), args.runs):6.1f} ms")
        handle = target.call("runner_start", argv=ECHO, cwd="/")["handle"]
        try:
            for size in (10, 300, 1000, 3000):
                line = "x" * size
                took = median_ms(lambda line=line: target.call("runner_exchange", handle=handle, line=line), args.runs)
                print(f"exchange of {size:4} bytes: {took:6.1f} ms")
        finally:
            target.call("runner_stop", handle=handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
