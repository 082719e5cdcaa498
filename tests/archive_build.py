"""Building hostile .tar.gz packages in tests: regular members with given bytes, and special members (links,
devices, FIFOs) by type."""

from __future__ import annotations

import io
import tarfile


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    """A regular member `name` holding `data`."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_entry(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    """A member of type `kind` (tarfile.SYMTYPE, LNKTYPE, CHRTYPE, FIFOTYPE...) with no data."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    tar.addfile(info)
