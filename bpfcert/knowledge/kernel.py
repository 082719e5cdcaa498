"""Kernel versions as (major, minor): parse `uname -r` strings and manifest ranges, and format them back."""

from __future__ import annotations

import re

from bpfcert.errors import BpfcertError

_RELEASE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.\d+)?(?:[-+~_.].*)?\s*$")
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==)\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?\s*$")

KernelVersion = tuple[int, int]


class KernelVersionError(BpfcertError):
    """A kernel version or version range that does not parse."""


def parse_version(release: str) -> KernelVersion:
    """(major, minor) of a kernel release string: '5.10.0-30-cloud-amd64' -> (5, 10), '6.1' -> (6, 1)."""
    match = _RELEASE.match(release)
    if match is None:
        raise KernelVersionError(f"not a kernel version: {release!r} (expected e.g. 5.10 or 5.10.0-30-amd64)")
    return int(match.group(1)), int(match.group(2))


def parse_range(text: str) -> list[tuple[str, tuple[int, int, int]]]:
    """A range such as '>=5.10,<7' as [(operator, (major, minor, patch))]; missing parts count as 0."""
    parts = text.split(",")
    out: list[tuple[str, tuple[int, int, int]]] = []
    for part in parts:
        match = _COMPARISON.match(part)
        if match is None:
            raise KernelVersionError(f"not a kernel version range: {text!r} (expected e.g. >=5.10,<7)")
        op, major, minor, patch = match.groups()
        out.append((op, (int(major), int(minor or 0), int(patch or 0))))
    return out


def parse_requirement(text: str) -> KernelVersion:
    """The oldest (major, minor) a range admits: '>=5.10' -> (5, 10); (0, 0) if it sets no lower bound."""
    bounds = [(major, minor) for op, (major, minor, _) in parse_range(text) if op in (">=", ">", "==")]
    return max(bounds, default=(0, 0))


def satisfies(version: KernelVersion | tuple[int, int, int], text: str) -> bool:
    """Whether a kernel version lies in the range `text`."""
    have = (*version, 0, 0)[:3]
    checks = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
    }
    return all(checks[op](have, want) for op, want in parse_range(text))


def format_version(version: KernelVersion) -> str:
    return f"{version[0]}.{version[1]}"


def format_requirement(version: KernelVersion) -> str:
    """The manifest form of a minimum: (5, 10) -> '>=5.10'."""
    return f">={format_version(version)}"
