"""The host kernel as a target: ops run in this process, splats come from /dev/kmsg."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from bpfcert.errors import TargetError, TargetErrorKind

if TYPE_CHECKING:
    from bpfcert.targets.info import TargetInfo


class HostTarget:
    """The kernel this process runs on: ops run in-process, splats come from /dev/kmsg since opening."""

    name = "host"
    python = os.path.realpath(sys.executable)

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
