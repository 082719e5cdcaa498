"""Benchmark the traffic behind RT-UPG-002 on each target, against the former guests (one CPU shared by pktgen,
the receive path and the runtime: bench_boot.former_machines) booted in turn with today's (two CPUs, the second
kept for pktgen) in the same run: the sender's top rate into a veth whose XDP end runs examples/xdp-counter-v1
(installed by the reference runtime), then the check itself (upgrade to v2 under traffic).

    python bench/bench_traffic.py [--targets host,5.10,6.1,6.12,7.2] [--seconds S] [--rounds N] [--pps N]

Per configuration, --rounds times each: the sender's top rate (pktgen in a guest, bpfcert.targets.traffic's
sendmmsg sender on the host; the best round), then RT-UPG-002 at --pps (the median rate overall and during the
upgrade, frames lost and unattached summed over the rounds). Prints figures; asserts nothing (target: >= 100k
frames/s during the upgrade in a guest with 0 lost and 0 unattached). Needs root; boots one VM at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_boot import former_machines  # noqa: E402 -- bench/ is the script's own directory

V1, V2 = ROOT / "examples" / "xdp-counter-v1", ROOT / "examples" / "xdp-counter-v2"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="host,5.10,6.1,6.12,7.2")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each rate measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pps", type=int, default=100_000, help="the rate RT-UPG-002 is asked for")
    args = parser.parse_args()
    for name in args.targets.split(","):
        name = name.strip()
        configs: dict[str, Callable[[], AbstractContextManager[None]]] = {"now": contextlib.nullcontext}
        if name != "host":
            configs = {"former": former_machines, **configs}
        figures = {}
        for config, machines in configs.items():
            with machines():
                figures[config] = bench_target(name, args)
        report(name, figures)
    return 0


def bench_target(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from bpfcert.runners import discovery
    from bpfcert.targets.target import open_target

    target = open_target(name)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-traffic-") as tmp:
            if name == "host":
                bpffs = Path(tmp) / "bpffs"
                bpffs.mkdir()
                subprocess.run(["mount", "-t", "bpf", "bpf", str(bpffs)], check=True)
                env = {"BPFCERT_REFERENCE_STATE": f"{tmp}/state", "BPFCERT_REFERENCE_BPFFS": f"{bpffs}/bpfcert"}
            else:
                env = {"BPFCERT_REFERENCE_STATE": "/run/tmp/bpfcert-reference"}  # the guest's root is read-only
            try:
                runner = discovery.load(ROOT / "runners" / "reference").with_env(env)
                return {"release": target.info().release, **measure(target, runner, args)}
            finally:
                if name == "host":
                    subprocess.run(["umount", "-l", str(bpffs)], check=False)
    finally:
        target.close()


def measure(target: Any, runner: Any, args: argparse.Namespace) -> dict[str, Any]:
    """The sender's best top rate into the installed xdp-counter v1, then RT-UPG-002 --rounds times."""
    from bpfcert.checks.runtime_traffic import kernel_modules, rt_upg_002
    from bpfcert.runners.client import RunnerClient
    from bpfcert.runners.protocol import Failure, Options

    with RunnerClient.start(target, runner) as client:
        iface = target.call("traffic_interface", name="bt" + uuid.uuid4().hex[:8], modules=kernel_modules(target))
        try:
            installed = client.install(str(V1), Options(interface=iface["interface"]))
            assert not isinstance(installed, Failure), installed
            top = max(top_rate(target, iface["peer"], args.seconds) for _ in range(args.rounds))
            client.uninstall(installed.name)
        finally:
            target.call("traffic_interface_del", interface=iface["interface"])
        checks = [rt_upg_002(client, target, str(V1), str(V2), pps=args.pps, around=1.0) for _ in range(args.rounds)]
    evidence = [c.evidence for c in checks]
    return {
        "sender": top[1],
        "top": top[0],
        "statuses": [c.status.value for c in checks],
        "pps": statistics.median(e.get("pps", 0) for e in evidence),
        "during": statistics.median(e.get("during_upgrade", {}).get("pps", 0) for e in evidence),
        "lost": sum(e.get("lost", 0) for e in evidence),
        "unattached": sum(e.get("unattached", 0) for e in evidence),
        "sent": sum(e.get("sent", 0) for e in evidence),
        "sender_cpu": evidence[0].get("sender_cpu"),
    }


def top_rate(target: Any, peer: str, seconds: float) -> tuple[float, str]:
    """The sender's rate out of `peer` as fast as it goes, in frames/s, and which sender it was."""
    sending = target.call("traffic_start", ifname=peer, pps=10_000_000, seconds=seconds)
    time.sleep(seconds + 0.2)
    traffic = target.call("traffic_stop", handle=sending["handle"])
    return traffic["sent"] / traffic["seconds"], sending["sender"]


def report(name: str, figures: dict[str, dict[str, Any]]) -> None:
    now, former = figures["now"], figures.get("former")

    def ratio(key: str) -> str:
        return f" ({now[key] / former[key]:.2f}x former's {former[key] / 1000:.1f}k)" if former and former[key] else ""

    print(f"{name:5s} {now['release']}: {now['sender']} top rate {now['top'] / 1000:.1f}k/s{ratio('top')}", flush=True)
    print(
        f"{name:5s} RT-UPG-002 at {now['sender']} (cpu {now['sender_cpu']}): {'/'.join(now['statuses'])}, "
        f"{now['pps'] / 1000:.1f}k frames/s{ratio('pps')}; during the upgrade {now['during'] / 1000:.1f}k/s"
        f"{ratio('during')}; sent {now['sent']}, lost {now['lost']}, unattached {now['unattached']}",
        flush=True,
    )
    if former:
        print(
            f"{name:5s} former: {'/'.join(former['statuses'])}, sent {former['sent']}, lost {former['lost']}, "
            f"unattached {former['unattached']}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
