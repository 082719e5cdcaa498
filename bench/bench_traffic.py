"""Benchmark the traffic behind RT-UPG-002 on each target: the sender's top rate into a veth whose XDP end runs
examples/xdp-counter-v1 (installed by the reference runtime), then the check itself (upgrade to v2 under traffic)
with the sender at bpfcert.targets.traffic.SENDER_NICE against the former sender at nice 0 (the baseline), in turn
on the same boot so that a noisy machine slows both alike.

    python bench/bench_traffic.py [--targets host,5.10,6.1,6.12,7.2] [--seconds S] [--rounds N] [--pps N]

Figures: the sender's best top rate over --rounds (pktgen in a guest, the sendmmsg sender on the host), and per
configuration over --rounds checks RT-UPG-002's median rate overall and during the upgrade (the one that matters:
pktgen catches up afterwards, so the overall rate hides a slow-down), how long the upgrade took, frames lost and
unattached summed. Prints figures; asserts nothing (target: >= 100k frames/s during the upgrade in a guest with 0
lost and 0 unattached). Needs root; boots one VM at a time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

V1, V2 = ROOT / "examples" / "xdp-counter-v1", ROOT / "examples" / "xdp-counter-v2"


class FormerSender:
    """A target whose traffic sender runs at nice 0, as before SENDER_NICE."""

    def __init__(self, target: Any) -> None:
        self.target, self.name, self.python = target, target.name, target.python

    def info(self) -> Any:
        return self.target.info()

    def call(self, op: str, **args: Any) -> Any:
        return self.target.call(op, **({**args, "nice": 0} if op == "traffic_start" else args))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="host,5.10,6.1,6.12,7.2")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each top-rate measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pps", type=int, default=100_000, help="the rate RT-UPG-002 is asked for")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    for name in args.targets.split(","):
        bench_target(name.strip(), args)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


def bench_target(name: str, args: argparse.Namespace) -> None:
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
                report(name, target.info().release, *measure(target, runner, args))
            finally:
                if name == "host":
                    subprocess.run(["umount", "-l", str(bpffs)], check=False)
    finally:
        target.close()


def measure(target: Any, runner: Any, args: argparse.Namespace) -> tuple[str, float, dict[str, dict[str, Any]]]:
    """The sender's best top rate into the installed xdp-counter v1, then RT-UPG-002 --rounds times in each
    configuration, in turn."""
    from bpfcert.checks.runtime_traffic import kernel_modules, rt_upg_002
    from bpfcert.runners.client import RunnerClient
    from bpfcert.runners.protocol import Failure, Options

    with RunnerClient.start(target, runner) as client:
        iface = target.call("traffic_interface", name="bt" + uuid.uuid4().hex[:8], modules=kernel_modules(target))
        try:
            installed = client.install(str(V1), Options(interface=iface["interface"]))
            assert not isinstance(installed, Failure), installed
            sender, top = max((top_rate(target, iface["peer"], args.seconds) for _ in range(args.rounds)),
                              key=lambda found: found[1])  # fmt: skip
            client.uninstall(installed.name)
        finally:
            target.call("traffic_interface_del", interface=iface["interface"])
        configs = {"former": FormerSender(target), "now": target}
        runs: dict[str, list[Any]] = {config: [] for config in configs}
        for _ in range(args.rounds):
            for config, on in configs.items():
                runs[config].append(rt_upg_002(client, on, str(V1), str(V2), pps=args.pps, around=1.0))
    return sender, top, {config: summary(checks) for config, checks in runs.items()}


def top_rate(target: Any, peer: str, seconds: float) -> tuple[str, float]:
    """Which sender sent out of `peer` and its rate as fast as it goes, in frames/s."""
    sending = target.call("traffic_start", ifname=peer, pps=10_000_000, seconds=seconds)
    time.sleep(seconds + 0.2)
    traffic = target.call("traffic_stop", handle=sending["handle"])
    return sending["sender"], traffic["sent"] / traffic["seconds"]


def summary(checks: list[Any]) -> dict[str, Any]:
    evidence = [c.evidence for c in checks]
    return {
        "statuses": "/".join(c.status.value for c in checks),
        "nice": evidence[0].get("sender_nice"),
        "pps": statistics.median(e.get("pps", 0) for e in evidence),
        "during": statistics.median(e.get("during_upgrade", {}).get("pps", 0) for e in evidence),
        "upgrade_s": statistics.median(e.get("during_upgrade", {}).get("seconds", 0) for e in evidence),
        "sent": sum(e.get("sent", 0) for e in evidence),
        "lost": sum(e.get("lost", 0) for e in evidence),
        "unattached": sum(e.get("unattached", 0) for e in evidence),
    }


def report(name: str, release: str, sender: str, top: float, figures: dict[str, dict[str, Any]]) -> None:
    former = figures["former"]
    print(f"{name:5s} {release}: {sender} top rate {top / 1000:.1f}k/s", flush=True)
    for config, f in figures.items():
        ratio = ""
        if f is not former and former["pps"] and former["during"]:
            ratio = f" ({f['pps'] / former['pps']:.2f}x, {f['during'] / former['during']:.2f}x the former's)"
        print(
            f"{name:5s}   RT-UPG-002, sender at nice {f['nice']:3d} ({config}): {f['statuses']}; "
            f"{f['pps'] / 1000:.1f}k frames/s overall, {f['during'] / 1000:.1f}k/s during the upgrade{ratio}; "
            f"upgrade {f['upgrade_s']:.2f} s; sent {f['sent']}, lost {f['lost']}, unattached {f['unattached']}",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
