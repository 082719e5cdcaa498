"""The guest agent: JSON lines over a virtio console, running bpfcert.targets.ops on the guest kernel.

Started by the initramfs as `python3 -I -S agent.py --path REPO ... --device /dev/hvc0`. Stdlib only at
import; bpfcert.targets.ops is imported on the first op that needs it. Requests are `{"id", "op", "args"}` (a
long one as `{"id", "op", "request_file"}`, a file holding the request that the host wrote where the guest reads);
responses `{"id", "ok": true, "result"}` or `{"id", "ok": false, "error": {"type", "message"}}`; the first
line is the `{"id": 0, "ok": true, "result": {"ready": true, ...hello...}}` announcement.
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # importing typing costs guest start-up time; annotations are strings at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

SYSLOG_ACTION_READ_ALL, SYSLOG_ACTION_SIZE_BUFFER = 3, 10
LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART = 0xFEE1DEAD, 672274793, 0x01234567


def hello() -> dict[str, Any]:
    """The guest's identity: kernel release, machine and its byte order, BTF presence, the Python binary and
    version the agent runs on."""
    uname = os.uname()
    return {
        "release": uname.release,
        "machine": uname.machine,
        "byteorder": sys.byteorder,
        "btf": os.path.exists("/sys/kernel/btf/vmlinux"),
        "python": ".".join(map(str, sys.version_info[:3])),
        "executable": sys.executable,
    }


def dmesg() -> str:
    """The kernel log buffer (syslog(2) READ_ALL)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    size = max(libc.klogctl(SYSLOG_ACTION_SIZE_BUFFER, None, 0), 1 << 16)
    buf = ctypes.create_string_buffer(size)
    n = libc.klogctl(SYSLOG_ACTION_READ_ALL, buf, size)
    if n < 0:
        raise OSError(ctypes.get_errno(), "syslog(2) READ_ALL failed")
    return buf.raw[:n].decode("utf-8", "replace")


def fault(kind: str) -> None:
    """Fault injection for the harness's own tests (enabled only with --faults): panic, hang, oom, die, or
    splat (the kernel prints a backtrace with a Call Trace, and carries on)."""
    import signal

    sysrq = {"panic": "c", "splat": "l"}.get(kind)  # crash; show a backtrace of all CPUs
    if sysrq:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write(sysrq)
        return
    if kind == "hang":
        while True:
            signal.pause()
    if kind == "oom":
        hoard = []
        while True:
            hoard.append(bytearray(16 << 20))
    if kind == "die":
        os.kill(os.getpid(), 9)
    raise ValueError(f"unknown fault kind {kind!r}")


def _restart() -> None:
    """Leave the guest: sync and restart, which QEMU (-no-reboot) turns into a clean exit."""
    import ctypes

    os.sync()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.reboot(LINUX_REBOOT_CMD_RESTART)
    os._exit(0)  # only reached if reboot(2) failed; init then restarts the guest the same way


# Ops the agent answers itself, without importing bpfcert.targets.ops (its import costs guest start-up time).
BUILTINS: dict[str, Callable[..., Any]] = {"hello": hello, "dmesg": dmesg}


def lookup(op: str, *, faults: bool = False) -> Callable[..., Any]:
    """The function that runs `op`: a builtin (and `fault` with faults on), else bpfcert.targets.ops.OPS[op];
    KeyError for an unknown op. The host target runs its ops through this too."""
    if op in BUILTINS:
        return BUILTINS[op]
    if faults and op == "fault":
        return fault
    from bpfcert.targets.ops import OPS

    if op not in OPS:
        raise KeyError(f"unknown op {op!r}")
    return OPS[op]


def serve(inp: IO[bytes], out: IO[bytes], *, faults: bool = False) -> None:
    """Answer requests from `inp` on `out` until "shutdown" or end of input."""
    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        out.flush()

    send({"id": 0, "ok": True, "result": {"ready": True, **hello()}})
    for line in inp:
        try:
            request = json.loads(line)
            if "request_file" in request:  # a long request, written by the host where this guest reads it
                with open(request["request_file"], "rb") as f:
                    request = json.load(f)
            rid, op, args = request["id"], request["op"], request.get("args") or {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            send(
                {
                    "id": None,
                    "ok": False,
                    "error": {"type": type(exc).__name__, "message": f"bad request: {exc}"},
                }
            )
            continue
        if op == "shutdown":
            send({"id": rid, "ok": True, "result": None})
            return
        try:
            result = lookup(op, faults=faults)(**args)
        except Exception as exc:  # every op failure goes back to the host; the agent carries on
            send({"id": rid, "ok": False, "error": {"type": type(exc).__name__, "message": str(exc)}})
        else:
            send({"id": rid, "ok": True, "result": result})


def main(argv: list[str]) -> None:
    """Parse `--path DIR` (repeatable), `--device TTY`, `--faults`; open the port raw; serve; restart."""
    import termios
    import tty

    device, faults = "/dev/hvc0", False
    args = iter(argv)
    for arg in args:
        if arg == "--path":
            sys.path.append(next(args))
        elif arg == "--device":
            device = next(args)
        elif arg == "--faults":
            faults = True
    fd = os.open(device, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd, termios.TCSANOW)
    with open(fd, "rb", closefd=False) as inp, open(fd, "wb", closefd=False) as out:
        serve(inp, out, faults=faults)
    _restart()


if __name__ == "__main__":
    main(sys.argv[1:])
