"""Kernel targets: the host kernel (in-process) and Debian kernels booted under QEMU, behind one protocol.

Light at import (the CLI and the guest agent load this package): QEMU, apt, threads and dataclasses are imported
on use. Which targets there are: `series`; opening many of them, once each, a few VMs at a time: `schedule`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bpfcert.errors import TargetError, TargetErrorKind

if TYPE_CHECKING:
    from bpfcert.targets.info import TargetInfo


class Target(Protocol):
    """A kernel the suite runs on."""

    name: str

    def info(self) -> TargetInfo:
        """What this target is: name, kernel, accelerator, arch, boot time."""

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

    def info(self) -> TargetInfo:
        from bpfcert.targets.info import TargetInfo

        uname = os.uname()
        return TargetInfo("host", uname.release, "host", uname.version, None, "none", uname.machine, None)

    def call(self, op: str, **args: Any) -> Any:
        from bpfcert.targets.agent import lookup

        try:
            func = lookup(op)
        except KeyError:
            raise TargetError(f"host: unknown op {op!r}", TargetErrorKind.OP_FAILED) from None
        try:
            return func(**args)
        except TargetError:
            raise
        except Exception as exc:  # an op failure is reported like the guest agent reports it
            message = f"host: op {op!r} failed: {type(exc).__name__}: {exc}"
            raise TargetError(message, TargetErrorKind.OP_FAILED) from None

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
    """Target names: None -> host + cached kernels; "all" -> host + every series; else a comma list."""
    from bpfcert.targets.series import HOST, SERIES, TargetName, known_names

    if spec is None:
        from bpfcert.targets.kernels import cached_kernels

        cached = cached_kernels()
        return [HOST, *(s for s in SERIES if s in cached)]
    if spec.strip() == "all":
        return [HOST, *SERIES]
    names, unknown = [], []
    for text in dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()):
        try:
            names.append(str(TargetName.parse(text)))
        except TargetError:
            unknown.append(text)
    if unknown or not names:
        raise TargetError(
            f"unknown target {', '.join(unknown) or repr(spec)} (known: {known_names()}, all)",
            TargetErrorKind.MISSING_KERNEL,
        )
    return names


def prepare_target(name: str, accel: str = "auto", **options: Any) -> Callable[[], Target]:
    """How to open target `name`, staged now in the caller's thread (for a VM: the environment is read, the
    kernel image and initramfs made ready); calling the result opens it (boots the VM, `options` going to
    VmTarget). TargetError if the name is unknown or the target cannot open here."""
    from bpfcert.targets.series import TargetName

    if TargetName.parse(name).is_host:
        return HostTarget
    import functools

    from bpfcert.targets import vm

    return functools.partial(vm.start, vm.prepare(name, **options), accel)


def open_target(name: str, accel: str = "auto", **options: Any) -> Target:
    """The host (in-process) or a booted VM of a cached kernel series; TargetError if that cannot be done."""
    return prepare_target(name, accel, **options)()


def default_jobs() -> int:
    """VMs booted at a time: two on two cores (the measured optimum), one per core beyond that."""
    return max(2, os.cpu_count() or 1)
