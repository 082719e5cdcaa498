"""Shards merged into one report: CI runs a certification as one job per target x profile, each leaving its own
results stream; the merged report has every shard's rows and names every shard in `run.shards` with its state.
A shard that is missing, unreadable or incomplete (no footer: its job died) keeps the merged verdict at
"incomplete" — never a pass made of the shards that happened to arrive."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bpfcert.errors import StreamError
from bpfcert.results import KINDS, Report, Result

# The merged kind: the broadest any shard has (a runtime run includes the package suite, not the reverse).
KIND_ORDER = ("runtime", "isa", "kernel", "package")


def _identity(r: Result) -> str:
    """A row without its timing: the same fact found by two shards (the package suite runs in each) is one row."""
    return json.dumps({k: v for k, v in r.to_json().items() if k != "duration"}, sort_keys=True)


def merge(paths: Sequence[str | Path]) -> Report:
    """The report of the shards' results streams at `paths`, in that order."""
    shards: list[dict[str, Any]] = []
    reports: list[Report] = []
    for path in map(Path, paths):
        if not path.exists():
            shards.append({"stream": str(path), "state": "missing", "reason": "no results stream (the shard did "
                                                                               "not run or its upload was lost)"})
            continue
        try:
            report = Report.from_stream(path)
        except StreamError as exc:
            shards.append({"stream": str(path), "state": "unreadable", "reason": str(exc)})
            continue
        state = "complete" if report.complete else "incomplete"
        shard = {"stream": str(path), "state": state, "subject": report.source, "results": len(report.results)}
        if not report.complete:
            shard["reason"] = "the results stream has no footer (the shard's run died)"
        shards.append(shard | {"targets": sorted(report.run.get("targets", {}))})
        reports.append(report)
    seen: set[str] = set()
    results: list[Result] = []
    for report in reports:
        mine = [r for r in report.results if _identity(r) not in seen]
        seen |= {_identity(r) for r in mine}
        results += mine
    return Report(
        " + ".join(dict.fromkeys(r.source for r in reports)) or "no shard",
        results,
        list(dict.fromkeys(p for r in reports for p in r.profiles)),
        kind=next((k for k in KIND_ORDER if any(r.kind == k for r in reports)), KINDS[0]),
        run=_run(reports, shards),
        complete=all(s["state"] == "complete" for s in shards),
    )


def _run(reports: list[Report], shards: list[dict[str, Any]]) -> dict[str, Any]:
    """The merged run's metadata: the first shard's header, every shard's targets and runners, the span of time."""
    run: dict[str, Any] = dict(reports[0].run) if reports else {}
    run["targets"] = {name: info for r in reports for name, info in r.run.get("targets", {}).items()}
    run["runners"] = [runner for r in reports for runner in r.run.get("runners", [])]
    started = [str(r.run["started"]) for r in reports if r.run.get("started")]
    ended = [str(r.run["ended"]) for r in reports if r.run.get("ended")]
    run["started"] = min(started) if started else None
    run["ended"] = max(ended) if ended and all(s["state"] == "complete" for s in shards) else None
    run["shards"] = shards
    return run
