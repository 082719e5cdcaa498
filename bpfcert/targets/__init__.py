"""Kernel targets: the host kernel (in-process) and Debian kernels booted under QEMU, behind one protocol.

Light at import (the CLI and the guest agent load this package): QEMU, apt and threads are imported on use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from bpfcert.errors import TargetError

SERIES = ("5.10", "6.1", "6.12", "7.2")
T = TypeVar("T")


class Target(Protocol):
    """A kernel the suite runs on."""

    name: str

    def info(self) -> dict[str, Any]:
        """{"name", "release", "series", "version", "deb_sha256", "accel", "arch", "boot_seconds"} (None where
        they do not apply: the host has no .deb and no boot)."""

    def call(self, op: str, **args: Any) -> Any:
        """Run op `op` (bpfcert.targets.agent.lookup) with `args` on this kernel; TargetError (classified) on
        failure."""

    def splats(self) -> list[str]:
        """Kernel splat lines seen since the target was opened."""

    def close(self) -> None:
        """Release the target (for a VM: shut down and reap QEMU and virtiofsd)."""


class HostTarget:
    """The kernel this process runs on: ops run in-process, splats come from /dev/kmsg since opening."""

    name = "host"

    def __init__(self) -> None:
        try:
            self._kmsg: int | None = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self._kmsg, 0, os.SEEK_END)
        except OSError:
            self._kmsg = None
        self._log: list[str] = []

    def info(self) -> dict[str, Any]:
        uname = os.uname()
        return {
            "name": "host",
            "release": uname.release,
            "series": "host",
            "version": uname.version,
            "deb_sha256": None,
            "accel": "none",
            "arch": uname.machine,
            "boot_seconds": None,
        }

    def call(self, op: str, **args: Any) -> Any:
        from bpfcert.targets.agent import lookup

        try:
            func = lookup(op)
        except KeyError:
            raise TargetError(f"host: unknown op {op!r}", "op-failed") from None
        try:
            return func(**args)
        except TargetError:
            raise
        except Exception as exc:  # an op failure is reported like the guest agent reports it
            raise TargetError(f"host: op {op!r} failed: {type(exc).__name__}: {exc}", "op-failed") from None

    def splats(self) -> list[str]:
        from bpfcert.targets.kernel_log import splat_lines

        while self._kmsg is not None:
            try:
                record = os.read(self._kmsg, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError:  # EPIPE: records overwritten before we read them; carry on from the next one
                continue
            self._log.append(record.partition(";")[2].rstrip("\n"))
        return splat_lines("\n".join(self._log))

    def close(self) -> None:
        if self._kmsg is not None:
            os.close(self._kmsg)
            self._kmsg = None


def resolve_names(spec: str | None) -> list[str]:
    """Target names: None -> host + cached kernels; "all" -> host + the four series; else a comma list."""
    if spec is None:
        from bpfcert.targets.kernels import cached_kernels

        cached = cached_kernels()
        return ["host", *(s for s in SERIES if s in cached)]
    if spec.strip() == "all":
        return ["host", *SERIES]
    names = list(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    unknown = [n for n in names if n != "host" and n not in SERIES]
    if unknown or not names:
        raise TargetError(
            f"unknown target {', '.join(unknown) or repr(spec)} (known: host, {', '.join(SERIES)}, all)",
            "missing-kernel",
        )
    return names


def open_target(name: str, accel: str = "auto", **options: Any) -> Target:
    """The host (in-process) or a booted VM of a cached kernel series; TargetError if that cannot be done."""
    if name == "host":
        return HostTarget()
    from bpfcert.targets import vm

    return vm.boot(name, accel, **options)


def default_jobs() -> int:
    """VMs booted at a time: two on two cores (the measured optimum), one per core beyond that."""
    return max(2, os.cpu_count() or 1)


def map_targets(
    names: list[str],
    fn: Callable[[Target], T],
    *,
    accel: str = "auto",
    jobs: int | None = None,
    progress: bool = True,
    label: str = "targets",
    summary: Callable[[T], str] | None = None,
    **options: Any,
) -> dict[str, T | TargetError]:
    """Open each target, run `fn`, close it; a failing target becomes its TargetError, the others carry on.

    The host does not take a VM slot; at most `jobs` VMs run at a time; `options` go to open_target. Progress
    goes to stderr: a live status line on a terminal, else one "<label>: <target> <state>" line per state
    change (booting, ready in N s, done (<summary of fn's result>), failed (kind)).
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    slots = threading.Semaphore(jobs or default_jobs())
    status = dict.fromkeys(names, "waiting")
    lock = threading.Lock()
    live = progress and sys.stderr.isatty()

    def show(name: str, state: str) -> None:
        with lock:
            status[name] = state
            if live:
                line = "  ".join(f"{n}: {s}" for n, s in status.items())
                sys.stderr.write(f"\r\x1b[K[{label}] {line}")
            elif progress:
                sys.stderr.write(f"{label}: {name} {state}\n")
            sys.stderr.flush()

    def run(name: str) -> T | TargetError:
        slot = slots if name != "host" else None
        if slot:
            slot.acquire()
        try:
            show(name, "booting" if slot else "opening")
            target = open_target(name, accel, **options)
            try:
                boot = target.info().get("boot_seconds")
                show(name, f"ready in {boot:.1f} s" if boot is not None else "ready")
                result = fn(target)
            finally:
                target.close()
            show(name, f"done ({summary(result)})" if summary else "done")
            return result
        except TargetError as exc:
            show(name, f"failed ({exc.kind})")
            return exc
        finally:
            if slot:
                slot.release()

    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        futures = {name: pool.submit(run, name) for name in names}
        results = {name: future.result() for name, future in futures.items()}
    if live:
        sys.stderr.write("\n")
    return results
