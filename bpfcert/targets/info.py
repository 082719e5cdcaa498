"""TargetInfo: what an open target is, as the probe report, the pytest summary and KRN-BOOT-001's evidence show it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TargetInfo:
    """A target's name, kernel and how it runs (None where it does not apply: the host has no .deb and no boot)."""

    name: str
    release: str  # `uname -r`
    series: str  # "host" or the kernel series
    version: str  # Debian package version of a VM's kernel; the host's `uname -v`
    deb_sha256: str | None
    accel: str  # "kvm" or "tcg" for a VM, "none" for the host
    arch: str
    boot_seconds: float | None  # boot -> agent ready

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
