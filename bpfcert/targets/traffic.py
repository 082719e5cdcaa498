"""Packets on a target's kernel: an interface to send them into and a sender that sends frames at a steady rate.

The op traffic_interface makes a veth pair (`lo` where the kernel has no veth; in a guest it first loads the guest
kernel's own veth and pktgen modules from `modules`), traffic_interface_del removes it. traffic_start starts a sender
out of one end, so frames arrive on the other end's receive path (its XDP hook):
- the kernel's packet generator (pktgen) where it is loaded and idle, the other end is a veth and its XDP program
  runs in driver mode: UDP frames made and sent in the kernel, with no system call per frame (pktgen shares each frame's
  skb with the driver, which generic-mode XDP cannot take: it would crash the kernel, hence the mode check);
- else `python -m bpfcert.targets.traffic`, which sends Ethernet frames carrying IPv4 with protocol
  TRAFFIC_PROTOCOL (253, RFC 3692's experiment number, which nothing else sends) from an AF_PACKET socket that
  bypasses the qdisc, a batch of frames per sendmmsg(2).
The sender runs at nice SENDER_NICE (pktgen's kernel thread, or the socket sender's process): in a one-CPU guest it
shares the CPU with the runtime under test, which at equal weight took half of it during an upgrade (58-67k frames/s
of 100k asked in a 6.1 TCG guest); at -10 the sender keeps ~90% of the CPU and its rate (~100k/s), and the upgrade
takes longer. (A second vCPU kept for pktgen did worse on a 2-core host, ~55k/s: every atomic then locked and one
more busy host thread; and it cost boots 0.2-0.9 s.)
traffic_progress tells how far it has got; traffic_stop ends it and tells how many frames the kernel took and the
interfaces' own counters over the run (the sending end's tx_packets, the receiving end's rx_packets), so a
receiver can be checked against the kernel, not only against the sender's word. A send the kernel refuses
(ENOBUFS: the peer's queue is full; pktgen's "errors") is counted as failed, never as sent. Stdlib and ctypes only
(this runs in the guest).
"""

from __future__ import annotations

import itertools
import os
import signal
import struct
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TRAFFIC_PROTOCOL = 253
PKTGEN_PROTOCOL = 17  # pktgen sends UDP
PKTGEN_FRAME = 60  # pktgen's pkt_size: the frame without its FCS
PEER_SUFFIX = "-p"
# The frames' destination: a locally administered unicast address no interface has, so that past the XDP hook the
# receiving end's IP layer drops them at once as another host's (a broadcast went on to a route lookup: ~15% of a
# TCG guest's time per frame).
DESTINATION = "02:00:00:00:00:02"
BATCH = 256  # frames per sendmmsg(2) at most
PACKET_QDISC_BYPASS = 20  # <linux/if_packet.h>; SOL_PACKET is 263
XDP_ATTACHED_SKB = 2  # IFLA_XDP_ATTACHED: generic mode
PKTGEN = "/proc/net/pktgen"
SENDER_NICE = -10
SETTLE = 2.0  # seconds at most for frames already on their way to the receiving end to arrive after a stop
_senders: dict[int, _Sending] = {}
_handles = itertools.count(1)


def _ip(*args: str) -> str:
    import subprocess

    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout


def load_module(name: str, modules: str) -> None:
    """Load kernel module `name` from the module tree `modules` (lib/modules/RELEASE of the running kernel) unless
    it is loaded or built in; OSError if it cannot be found or loaded."""
    import ctypes
    import glob

    if os.path.exists(f"/sys/module/{name}"):
        return
    found = glob.glob(os.path.join(glob.escape(modules), "kernel", "**", f"{name}.ko*"), recursive=True)
    if not found:
        raise OSError(f"no module {name} under {modules}")
    with open(found[0], "rb") as f:
        blob = f.read()
    if found[0].endswith(".xz"):
        import lzma

        blob = lzma.decompress(blob)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.init_module(blob, ctypes.c_ulong(len(blob)), b"") != 0:
        errno = ctypes.get_errno()
        if errno != 17:  # EEXIST: loaded meanwhile
            raise OSError(errno, f"cannot load module {name}: {os.strerror(errno)}")


