"""What changed between two runs: rows are matched by requirement ID x subject x target (the n-th row of a key in
one report with the n-th in the other); a row that went from met to not met is a regression, the reverse a fix,
and rows only in one report are new or removed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bpfcert.report import printable
from bpfcert.results import Result, Status

# Rows not met, at any level (a SHOULD failure is a warning, still a regression): the others are met, do not apply
# or are known failures (XFAIL).
UNMET = (Status.FAIL, Status.ERROR, Status.NOT_RUN, Status.XPASS)

Key = tuple[str, str, str, int]  # id, subject, target, n-th row of that key


def _keyed(results: Iterable[Result]) -> dict[Key, Result]:
    seen: dict[tuple[str, str, str], int] = {}
    out = {}
    for r in results:
        k = (r.id, r.subject, r.target)
        seen[k] = seen.get(k, 0) + 1
        out[(*k, seen[k])] = r
    return out


@dataclass
class Change:
    id: str
    subject: str
    target: str
    before: str  # status, or "" when the row is new
    after: str  # status, or "" when the row was removed
    message: str  # the newer row's message (the removed row's for a removal)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v != "" or k in ("before", "after")}


@dataclass
class Diff:
    regressions: list[Change] = field(default_factory=list)
    fixes: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)  # other status changes (pass -> skip, fail -> error...)
    new: list[Change] = field(default_factory=list)
    removed: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [c.to_json() for c in changes] for name, changes in vars(self).items()}

    def text(self) -> str:
        lines = []
        for name, changes in vars(self).items():
            lines.append(f"{name}: {len(changes)}")
            for c in changes:
                about = " ".join(x for x in (c.subject, f"on {c.target}") if x)
                status = f"{c.before or '(none)'} -> {c.after or '(none)'}"
                lines.append(f"  {c.id:<13} {printable(about)}: {status}: {printable(c.message)}")
        return "\n".join(lines) + "\n"


def diff(before: Iterable[Result], after: Iterable[Result]) -> Diff:
    """The changes from the rows `before` to the rows `after`."""
    old, new = _keyed(before), _keyed(after)
    out = Diff()
    for key, b in new.items():
        a = old.get(key)
        if a is None:
            out.new.append(Change(b.id, b.subject, b.target, "", str(b.status), b.message))
        elif a.status is not b.status:
            change = Change(b.id, b.subject, b.target, str(a.status), str(b.status), b.message)
            if b.status in UNMET and a.status not in UNMET:
                out.regressions.append(change)
            elif a.status in UNMET and b.status not in UNMET:
                out.fixes.append(change)
            else:
                out.changed.append(change)
    out.removed = [Change(a.id, a.subject, a.target, str(a.status), "", a.message) for k, a in old.items()
                   if k not in new]
    return out
