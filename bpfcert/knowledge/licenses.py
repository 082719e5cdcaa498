"""Licences: what the kernel counts as GPL-compatible, and how license-section strings map to SPDX."""

from __future__ import annotations

import re

# The strings the kernel's license_is_gpl_compatible() accepts (include/linux/license.h).
KERNEL_GPL_COMPATIBLE = frozenset(
    {"GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"}
)

# license-section string -> the SPDX expression a package derived from it declares.
SECTION_TO_SPDX = {
    "GPL": "GPL-2.0-only",
    "GPL v2": "GPL-2.0-only",
    "GPL and additional rights": "GPL-2.0-only",
    "Dual BSD/GPL": "BSD-2-Clause OR GPL-2.0-only",
    "Dual MIT/GPL": "MIT OR GPL-2.0-only",
    "Dual MPL/GPL": "MPL-2.0 OR GPL-2.0-only",
}

_GPL_ID = re.compile(r"(?<![A-Za-z0-9.-])L?GPL-[23]\.0(?:-only|-or-later|\+)?(?![A-Za-z0-9.-])")


def section_is_gpl_compatible(text: str | None) -> bool:
    """Whether the kernel treats a program with this license section as GPL-compatible."""
    return text in KERNEL_GPL_COMPATIBLE


def spdx_is_gpl_compatible(expression: str) -> bool:
    """Whether an SPDX expression offers the code under a GPL (alone, or as one side of an OR)."""
    return bool(_GPL_ID.search(expression))


_SPDX_LIKE = re.compile(r"^[A-Za-z0-9.+-]+(?: (?:AND|OR|WITH) [A-Za-z0-9.+-]+)*$")


def spdx_for_section(text: str | None) -> str | None:
    """The SPDX expression for a license section: the kernel's strings by table, SPDX-looking text as is."""
    if text in SECTION_TO_SPDX:
        return SECTION_TO_SPDX[text]
    return text if text and _SPDX_LIKE.match(text) else None
