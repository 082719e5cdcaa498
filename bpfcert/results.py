"""The one results model: a Result (requirement ID x subject x target x status, with a message and evidence)
and the Report that gathers the results of one run."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfcert import spec


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

    @classmethod
    def of(
        cls,
        req_id: str,
        status: Status,
        message: str,
        *,
        subject: str = "",
        target: str = "static",
        evidence: dict[str, Any] | None = None,
    ) -> Result:
        """A Result of requirement `req_id` at the level the catalogue gives it (BpfcertError for an unknown ID)."""
        level = spec.requirement(req_id).level
        return cls(req_id, status, message, level=level, target=target, evidence=evidence or {}, subject=subject)

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


@dataclass
class Report:
    """What one run found about what it checked: `bpfcert check` makes one per package (its manifest, the
    profiles checked, the results, the inventory of its objects)."""

    source: str  # what was checked, as given: a package directory or archive
    results: list[Result]
    profiles: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    inventory: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return verdict(self.results)

    @property
    def title(self) -> str:
        """The package's name and version, or the base name of its source: a name stable across machines."""
        m = self.manifest if isinstance(self.manifest, dict) else {}
        name, version = m.get("name"), m.get("version")
        if isinstance(name, str) and name:
            return f"{name} {version}" if isinstance(version, str) and version else name
        return Path(self.source).name or self.source
