"""The check registry: @check ties a function to its requirement ID, the one place a check states it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from bpfcert import spec
from bpfcert.results import Result

if TYPE_CHECKING:
    from bpfcert.checks.context import Context

CheckFn = Callable[["Context"], Iterable[Result]]
REGISTRY: dict[str, CheckFn] = {}
# requirement ID -> why the check judged nothing, when that means the requirement does not apply
NOT_APPLICABLE: dict[str, str] = {}


def check(req_id: str, *, absent: str = "") -> Callable[[CheckFn], CheckFn]:
    """Register `fn` as the check of requirement `req_id` (which must be in the catalogue). The runner calls it
    with a Context judging `req_id`, so its body builds rows with ctx.passed / ctx.failed / ctx.result.

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
