"""Typed errors. Every error a user can provoke is a BpfcertError: the CLI prints its one line and exits 2.
Any other exception is a bug: the CLI prints one line naming it and exits 3 (BPFCERT_DEBUG=1 adds the traceback)."""

from enum import StrEnum


class BpfcertError(Exception):
    """An error caused by input or environment, reported in one line, never as a traceback."""


class FormatError(BpfcertError):
    """Bytes that do not decode: a malformed ELF, BTF, BTF.ext or instruction stream."""


class ManifestError(BpfcertError):
    """A manifest that cannot be read at all (not JSON/YAML, wrong top-level type)."""


class PackageError(BpfcertError):
    """A package that cannot be opened: missing, unreadable, hostile archive."""


class TargetErrorKind(StrEnum):
    """How a kernel target failed (a str: compares to, prints and serialises as its value)."""

    ERROR = "error"
    MISSING_KERNEL = "missing-kernel"  # unknown series, or its kernel is not cached
    FETCH = "fetch"  # downloading or extracting a kernel failed
    BOOT = "boot"  # the VM could not be started or its agent was not ready in time
    PANIC = "panic"
    OOPS = "oops"
    OOM = "oom"
    TIMEOUT = "timeout"
    AGENT_DIED = "agent-died"
    OP_FAILED = "op-failed"  # an op raised; the target is still up


class TargetError(BpfcertError):
    """A kernel target that failed: missing kernel, VM boot failure, guest panic, hang or dead agent.

    `kind` classifies the fault (a TargetErrorKind; its string value is accepted too); `console` carries the
    tail of the guest console where there is one.
    """

    def __init__(self, message: str, kind: TargetErrorKind = TargetErrorKind.ERROR, console: str = "") -> None:
        super().__init__(message)
        self.kind = TargetErrorKind(kind)
        self.console = console


class RunnerProtocolError(BpfcertError):
    """A runner that broke the runner protocol at one step (start, install, ...): printed something that is not
    JSON, answered off-schema or contradicting its request, died or did not answer in time. The runner is stopped
    by then; `stderr` is the tail of what it wrote there (its last line shows in the message)."""

    def __init__(self, step: str, reason: str, stderr: str = "", runner: str = "") -> None:
        super().__init__(step, reason)
        self.step, self.reason, self.stderr, self.runner = step, reason, stderr, runner

    def __str__(self) -> str:
        where = f"runner {self.runner}: {self.step}" if self.runner else self.step
        last = self.stderr.strip().splitlines()[-1:]
        return f"{where}: {self.reason}" + (f" (stderr: {last[0][:300]})" if last else "")


class StreamError(BpfcertError):
    """A results stream that cannot be read back: not JSON lines, no header, a malformed line (named by number)."""


class HubError(BpfcertError):
    """An OCI registry or image layout that cannot serve a package as the hub standard says: unreachable, an
    answer off the distribution protocol, a missing reference, or bytes that do not match their digest (`kind`:
    "unreachable", "protocol", "not-found", "digest-mismatch", "signature", "format")."""

    def __init__(self, message: str, kind: str = "protocol") -> None:
        super().__init__(message)
        self.kind = kind
