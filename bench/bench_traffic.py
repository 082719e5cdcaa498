"""Benchmark the traffic behind RT-UPG-002 on each target: the senders' top rates into a veth whose XDP end runs
examples/xdp-counter-v1 (installed by the reference runtime), then the check itself (upgrade to v2 under traffic).

    python bench/bench_traffic.py [--targets host,5.10,6.1,6.12,7.2] [--seconds S] [--pps N]

Rates, each the best of --rounds measured in turn on the same target, so that a noisy machine slows all alike:
- per-frame: the former sender, one send(2) per frame from Python (its loop is kept here as the baseline);
- socket: bpfcert.targets.traffic's sender, sendmmsg(2) batches past the qdisc;
- pktgen: the guest kernel's own packet generator (VM targets; bpfcert.targets.traffic loads it).
Then RT-UPG-002 at --pps: the rate it reached overall and during the upgrade, frames lost and unattached. Prints
figures; asserts nothing (target: >= 100k frames/s in a guest with 0 lost and 0 unattached). Needs root; boots one
VM at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bpfcert.errors import TargetError  # noqa: E402 -- after the checkout is on the path

V1, V2 = ROOT / "examples" / "xdp-counter-v1", ROOT / "examples" / "xdp-counter-v2"


def per_frame_sender(ifname: str, seconds: float) -> None:
    """The baseline, run on the target: one send(2) per frame as fast as it goes (a frame the kernel refuses,
    ENOBUFS, is not counted); prints "ready", then {"sent", "failed", "seconds"} after `seconds`."""
    import socket

    from bpfcert.targets.traffic import frame

    data = frame(destination="ff:ff:ff:ff:ff:ff")  # as it was
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    send = sock.send
    print("ready", flush=True)
    sent = failed = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        for _ in range(100):
            try:
                send(data)
                sent += 1
            except OSError:
                failed += 1
    print(json.dumps({"sent": sent, "failed": failed, "seconds": time.monotonic() - start}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="host,5.10,6.1,6.12,7.2")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each rate measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pps", type=int, default=100_000, help="the rate RT-UPG-002 is asked for")
    parser.add_argument("--per-frame-sender", nargs=2, metavar=("IFNAME", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.per_frame_sender:
        per_frame_sender(args.per_frame_sender[0], float(args.per_frame_sender[1]))
        return 0
    for name in args.targets.split(","):
        bench_target(name.strip(), args)
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


def measure(target: Any, runner: Any, args: argparse.Namespace) -> tuple[dict[str, float], dict[str, Any]]:
    """Best rate of each sender into the installed xdp-counter v1, then RT-UPG-002's evidence."""
    from bpfcert.checks.runtime_traffic import kernel_modules, rt_upg_002
    from bpfcert.runners.client import RunnerClient
    from bpfcert.runners.protocol import Failure, Options

    rates: dict[str, float] = {}
    with RunnerClient.start(target, runner) as client:
        iface = target.call("traffic_interface", name="bt" + uuid.uuid4().hex[:8], modules=kernel_modules(target))
        try:
            installed = client.install(str(V1), Options(interface=iface["interface"]))
            assert not isinstance(installed, Failure), installed
            for _ in range(args.rounds):
                for sender, rate in senders(target, iface["peer"], args.seconds).items():
                    rates[sender] = max(rates.get(sender, 0.0), rate)
            client.uninstall(installed.name)
        finally:
            target.call("traffic_interface_del", interface=iface["interface"])
        check = rt_upg_002(client, target, str(V1), str(V2), pps=args.pps, around=1.0)
    return rates, {"status": check.status.value, **check.evidence}


def senders(target: Any, peer: str, seconds: float) -> dict[str, float]:
    """One rate of each sender out of `peer`, in frames/s."""
    rates = {}
    started = target.call(
        "runner_start",
        argv=[
            os.path.realpath(sys.executable),
            str(Path(__file__).resolve()),
            "--per-frame-sender",
            peer,
            str(seconds),
        ],
        cwd=str(ROOT),
    )
    try:
        assert target.call("runner_exchange", handle=started["handle"], line="")["line"] == "ready"
        done = json.loads(target.call("runner_exchange", handle=started["handle"], line="", timeout=60)["line"])
    finally:
        with contextlib.suppress(TargetError):  # gone already if it failed
            target.call("runner_stop", handle=started["handle"])
    rates["per-frame"] = done["sent"] / done["seconds"]
    sending = target.call("traffic_start", ifname=peer, pps=10_000_000, seconds=seconds)  # as fast as it goes
    time.sleep(seconds + 0.2)
    traffic = target.call("traffic_stop", handle=sending["handle"])
    rates[sending["sender"]] = traffic["sent"] / traffic["seconds"]
    return rates


def report(name: str, release: str, rates: dict[str, float], check: dict[str, Any]) -> None:
    base = rates["per-frame"]
    during = check.get("during_upgrade", {}).get("pps", 0)
    shown = ", ".join(f"{k} {v / 1000:.1f}k/s ({v / base:.2f}x)" for k, v in rates.items())
    print(f"{name:5s} {release}: top rates {shown}", flush=True)
    print(
        f"{name:5s} RT-UPG-002 at {check.get('sender')}: {check['status']}, {check.get('pps', 0) / 1000:.1f}k frames/s "
        f"({check.get('pps', 0) / base:.2f}x the per-frame top rate; {during / 1000:.1f}k/s during the upgrade), "
        f"sent {check.get('sent')}, "
        f"lost {check.get('lost')}, unattached {check.get('unattached')}, refused {check.get('failed')}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