def traffic_interface(name: str, modules: str | None = None) -> dict[str, Any]:
    """An interface to send frames into: the veth pair `name` <-> `name`-p, both up and without IPv6 (no router or
    neighbour solicitations on it), or, on a kernel that has no veth (a guest without the module), `lo`, set up
    (frames sent on it come back in through its own receive path). Given `modules` (the running kernel's module
    tree), veth and pktgen are loaded from it first. {"interface", "ifindex", "peer": the end to send from}."""
    import socket

    if not 0 < len(name) <= 13 or not name.replace("-", "").isalnum():
        raise ValueError(f"bad interface name {name!r} (1-13 letters, digits, '-')")
    if modules is not None:
        for module in ("veth", "pktgen"):
            load_module(module, modules)
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


def frame(protocol: int = TRAFFIC_PROTOCOL, payload: int = 18, destination: str = DESTINATION) -> bytes:
    """An Ethernet frame to `destination` holding an IPv4 packet of `protocol` from 192.0.2.2 to 192.0.2.1
    (TEST-NET-1)."""
    body = bytes(payload)
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, protocol, 0, bytes([192, 0, 2, 2]),
                         bytes([192, 0, 2, 1]))  # fmt: skip
    total = sum(struct.unpack("!10H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    header = header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:]
    return bytes.fromhex(destination.replace(":", "")) + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + header + body


def receiving_end(ifname: str) -> str:
    """The interface frames sent out of `ifname` arrive on: its veth peer, or itself (lo)."""
    import socket

    with open(f"/sys/class/net/{ifname}/iflink") as f:
        peer = int(f.read())
    with open(f"/sys/class/net/{ifname}/ifindex") as f:
        own = int(f.read())
    return ifname if peer == own else socket.if_indextoname(peer)


def _statistic(ifname: str, name: str) -> int:
    with open(f"/sys/class/net/{ifname}/statistics/{name}") as f:
        return int(f.read())


def _generic_xdp(ifname: str) -> bool:
    import json

    links = json.loads(_ip("-j", "link", "show", "dev", ifname))
    return any(link.get("xdp", {}).get("mode") == XDP_ATTACHED_SKB for link in links)


def traffic_start(ifname: str, pps: int, seconds: float, nice: int = SENDER_NICE) -> dict[str, Any]:
    """Start sending frames out of `ifname` at `pps` frames a second for at most `seconds`, the sender at `nice`;
    {"handle", "sender": "pktgen" or "socket", "frame_len", "protocol": the IPv4 protocol of the frames, "nice"}
    once frames can flow."""
    if pps <= 0 or seconds <= 0:
        raise ValueError("pps and seconds must be positive")
    receiver = receiving_end(ifname)
    use_pktgen = _pktgen_idle() and receiver != ifname and not _generic_xdp(receiver)
    sending = _Sending(ifname, receiver)
    sending.sender = (_Pktgen if use_pktgen else _SocketSender)(ifname, pps, seconds, nice)
    handle = next(_handles)
    _senders[handle] = sending
    if use_pktgen:
        frames = {"sender": "pktgen", "frame_len": PKTGEN_FRAME, "protocol": PKTGEN_PROTOCOL}
    else:
        frames = {"sender": "socket", "frame_len": len(frame()), "protocol": TRAFFIC_PROTOCOL}
    return {"handle": handle, **frames, "nice": nice}


def traffic_progress(handle: int) -> dict[str, Any]:
    """How far a sender has got, by the kernel's count: {"tx_packets": of the sending end since the start,
    "seconds": since the start}."""
    sending = _senders.get(handle)
    if sending is None:
        raise ValueError(f"no traffic sender {handle}")
    return {
        "tx_packets": _statistic(sending.ifname, "tx_packets") - sending.tx_before,
        "seconds": round(time.monotonic() - sending.started, 3),
    }


def traffic_stop(handle: int) -> dict[str, Any]:
    """Stop the sender and wait (at most SETTLE s) until the receiving end's rx_packets stops moving; {"sent",
    "failed", "seconds", "pps"}: frames the kernel took, sends it refused, how long it sent and the rate it
    reached, and the kernel's interface counters over the run: {"tx_packets": of the sending end, "rx_packets": of
    the receiving end}."""
    sending = _senders.pop(handle, None)
    if sending is None:
        raise ValueError(f"no traffic sender {handle}")
    counts = sending.sender.stop()
    received = _statistic(sending.receiver, "rx_packets")
    deadline = time.monotonic() + SETTLE
    while time.monotonic() < deadline:
        time.sleep(0.05)
        previous, received = received, _statistic(sending.receiver, "rx_packets")
        if received == previous:
            break
    return {
        **counts,
        "tx_packets": _statistic(sending.ifname, "tx_packets") - sending.tx_before,
        "rx_packets": received - sending.rx_before,
    }


class _Sending:
    """One run of traffic: the sender, its two ends and their kernel counters when it began."""

    def __init__(self, ifname: str, receiver: str) -> None:
        self.ifname, self.receiver = ifname, receiver
        self.tx_before = _statistic(ifname, "tx_packets")
        self.rx_before = _statistic(receiver, "rx_packets")
        self.started = time.monotonic()
        self.sender: _Pktgen | _SocketSender


def _pktgen_idle() -> bool:
    """pktgen is loaded and its first thread has no device (none of someone else's to take over)."""
    try:
        with open(os.path.join(PKTGEN, "kpktgend_0")) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return not any(line.split(":", 1)[1].strip() for line in lines if line.startswith(("Running:", "Stopped:")))


def _pktgen_write(name: str, command: str) -> None:
    with open(os.path.join(PKTGEN, name), "w") as f:
        f.write(command + "\n")


def _kernel_thread(name: str) -> int:
    """The pid of the kernel thread `name`; OSError if there is none."""
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    return int(entry)
        except OSError:  # gone meanwhile
            continue
    raise OSError(f"no kernel thread {name}")


class _Pktgen:
    """The kernel's packet generator on its first thread at `nice` (its own restored at the stop), sending out of
    `ifname`; a thread of ours writes "start" to pgctrl, which returns when pktgen is done (its count reached, or
    "stop")."""

    def __init__(self, ifname: str, pps: int, seconds: float, nice: int) -> None:
        import threading

        self.ifname = ifname
        self.pid = _kernel_thread("kpktgend_0")
        self.nice = os.getpriority(os.PRIO_PROCESS, self.pid)
        os.setpriority(os.PRIO_PROCESS, self.pid, nice)
        try:
            _pktgen_write("kpktgend_0", "rem_device_all")
            _pktgen_write("kpktgend_0", f"add_device {ifname}")
            for command in (f"count {max(1, round(pps * seconds))}", f"pkt_size {PKTGEN_FRAME}", f"ratep {pps}",
                            "dst 192.0.2.1", f"dst_mac {DESTINATION}"):  # fmt: skip
                _pktgen_write(ifname, command)
        except BaseException:
            self._release()
            raise
        self.error: OSError | None = None
        self.thread = threading.Thread(target=self._run, name="pktgen", daemon=True)
        self.thread.start()

    def _release(self) -> None:
        """The thread's own nice back and its device off, however the run went."""
        os.setpriority(os.PRIO_PROCESS, self.pid, self.nice)
        _pktgen_write("kpktgend_0", "rem_device_all")

    def _run(self) -> None:
        try:
            _pktgen_write("pgctrl", "start")
        except OSError as exc:
            self.error = exc

    def stop(self) -> dict[str, Any]:
        import re

        try:
            _pktgen_write("pgctrl", "stop")
            self.thread.join(30)
            with open(os.path.join(PKTGEN, self.ifname)) as f:
                report = f.read()
        finally:
            self._release()
        if self.error is not None or self.thread.is_alive():
            raise OSError(f"pktgen on {self.ifname} failed: {self.error or 'it did not stop'}")
        sent = re.search(r"pkts-sofar: (\d+)\s+errors: (\d+)", report)
        usec = re.search(r"Result: \w+: (\d+)\(", report)
        if sent is None or usec is None:
            raise OSError(f"pktgen on {self.ifname} wrote no result: {report.strip().splitlines()[-1:]}")
        frames, seconds = int(sent[1]), int(usec[1]) / 1e6
        return {
            "sent": frames,
            "failed": int(sent[2]),
            "seconds": round(seconds, 3),
            "pps": round(frames / seconds) if seconds else 0,
        }


class _SocketSender:
    """`python -m bpfcert.targets.traffic IFNAME PPS SECONDS NICE` (the _send loop below) in a process of its own."""

    def __init__(self, ifname: str, pps: int, seconds: float, nice: int) -> None:
        import subprocess

        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        argv = [sys.executable, "-m", "bpfcert.targets.traffic", ifname, str(pps), str(seconds), str(nice)]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        ready = proc.stdout.readline()
        if ready.strip() != "ready":
            proc.kill()
            error = proc.stderr.read().strip().splitlines()
            raise OSError(f"the traffic sender did not start: {error[-1] if error else f'exit status {proc.wait()}'}")
        self.proc = proc

    def stop(self) -> dict[str, Any]:
        import json

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        if self.proc.returncode != 0:
            lines = err.strip().splitlines()
            raise OSError(f"the traffic sender failed: {lines[-1] if lines else f'exit status {self.proc.returncode}'}")
        counts: dict[str, Any] = json.loads(out)
        return counts


def _send(ifname: str, pps: int, seconds: float) -> dict[str, Any]:
    """The socket sender's loop: keep the number of frames sent at `pps` x the time elapsed, at most BATCH frames
    per sendmmsg(2), until SIGTERM or `seconds`; {"sent", "failed", "seconds", "pps", "syscalls"}."""
    import ctypes
    import errno
    import socket

    class Iovec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    class Msghdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(Iovec)),
                    ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]  # fmt: skip

    class Mmsghdr(ctypes.Structure):  # a struct msghdr (padded to 8 bytes), then msg_len
        _fields_ = [("hdr", Msghdr), ("len", ctypes.c_uint)]

    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    data = ctypes.create_string_buffer(frame(), len(frame()))
    iov = Iovec(ctypes.addressof(data), len(data))
    messages = (Mmsghdr * BATCH)()
    for message in messages:
        message.hdr.iov, message.hdr.iovlen = ctypes.pointer(iov), 1
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.setsockopt(263, PACKET_QDISC_BYPASS, 1)  # SOL_PACKET: straight to the driver, no qdisc
    sock.bind((ifname, 0))
    fd, sendmmsg = sock.fileno(), ctypes.CDLL(None, use_errno=True).sendmmsg
    print("ready", flush=True)
    sent = failed = calls = 0
    start = time.monotonic()
    elapsed = 0.0
    while not stopped and elapsed < seconds:
        elapsed = time.monotonic() - start
        due = min(int(elapsed * pps) - sent, BATCH)
        if due <= 0:
            time.sleep(0.0005)
            continue
        calls += 1
        taken = sendmmsg(fd, messages, due, 0)
        if taken >= 0:
            sent += taken
            continue
        code = ctypes.get_errno()
        if code == errno.ENOBUFS:  # the first frame refused; the next attempt comes after a pause
            failed += 1
            time.sleep(0.0005)
        elif code != errno.EINTR:
            raise OSError(code, f"sendmmsg: {os.strerror(code)}")
    elapsed = time.monotonic() - start
    return {
        "sent": sent,
        "failed": failed,
        "seconds": round(elapsed, 3),
        "pps": round(sent / elapsed) if elapsed else 0,
        "syscalls": calls,
    }


if __name__ == "__main__":
    import json

    os.setpriority(os.PRIO_PROCESS, 0, int(sys.argv[4]))
    print(json.dumps(_send(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))), flush=True)
