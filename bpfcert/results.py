"""The one results model: requirement ID x target x status, with a message and evidence."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # the requirement does not apply (e.g. no signature present)
    ERROR = "error"  # the check could not be carried out (e.g. a target died)
    NOT_RUN = "not-run"  # the check was not reached: what it needs failed first (e.g. the manifest's schema)


@dataclass(frozen=True)
class Result:
    """The outcome of one requirement on one subject (package artifact, program, map...) on one target."""

    id: str
    status: Status
    message: str
    level: str = "MUST"
    target: str = "static"
    evidence: dict[str, Any] = field(default_factory=dict)
    subject: str = ""  # what the row is about, "kind:name" (artifact:x.o, map:counters...); "" is the package

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "level": self.level,
            "status": str(self.status),
            "target": self.target,
            "message": self.message,
        }
        if self.subject:
            out["subject"] = self.subject
        if self.evidence:
            out["evidence"] = self.evidence
        return out


def verdict(results: Iterable[Result]) -> str:
    """ "conformant" unless a MUST requirement failed, errored or was not run; SHOULD failures are warnings."""
    for r in results:
        if r.level == "MUST" and r.status in (Status.FAIL, Status.ERROR, Status.NOT_RUN):
            return "nonconformant"
    return "conformant"
