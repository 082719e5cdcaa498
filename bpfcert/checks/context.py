"""What a check receives: the Context (the opened package, its manifest and its artifacts, and the requirement
being judged, whose rows it builds) and each Artifact (manifest entry, parsed object, what its code uses, or the
requirement that stopped loading it)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.elf import BpfObject
    from bpfcert.package import Package
    from bpfcert.usage import ObjectUsage


@dataclass
class Artifact:
    """One declared artifact: its manifest entry, resolved path, parsed object and what its code uses.

    `failure` is the (requirement ID, reason) that stopped loading it; such an artifact has no object, so the
    checks after that requirement pass over it and only that requirement reports it.
    """

    entry: dict[str, Any]
    path: Path | None = None
    obj: BpfObject | None = None
    analysis: ObjectUsage | None = None
    failure: tuple[str, str] | None = None

    @property
    def name(self) -> str:
        return str(self.entry.get("path", "?"))

    @property
    def subject(self) -> str:
        return f"artifact:{self.name}"

    @property
    def usage(self) -> ObjectUsage:
        assert self.analysis is not None, "only loaded artifacts have a usage"
        return self.analysis

    def failed_at(self, req_id: str) -> str | None:
        """The reason this artifact failed `req_id` while loading, if it did."""
        return self.failure[1] if self.failure and self.failure[0] == req_id else None


@dataclass
class Context:
    package: Package
    manifest: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)
    requirement: str = ""  # the ID of the requirement being judged (set by the runner: judging)

    def judging(self, req_id: str) -> Context:
        """This context, judging requirement `req_id`: the rows it builds carry that ID."""
        return Context(self.package, self.manifest, self.artifacts, req_id)

    def result(self, status: Status, message: str, *, subject: str = "", **evidence: Any) -> Result:
        """A row of the requirement being judged; keyword arguments are its evidence."""
        return Result.of(self.requirement, status, message, subject=subject, evidence=evidence)

    def passed(self, message: str, *, subject: str = "", **evidence: Any) -> Result:
        return self.result(Status.PASS, message, subject=subject, **evidence)

    def failed(self, message: str, *, subject: str = "", **evidence: Any) -> Result:
        return self.result(Status.FAIL, message, subject=subject, **evidence)

    def not_loaded(self, art: Artifact, *, subject: str = "") -> Result:
        """The NOT_RUN row for an artifact that did not load."""
        failed = f" (failed {art.failure[0]})" if art.failure else ""
        return self.result(Status.NOT_RUN, f"not run: {art.name} did not load{failed}", subject=subject or art.subject)

    def loaded(self) -> Iterator[Artifact]:
        """Artifacts that loaded: object parsed, ELF64 EM_BPF, code decoded."""
        return (a for a in self.artifacts if a.obj is not None)

    def artifact(self, path: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.entry.get("path") == path), None)

    def declared(self, kind: str) -> list[dict[str, Any]]:
        items = self.manifest.get(kind, [])
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def requires(self) -> dict[str, Any]:
        req = self.manifest.get("requires", {})
        return req if isinstance(req, dict) else {}
