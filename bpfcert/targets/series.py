"""Which targets there are: the one list of kernel series (each with where Debian ships its cloud kernel) and the
typed target name every caller parses names with. tox.ini's kernel-{...} envs repeat the list (a test keeps
them in step)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bpfcert.errors import TargetError, TargetErrorKind

HOST = "host"


@dataclass(frozen=True)
class SeriesSpec:
    """Where one kernel series comes from: the Debian suite and the package holding the kernel image."""

    series: str
    suite: str
    image_package: str  # regex over package names; the newest match is fetched
    companions: tuple[str, ...] = ()  # prefixes replacing "linux-binary-" for the packages fetched alongside


SERIES_SPECS: dict[str, SeriesSpec] = {
    "5.10": SeriesSpec("5.10", "bullseye", r"linux-image-5\.10\.0-\d+-cloud-amd64"),
    "6.1": SeriesSpec("6.1", "bookworm", r"linux-image-6\.1\.0-\d+-cloud-amd64"),
    "6.12": SeriesSpec("6.12", "trixie", r"linux-image-6\.12\.\d+\+deb13-cloud-amd64"),
    # In sid linux-image-7.2* is a metapackage: the image, modules and config live in three packages.
    "7.2": SeriesSpec(
        "7.2",
        "sid",
        r"linux-binary-7\.2\.\d+\+deb14-cloud-amd64",
        companions=("linux-modules-", "linux-base-"),
    ),
}
SERIES = tuple(SERIES_SPECS)


def known_names() -> str:
    """The target names, for messages: "host, 5.10, ..."."""
    return ", ".join((HOST, *SERIES))


def target_help() -> str:
    """What a --target option takes, for its help."""
    return f"{known_names()}, comma-separated, or all"


@dataclass(frozen=True)
class TargetName:
    """A target's name: the host kernel, or a kernel series booted under QEMU for an architecture."""

    series: str  # HOST or a key of SERIES_SPECS
    arch: str = "x86_64"

    @classmethod
    def parse(cls, text: str) -> TargetName:
        """The name `text` spells; TargetError (missing-kernel) naming the known ones if it spells none."""
        name = text.strip()
        if name == HOST:
            return cls(HOST, os.uname().machine)
        if name in SERIES_SPECS:
            return cls(name)
        raise TargetError(f"unknown target {name!r} (known: {known_names()})", TargetErrorKind.MISSING_KERNEL)

    @property
    def is_host(self) -> bool:
        return self.series == HOST

    def __str__(self) -> str:
        return self.series
