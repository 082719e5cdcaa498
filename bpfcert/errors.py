"""Typed errors. Every error a user can provoke is a BpfcertError: the CLI prints its one line and exits 2.
Any other exception is a bug: the CLI prints one line naming it and exits 3 (BPFCERT_DEBUG=1 adds the traceback)."""


class BpfcertError(Exception):
    """An error caused by input or environment, reported in one line, never as a traceback."""


class FormatError(BpfcertError):
    """Bytes that do not decode: a malformed ELF, BTF, BTF.ext or instruction stream."""


class ManifestError(BpfcertError):
    """A manifest that cannot be read at all (not JSON/YAML, wrong top-level type)."""


class PackageError(BpfcertError):
    """A package that cannot be opened: missing, unreadable, hostile archive."""


class TargetError(BpfcertError):
    """A kernel target that failed: missing kernel, VM boot failure, guest panic, hang or dead agent.

    `kind` classifies the fault (e.g. "missing-kernel", "boot", "panic", "timeout", "oom", "agent-died");
    `console` carries the tail of the guest console where there is one.
    """

    def __init__(self, message: str, kind: str = "error", console: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.console = console
