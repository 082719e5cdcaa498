"""PLACEHOLDER (owned by isa-interp; replaced on merge): the two names the kernel and DPDK engines use."""

from __future__ import annotations

from typing import NamedTuple

from bpfcert.errors import BpfcertError


class Outcome(NamedTuple):
    """What an engine made of a case: r0, or the error with which it refused or faulted."""

    r0: int | None
    error: str | None


class EngineCrash(BpfcertError):
    """The engine itself died, timed out or answered garbage."""
