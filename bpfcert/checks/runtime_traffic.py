"""RT-UPG-002: an upgrade under traffic loses no event and never leaves the attach point without a program.

The runtime installs xdp-counter v1 on one end of a fresh veth pair (on `lo` where the kernel has no veth); frames
go in from the other end at a steady rate (in a guest, from the kernel's own pktgen, favoured over the runtime:
bpfcert.targets.traffic) while the runtime upgrades to v2; then the harness reads the preserved counter map through
the kernel, found from the XDP link on the interface, not from the runtime's word. Both versions count every frame
under its IP protocol (packets += 1) and v2 also adds its length to bytes. Two counts are compared with it, both the
kernel's: the frames the sender's kernel took (sent) and the frames the interface received (its rx_packets).
Received but uncounted frames passed the hook with no program attached ("unattached"); sent but uncounted ones are
"lost". Frames sent but never received, or traffic that stopped before the upgrade ended, disturb the measurement,
which then judges nothing (ERROR); sends the kernel refused (the receiving queue full) never reached the hook and
are not sent.
"""

from __future__ import annotations

import struct
import time
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

from bpfcert.errors import TargetError
from bpfcert.results import Result, Status
from bpfcert.runners.protocol import Failure, Options

if TYPE_CHECKING:
    from bpfcert.runners.client import RunnerClient
    from bpfcert.targets.target import Target

COUNTER_MAP = "proto_counters"


def rt_upg_002(
    client: RunnerClient, target: Target, v1: str, v2: str, *, pps: int = 100_000, around: float = 0.5
) -> Result:
    """Install `v1` (xdp-counter) on a new interface (traffic_interface), send `pps` frames/s, upgrade to `v2`
    after `around` s, send for `around` s more, stop, and compare the frames counted with the frames sent and
    received."""
    row = partial(Result.of, "RT-UPG-002", subject="package:xdp-counter", target=target.name)
    iface = target.call("traffic_interface", name="bc" + uuid.uuid4().hex[:8], modules=kernel_modules(target))
    name = ""
    try:
        installed = client.install(v1, Options(interface=iface["interface"]))
        if isinstance(installed, Failure):
            return row(Status.ERROR, f"cannot install {v1}: {installed.code}: {installed.message}")
        name = installed.name
        sender = target.call("traffic_start", ifname=iface["peer"], pps=pps, seconds=60 + 2 * around)
        try:
            time.sleep(around)
            before = target.call("traffic_progress", handle=sender["handle"])
            upgraded = client.upgrade(v2, Options(interface=iface["interface"]))
            after = target.call("traffic_progress", handle=sender["handle"])
            time.sleep(around)
        finally:
            traffic = target.call("traffic_stop", handle=sender["handle"])
        if isinstance(upgraded, Failure):
            return row(Status.FAIL, f"the upgrade under traffic was refused: {upgraded.code}: {upgraded.message}")
        counted = _counted(target, iface["ifindex"], sender["protocol"])
    finally:
        try:
            if name:
                client.uninstall(name)
        finally:
            target.call("traffic_interface_del", interface=iface["interface"])
    evidence: dict[str, Any] = {
        "interface": iface["interface"],
        **{k: sender[k] for k in ("sender", "protocol", "frame_len")},
        "sender_nice": sender["nice"],
        **traffic,
        **counted,
        "during_upgrade": _rate(after["tx_packets"] - before["tx_packets"], after["seconds"] - before["seconds"]),
        "attachments": [{"program": a.program, "method": a.method} for a in upgraded.attachments],
    }
    if "counted" not in counted:
        return row(Status.FAIL, f"after the upgrade, {counted['problem']}", evidence=evidence)
    by_new = counted["bytes"] // sender["frame_len"]
    sent, received = traffic["sent"], traffic["rx_packets"]
    lost, unattached = sent - counted["counted"], received - counted["counted"]
    evidence.update(counted_by_new=by_new, counted_by_old=counted["counted"] - by_new, lost=lost, unattached=unattached)
    rate = f"{sent} frames at {traffic['pps']}/s ({evidence['during_upgrade']['pps']}/s during the upgrade)"
    if unattached:
        return row(
            Status.FAIL,
            f"{unattached} of the {received} frames {iface['interface']} received passed its XDP hook uncounted "
            f"during the upgrade (no program attached, or the counter map replaced); {lost} of {rate} lost",
            evidence=evidence,
        )
    if lost:
        return row(
            Status.ERROR,
            f"the traffic was disturbed, so the upgrade is not judged: {lost} of {rate} never reached "
            f"{iface['interface']}",
            evidence=evidence,
        )
    after_upgrade = traffic["tx_packets"] - after["tx_packets"]
    if evidence["during_upgrade"]["frames"] <= 0 or after_upgrade <= 0:
        return row(
            Status.ERROR,
            f"the traffic did not flow through the upgrade ({evidence['during_upgrade']['frames']} frames sent "
            f"during it, {after_upgrade} after it), so the upgrade is not judged",
            evidence=evidence,
        )
    refused = f"; the kernel refused {traffic['failed']} sends (queue full: not sent)" if traffic["failed"] else ""
    return row(
        Status.PASS,
        f"all {rate} received and counted, none unattached: {by_new} by v2, the rest by v1{refused}",
        evidence=evidence,
    )


def _rate(frames: int, seconds: float) -> dict[str, Any]:
    return {"frames": frames, "seconds": round(seconds, 3), "pps": round(frames / seconds) if seconds > 0 else 0}


def kernel_modules(target: Target) -> str | None:
    """A VM's kernel module tree (the guest loads veth and pktgen from it), None for the host (its own)."""
    from bpfcert.targets.kernels import cached_kernels

    info = target.info()  # the cache is keyed by target name: "6.1/s390x" is not the series "6.1"'s x86_64 kernel
    kernel = cached_kernels().get(info.name) if info.series != "host" else None
    return str(kernel.modules_dir) if kernel is not None and kernel.release == info.release else None


def _counted(target: Target, ifindex: int, protocol: int) -> dict[str, Any]:
    """The XDP program on `ifindex` and its counter under `protocol`, read through the kernel (key and value in the
    kernel's byte order): {"prog_id", "map_id", "counted", "bytes"}, or {"problem"} when there is no program or no
    counter map."""
    from bpfcert.portability import BIG_ENDIAN_MACHINES

    order = ">" if target.info().arch in BIG_ENDIAN_MACHINES else "<"
    state = target.call("kernel_state")
    link = next((k for k in state["links"] if k["type"] == "xdp" and k.get("ifindex") == ifindex), None)
    if link is None:
        return {"problem": "no XDP link is attached to the interface"}
    prog = next((p for p in state["programs"] if p["id"] == link["prog_id"]), None)
    maps = {m["id"]: m for m in state["maps"]}
    counters = [i for i in (prog or {}).get("map_ids", []) if maps.get(i, {}).get("name") == COUNTER_MAP]
    if not counters:
        return {"prog_id": link["prog_id"], "problem": f"the attached program uses no map {COUNTER_MAP}"}
    try:
        key_hex = struct.pack(order + "I", protocol).hex()
        value = target.call("map_element", map_id=counters[0], key_hex=key_hex)["value_hex"]
    except TargetError as exc:
        return {"prog_id": link["prog_id"], "problem": f"cannot read {COUNTER_MAP}: {exc}"}
    packets, nbytes = struct.unpack(order + "QQ", bytes.fromhex(value)) if value else (0, 0)
    return {"prog_id": link["prog_id"], "map_id": counters[0], "counted": packets, "bytes": nbytes}
