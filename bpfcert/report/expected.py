"""Expected failures (spec/expected-failures.schema.json): known failures of a runtime on a target become XFAIL
rows, and a row that passes although an entry says it fails becomes a loud XPASS that fails the run, so the file
never outlives the bug it records. The results stream keeps what the checks decided; only the report changes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.results import Result, Status

MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class ExpectedFailure:
    id: str
    target: str
    reason: str
    subject: str | None = None  # None: every subject

    def matches(self, r: Result) -> bool:
        return r.id == self.id and r.target == self.target and self.subject in (None, r.subject)


def load(path: str | Path) -> list[ExpectedFailure]:
    """The entries of an expected-failures file (YAML or JSON); BpfcertError naming what is wrong."""
    from bpfcert import json_schema
    from bpfcert.pack import read_regular_file
    from bpfcert.product import safe_yaml

    data = safe_yaml(read_regular_file(path, MAX_BYTES), f"expected failures {path}")
    error = next(json_schema.validator(spec.schema("expected-failures"))(data), None)
    if error is not None:
        where = "/".join(str(p) for p in error.instance_path)
        at = f" (at JSON pointer /{where})" if where else ""
        raise BpfcertError(f"expected failures {path}: {error.message[:200]}{at}")
    entries = [ExpectedFailure(e["id"], e["target"], e["reason"], e.get("subject")) for e in data]
    for e in entries:
        spec.requirement(e.id)  # an unknown ID is a typo: refused, never silently matching nothing
    return entries


def apply(results: list[Result], entries: list[ExpectedFailure]) -> list[Result]:
    """`results` with every failed or errored row an entry matches as XFAIL and every passing one as XPASS (the
    message says which entry and why); other rows as they were."""
    out = []
    for r in results:
        entry = next((e for e in entries if e.matches(r)), None)
        if entry is None or r.status not in (Status.FAIL, Status.ERROR, Status.PASS):
            out.append(r)
        elif r.status is Status.PASS:
            message = f"UNEXPECTED PASS: expected to fail ({entry.reason}); remove its expected-failures entry"
            out.append(dataclasses.replace(r, status=Status.XPASS, message=f"{message}; {r.message}"))
        else:
            message = f"expected {r.status}: {entry.reason}; {r.message}"
            out.append(dataclasses.replace(r, status=Status.XFAIL, message=message))
    return out


def unmatched(results: list[Result], entries: list[ExpectedFailure]) -> list[ExpectedFailure]:
    """Entries that match no row at all (the requirement was not run there, or the entry names a wrong target)."""
    return [e for e in entries if not any(e.matches(r) for r in results)]
