"""Packets on a target's kernel: an interface to send them into and a sender process that sends raw frames.

The op traffic_interface makes a veth pair (`lo` where the kernel has no veth), traffic_interface_del removes it;
traffic_start spawns `python -m bpfcert.targets.traffic`, which sends Ethernet frames carrying IPv4 with protocol
TRAFFIC_PROTOCOL (253, RFC 3692's experiment number, which nothing else sends) out of one end at a steady rate, so
they arrive on the other end's receive path (its XDP hook); traffic_stop ends it and tells how many frames the kernel
took. A send the kernel refuses (ENOBUFS: the peer's queue is full) is counted as failed, never as sent. Stdlib only
(this runs in the guest).
"""

from __future__ import annotations

import os
import signal
import struct
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

TRAFFIC_PROTOCOL = 253
PEER_SUFFIX = "-p"
_senders: dict[int, subprocess.Popen[str]] = {}


def _ip(*args: str) -> None:
    import subprocess

    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")


def traffic_interface(name: str) -> dict[str, Any]:
    """An interface to send frames into: the veth pair `name` <-> `name`-p, both up and without IPv6 (no router or
    neighbour solicitations on it), or, on a kernel that has no veth (a guest without the module), `lo`, set up
    (frames sent on it come back in through its own receive path). {"interface", "ifindex", "peer": the end to
    send from}."""
    import socket

    if not 0 < len(name) <= 13 or not name.replace("-", "").isalnum():
        raise ValueError(f"bad interface name {name!r} (1-13 letters, digits, '-')")
    peer = name + PEER_SUFFIX
    try:
        _ip("link", "add", name, "type", "veth", "peer", "name", peer)
    except OSError:
        if os.path.exists("/sys/module/veth"):
            raise
        _ip("link", "set", "lo", "up")
        return {"interface": "lo", "ifindex": socket.if_nametoindex("lo"), "peer": "lo"}
    for ifname in (name, peer):
        try:
            with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as knob:
                knob.write("1")
        except OSError:  # a kernel without IPv6 sends none
            pass
        _ip("link", "set", ifname, "up")
    return {"interface": name, "ifindex": socket.if_nametoindex(name), "peer": peer}


def traffic_interface_del(interface: str) -> dict[str, Any]:
    """Remove what traffic_interface made: the veth pair `interface` (its peer goes with it); `lo` stays."""
    if interface != "lo":
        _ip("link", "del", interface)
    return {}


def frame(protocol: int = TRAFFIC_PROTOCOL, payload: int = 18) -> bytes:
    """A broadcast Ethernet frame holding an IPv4 packet of `protocol` from 192.0.2.2 to 192.0.2.1 (TEST-NET-1)."""
    body = bytes(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, protocol, 0, bytes([192, 0, 2, 2]),
                         bytes([192, 0, 2, 1]))  # fmt: skip
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + header + body


def traffic_start(ifname: str, pps: int, seconds: float) -> dict[str, Any]:
    """Start sending frame() out of `ifname` at `pps` frames a second for at most `seconds`; {"handle", "frame_len"}
    once the sender's socket is bound."""
    import subprocess

    if pps <= 0 or seconds <= 0:
        raise ValueError("pps and seconds must be positive")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "bpfcert.targets.traffic", ifname, str(pps), str(seconds)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    ready = proc.stdout.readline()
    if ready.strip() != "ready":
        proc.kill()
        error = proc.stderr.read().strip().splitlines()
        raise OSError(f"the traffic sender did not start: {error[-1] if error else 'exit status ' + str(proc.wait())}")
    _senders[proc.pid] = proc
    return {"handle": proc.pid, "frame_len": len(frame())}


def traffic_stop(handle: int) -> dict[str, Any]:
    """Stop the sender; {"sent", "failed", "seconds", "pps"}: frames the kernel took, sends it refused, how long it
    sent and the rate it reached."""
    import json

    proc = _senders.pop(handle, None)
    if proc is None:
        raise ValueError(f"no traffic sender {handle}")
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    if proc.returncode != 0:
        lines = err.strip().splitlines()
        raise OSError(f"the traffic sender failed: {lines[-1] if lines else 'exit status ' + str(proc.returncode)}")
    counts: dict[str, Any] = json.loads(out)
    return counts


def _send(ifname: str, pps: int, seconds: float) -> dict[str, Any]:
    """The sender's loop: keep the number of frames sent at `pps` x the time elapsed until SIGTERM or `seconds`."""
    import errno
    import socket

    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    data = frame()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    send = sock.send
    print("ready", flush=True)
    sent = failed = 0
    start = time.monotonic()
    elapsed = 0.0
    while not stopped and elapsed < seconds:
        elapsed = time.monotonic() - start
        due = min(int(elapsed * pps), sent + pps // 100 + 1)  # at most 10 ms of frames between checks
        if due <= sent:
            time.sleep(0.0005)
            continue
        for _ in range(due - sent):
            try:
                send(data)
                sent += 1
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                failed += 1
                break
    elapsed = time.monotonic() - start
    return {
        "sent": sent,
        "failed": failed,
        "seconds": round(elapsed, 3),
        "pps": round(sent / elapsed) if elapsed else 0,
    }


if __name__ == "__main__":
    import json

    print(json.dumps(_send(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))), flush=True)
