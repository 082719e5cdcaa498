"""Licences: what the kernel counts as GPL-compatible, SPDX expressions (parsed by the `license-expression`
library against the SPDX licence list it ships; a single listed identifier, or what a kernel license string maps
to, is known without it), and how license-section strings map to SPDX."""

from __future__ import annotations

import functools
import re
from typing import Any

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
    """Whether an SPDX expression (best normalised by parse_spdx) offers the code under a GPL, alone or as one
    side of an OR."""
    return bool(_GPL_ID.search(expression))


# SPDX's own identifiers for licences outside its list: [DocumentRef-<id>:]LicenseRef-<id> (SPDX 2.3, annex D)
_LICENSE_REF = re.compile(r"(?:DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+")


@functools.cache
def _spdx_index() -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """The library's licence index (entries with an SPDX key) and each entry's keys in lower case."""
    from license_expression import get_license_index

    out = []
    for entry in get_license_index():
        if entry.get("spdx_license_key"):
            keys = (entry["spdx_license_key"], *entry.get("other_spdx_license_keys", []))
            out.append((entry, tuple(k.lower() for k in keys)))
    return out


@functools.cache
def _known_spdx() -> dict[str, str]:
    """What the library would make of a single SPDX licence identifier (in any case: key lower-cased), or of
    an expression the kernel's license strings map to: tests/test_licenses.py has the library confirm each."""
    from bpfcert.knowledge.spdx_ids import SPDX_LICENSE_IDS

    return {**{key.lower(): key for key in SPDX_LICENSE_IDS}, **{e.lower(): e for e in SECTION_TO_SPDX.values()}}


@functools.lru_cache(maxsize=256)
def parse_spdx(expression: str) -> tuple[str | None, str | None]:
    """(the expression normalised, None) when `expression` is a valid SPDX licence expression, else (None, why).

    Keys match case-insensitively, as SPDX says; LicenseRef- identifiers are valid without being listed. A single
    listed identifier, or an expression a kernel license string maps to, is answered from a table (`bpfcert
    check` has 150 ms for everything; the library and its index take ~15 ms to load); any other text is parsed by
    the library.
    """
    known = _known_spdx().get(expression.lower())
    return (known, None) if known is not None else _parse_with_library(expression)


def _parse_with_library(expression: str) -> tuple[str | None, str | None]:
    """parse_spdx by the library, given only the index entries whose keys occur in the text: the same tokens,
    at a fraction of the ~25 ms that building the whole list costs."""
    from license_expression import ExpressionError, build_spdx_licensing

    text = expression.lower()
    licensing = build_spdx_licensing([e for e, keys in _spdx_index() if any(k in text for k in keys)])
    try:
        parsed = licensing.parse(expression, strict=True)
    except ExpressionError as exc:
        return None, str(exc)
    except (IndexError, TypeError, ValueError, AttributeError):  # boolean.py trips on some malformed input, e.g. "()"
        return None, "not a well-formed licence expression"
    if parsed is None:
        return None, "the expression is empty"
    unknown = [k for k in licensing.unknown_license_keys(parsed) if not _LICENSE_REF.fullmatch(k)]
    if unknown:
        return None, f"Unknown license key(s): {', '.join(unknown)}"
    return str(parsed), None


def spdx_for_section(text: str | None) -> str | None:
    """The SPDX expression for a license section: the kernel's strings by table, a valid SPDX expression
    normalised, other text as LicenseRef-<text> ("Proprietary" -> "LicenseRef-Proprietary"); None when nothing
    of the text can make an identifier."""
    if text in SECTION_TO_SPDX:
        return SECTION_TO_SPDX[text]
    if not text:
        return None
    normalised, _problem = parse_spdx(text)
    if normalised is not None:
        return normalised
    ref = re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")
    return f"LicenseRef-{ref}" if ref else None
