"""Which targets there are: the one list of kernel series (each with where Debian ships its kernel, per
architecture, in the machine table) and the typed target name every caller parses names with. A name is SERIES for
x86_64 (`6.1`) or SERIES/ARCH for another architecture (`6.1/arm64`, `6.12/s390x`). tox.ini's kernel-{...} envs
repeat the x86_64 list (a test keeps them in step)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets.machines import ARCHES, DEBIAN_ARCHES, MACHINES, SERIES_SPECS, Machine

__all__ = ["ALL_ARCH", "HOST", "SERIES", "SERIES_SPECS", "TargetName", "known_names", "target_help"]

HOST = "host"
SERIES = tuple(SERIES_SPECS)  # the x86_64 targets: `--target all`
ALL_ARCH = tuple(m.name for m in MACHINES.values())  # every VM target: `--target all-arch`


def known_names() -> str:
    """The target names, for messages: "host, 5.10, ..., 6.1/arm64, ..."."""
    return ", ".join((HOST, *SERIES, *(n for n in ALL_ARCH if n not in SERIES)))


def target_help() -> str:
    """What a --target option takes, for its help."""
    return f"{known_names()}, comma-separated, or kernels (the cached ones), all (x86_64), or all-arch"


@dataclass(frozen=True)
class TargetName:
    """A target's name: the host kernel, or a kernel series booted under QEMU for an architecture."""

    series: str  # HOST or a key of SERIES_SPECS
    arch: str = "x86_64"  # `uname -m`

    @classmethod
    def parse(cls, text: str) -> TargetName:
        """The name `text` spells (ARCH as Debian or `uname -m` names it); TargetError (missing-kernel) naming
        the known ones if it spells none."""
        name = text.strip()
        if name == HOST:
            return cls(HOST, os.uname().machine)
        series, slash, arch_text = name.partition("/")
        arch = DEBIAN_ARCHES[arch_text].name if arch_text in DEBIAN_ARCHES else arch_text if slash else "x86_64"
        if arch in ARCHES and (series, arch) in MACHINES:
            return cls(series, arch)
        raise TargetError(f"unknown target {name!r} (known: {known_names()})", TargetErrorKind.MISSING_KERNEL)

    @property
    def is_host(self) -> bool:
        return self.series == HOST

    @property
    def machine(self) -> Machine:
        """The machine table's row for a VM target (KeyError for the host)."""
        return MACHINES[(self.series, self.arch)]

    def __str__(self) -> str:
        return self.series if self.is_host else self.machine.name
