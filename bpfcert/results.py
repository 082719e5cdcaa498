"""The one results model: a Result (requirement ID x subject x target x status, with a message and evidence)
and the Report that gathers the results of one run, read back from a results stream (bpfcert.stream writes it).

A results stream is JSON lines: a `header` (run metadata), then `result` lines as results are decided, `target` and
`runner` lines as those become known (a VM's kernel once it booted, a runner's `start` reply), and a `footer` (end
time, number of results). A stream without its footer is a run that died: it reads back as incomplete."""

from __future__ import annotations

import contextlib
import enum
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfcert import spec
from bpfcert.errors import StreamError


class Status(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # the requirement does not apply (e.g. no signature present)
    ERROR = "error"  # the check could not be carried out (e.g. a target died)
    NOT_RUN = "not-run"  # the check was not reached: what it needs failed first (e.g. the manifest's schema)
    XFAIL = "xfail"  # a failure or error the expected-failures file lists (bpfcert.report.expected): not counted
    XPASS = "xpass"  # a pass the expected-failures file says should fail: the file is stale, and the run fails


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
    duration: float | None = None  # seconds the test that decided it had run by then (streamed results)

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
        if self.duration is not None:
            out["duration"] = self.duration
        return out

    @classmethod
    def from_json(cls, data: Any) -> Result:
        """The Result `to_json` wrote; ValueError naming what is wrong with anything else."""
        if not isinstance(data, dict):
            raise ValueError("a result must be an object")
        bad = [k for k in ("id", "level", "status", "target", "message") if not isinstance(data.get(k), str)]
        if bad:
            raise ValueError(f"result field(s) {', '.join(bad)} missing or not strings")
        text: dict[str, str] = {k: data[k] for k in ("id", "level", "status", "target", "message")}
        if not REQ_ID.fullmatch(text["id"]) or text["level"] not in LEVELS:
            raise ValueError(f"bad requirement ID or level: {text['id']!r} {text['level']!r}")
        subject, evidence, duration = data.get("subject", ""), data.get("evidence", {}), data.get("duration")
        if not isinstance(subject, str) or not isinstance(evidence, dict):
            raise ValueError("subject must be a string and evidence an object")
        if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
            raise ValueError("duration must be a number")
        try:
            status = Status(text["status"])
        except ValueError:
            raise ValueError(f"unknown status {text['status']!r}") from None
        return cls(
            text["id"], status, text["message"], level=text["level"], target=text["target"],
            evidence=evidence, subject=subject, duration=duration,
        )


REQ_ID = re.compile(r"[A-Z]+(-[A-Z]+)*-[0-9]{3}")  # as spec/report.schema.json has it
LEVELS = ("MUST", "SHOULD", "MAY")


def package_name(manifest: Any, source: str, sep: str = " ") -> str:
    """A package's name: NAME`sep`VERSION from its manifest (NAME alone without a version), else the base name of
    its `source`, a name stable across machines. Report.title's, and (with "@") bpfcert.package.package_subject's."""
    m = manifest if isinstance(manifest, dict) else {}
    name, version = m.get("name"), m.get("version")
    if isinstance(name, str) and name:
        return f"{name}{sep}{version}" if isinstance(version, str) and version else name
    return Path(source).name or source


def verdict(results: Iterable[Result]) -> str:
    """ "conformant" unless a MUST requirement failed, errored or was not run, or anything passed that was expected
    to fail (XPASS, at any level); SHOULD failures are warnings, expected failures (XFAIL) are neither."""
    for r in results:
        if r.status is Status.XPASS or (r.level == "MUST" and r.status in (Status.FAIL, Status.ERROR, Status.NOT_RUN)):
            return "nonconformant"
    return "conformant"


KINDS = ("package", "kernel", "runtime", "isa", "hub")  # what a report judges (spec/report.schema.json `kind`)


@dataclass
class Report:
    """What one run found about what it checked: `bpfcert check` makes one per package (its manifest, the
    profiles checked, the results, the inventory of its objects); a certification run is read back from its
    results stream (`from_stream`), with the run's metadata in `run`."""

    source: str  # what was checked, as given: a package directory or archive, or the runtime certified
    results: list[Result]
    profiles: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    inventory: dict[str, Any] = field(default_factory=dict)
    kind: str = "package"  # one of KINDS
    run: dict[str, Any] = field(default_factory=dict)  # a stream's header, its target and runner lines, its footer
    complete: bool = True  # False: the stream that made it has no footer (the run died)

    @property
    def verdict(self) -> str:
        """conformant / nonconformant, or "incomplete" for a run that died (never a pass)."""
        return verdict(self.results) if self.complete else "incomplete"

    @classmethod
    def from_stream(cls, path: str | Path) -> Report:
        """The report of the results stream at `path`; StreamError naming the line for a malformed stream."""
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StreamError(f"cannot read results stream {path}: {getattr(exc, 'strerror', None) or exc}") from None
        lines = text.split("\n")
        torn = lines.pop()  # "" after the last newline; else a line the run died while writing
        reader = _StreamReader(path)
        for number, line in enumerate(lines, 1):
            reader.line(number, line)
        if torn:
            with contextlib.suppress(StreamError):  # a torn last line: the run died writing it; the rest stands
                reader.line(len(lines) + 1, torn)
        return reader.report()

    @property
    def product(self) -> dict[str, Any] | None:
        """The product certified, as its vendor's product.yaml describes it (in the stream's header), if given."""
        product = self.run.get("product")
        return product if isinstance(product, dict) else None

    @property
    def certified_mode(self) -> bool:
        """A run of `bpfcert certify --certified`: the profiles certified may not skip anything."""
        return self.run.get("mode") == "certified"

    @property
    def targets(self) -> list[str]:
        """Every target of the run and its rows: those selected or opened, in that order, then any other a row
        names ("static" for the package suite)."""
        names = dict.fromkeys(self.run.get("targets", {}))
        names.update(dict.fromkeys(r.target for r in self.results))
        return list(names)

    @property
    def accelerator(self) -> str:
        """How the run's VM targets ran: "kvm", "tcg" (both: "kvm, tcg"), or "none" (no VM)."""
        infos = self.run.get("targets", {}).values()
        return ", ".join(sorted({str(i["accel"]) for i in infos if i.get("accel") not in (None, "none")})) or "none"

    @property
    def title(self) -> str:
        """The package's name and version, or the base name of its source: a name stable across machines."""
        return package_name(self.manifest, self.source)


class _StreamReader:
    """Folds the lines of one results stream into a Report."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: dict[str, Any] | None = None
        self.footer: dict[str, Any] | None = None
        self.results: list[Result] = []
        self.targets: dict[str, dict[str, Any]] = {}
        self.runners: list[dict[str, Any]] = []

    def fail(self, number: int, reason: str) -> StreamError:
        return StreamError(f"results stream {self.path}, line {number}: {reason}")

    def line(self, number: int, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            raise self.fail(number, "not JSON") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if self.header is None and kind != "header":
            raise self.fail(number, "the stream does not start with its header")
        if self.footer is not None:
            raise self.fail(number, "a line after the footer")
        if kind == "header":
            if self.header is not None:
                raise self.fail(number, "a second header")
            if data.get("stream") != STREAM_VERSION:
                raise self.fail(number, f"stream version {data.get('stream')!r}, expected {STREAM_VERSION}")
            self.header = data
        elif kind == "result":
            try:
                self.results.append(Result.from_json(data))
            except ValueError as exc:
                raise self.fail(number, str(exc)) from None
        elif kind == "target" and isinstance(data.get("name"), str):
            self.targets[data["name"]] = {k: v for k, v in data.items() if k != "type"}
        elif kind == "runner":
            self.runners.append({k: v for k, v in data.items() if k != "type"})
        elif kind == "footer":
            if data.get("results") != len(self.results):
                raise self.fail(number, f"the footer counts {data.get('results')!r} results, the stream has "
                                        f"{len(self.results)}")
            self.footer = data
        else:
            raise self.fail(number, f"unknown line type {kind!r}" if kind else "a line without its type")

    def report(self) -> Report:
        if self.header is None:
            raise StreamError(f"results stream {self.path} is empty (not even a header)")
        head = self.header
        run: dict[str, Any] = {k: v for k, v in head.items() if k not in ("type", "stream", "kind", "profiles")}
        run["targets"] = {name: self.targets.get(name, {"name": name}) for name in head.get("targets", [])}
        run["targets"].update(self.targets)
        run["runners"] = self.runners
        if self.footer is not None:
            run["ended"] = self.footer.get("ended")
        kind = str(head.get("kind")) if head.get("kind") in KINDS else "package"
        profiles = [p for p in head.get("profiles", []) if isinstance(p, str)]
        for runner in self.runners:
            claims = runner.get("claims")
            claimed = claims.get("profiles", []) if isinstance(claims, dict) else []
            profiles += [p for p in claimed if isinstance(p, str) and p not in profiles]
        source = str(head["subject"]) if isinstance(head.get("subject"), str) else str(self.path)
        return Report(source, self.results, profiles, kind=kind, run=run, complete=self.footer is not None)


STREAM_VERSION = 1  # the header's "stream": the version of this line format
