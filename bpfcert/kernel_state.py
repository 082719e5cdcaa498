"""Snapshots of a kernel's BPF state (the `kernel_state` target op) compared over time: what appeared and
what vanished between two, and waiting for objects to go.

A snapshot is the op's JSON: {"programs", "maps", "links": [{"id", "type", ...}], "pins": [{"path", "kind",
"id"}], "unsupported": [...]}. Objects are the same object when their ids are (the kernel does not reuse an
id soon); a pin is the same pin when both its path and the id it holds are, so re-pinning a path to a new
object shows as one pin vanished and one appeared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OBJECT_KINDS = ("programs", "maps", "links")
KINDS = (*OBJECT_KINDS, "pins")

Snapshot = Mapping[str, Any]


def _key(kind: str, record: Mapping[str, Any]) -> tuple[Any, ...]:
    return (record["path"], record["id"]) if kind == "pins" else (record["id"],)


@dataclass(frozen=True)
class StateDiff:
    """Records per kind ("programs", "maps", "links", "pins") present in one snapshot and not the other."""

    appeared: dict[str, list[dict[str, Any]]]
    vanished: dict[str, list[dict[str, Any]]]

    def __bool__(self) -> bool:
        return any(self.appeared.values()) or any(self.vanished.values())


def diff(before: Snapshot, after: Snapshot) -> StateDiff:
    """What appeared and what vanished from `before` to `after`, in each snapshot's order."""
    appeared: dict[str, list[dict[str, Any]]] = {}
    vanished: dict[str, list[dict[str, Any]]] = {}
    for kind in KINDS:
        old = {_key(kind, r): r for r in before.get(kind, [])}
        new = {_key(kind, r): r for r in after.get(kind, [])}
        appeared[kind] = [r for k, r in new.items() if k not in old]
        vanished[kind] = [r for k, r in old.items() if k not in new]
    return StateDiff(appeared, vanished)


def ids(snapshot: Snapshot) -> dict[str, set[int]]:
    """The ids of the programs, maps and links in a snapshot."""
    return {kind: {r["id"] for r in snapshot.get(kind, [])} for kind in OBJECT_KINDS}


def wait_vanished(
    snapshot: Callable[[], Snapshot],
    gone: Mapping[str, Iterable[int]],
    timeout: float = 5.0,
    *,
    first: Snapshot | None = None,
) -> dict[str, set[int]]:
    """Take snapshots until none of the ids in `gone` ({"maps": [...], ...}) is left or `timeout` seconds
    have passed; the ids still there (empty sets when all went). The kernel frees an object after its last
    reference asynchronously (maps can take about a second), so this polls, backing off from 10 to 200 ms.
    `first`: a snapshot the caller has just taken, judged in place of the first one (none taken when it shows
    them all gone)."""
    wanted = {kind: set(values) for kind, values in gone.items()}
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        present = ids(snapshot() if first is None else first)
        first = None
        left = {kind: wanted[kind] & present.get(kind, set()) for kind in wanted}
        if not any(left.values()) or time.monotonic() >= deadline:
            return left
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.2)
