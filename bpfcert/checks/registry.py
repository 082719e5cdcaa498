"""The check registry: @check ties a function to its requirement ID; `result` builds a Result of an ID at the
level the catalogue gives it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bpfcert import spec
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.checks.context import Context

CheckFn = Callable[["Context"], Iterable[Result]]
REGISTRY: dict[str, CheckFn] = {}
# requirement ID -> why the check judged nothing, when that means the requirement does not apply
NOT_APPLICABLE: dict[str, str] = {}


def check(req_id: str, *, absent: str = "") -> Callable[[CheckFn], CheckFn]:
    """Register `fn` as the check of requirement `req_id` (which must be in the catalogue).

    `absent` says why the requirement does not apply when the check yields nothing ("the manifest preserves
    no maps"); without it such a requirement reads "not applicable: nothing in the package it judges".
    """

    def register(fn: CheckFn) -> CheckFn:
        spec.requirement(req_id)
        REGISTRY[req_id] = fn
        if absent:
            NOT_APPLICABLE[req_id] = absent
        return fn

    return register


def result(
    req_id: str,
    status: Status,
    message: str,
    *,
    target: str = "static",
    subject: str = "",
    evidence: dict[str, Any] | None = None,
) -> Result:
    """A Result of requirement `req_id`, at the level the catalogue gives it."""
    level = spec.requirement(req_id).level
    return Result(req_id, status, message, level=level, target=target, evidence=evidence or {}, subject=subject)
