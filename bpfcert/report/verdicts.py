"""Per-profile verdicts, the one judgement every writer shows. A profile is judged on the rows of its requirements
(its included profiles' too), over every target, and on each target alone:

- Certified: every MUST requirement met (it has rows, and each passed or was skipped as not applicable), in a run
  that ended;
- Partially conformant: some MUST requirements met, not all;
- Not conformant: none met.

In certified mode (`bpfcert certify --certified`) a profile may not skip anything: any row of its requirements that
did not pass (skip, error, failure, not run; SHOULD rows too), a requirement without rows or a run that did not end
makes it "Not certified". `reasons` says why, one line each; writers list them before anything else."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, NamedTuple

from bpfcert import spec
from bpfcert.results import Report, Result, Status

CERTIFIED = "Certified"
PARTIAL = "Partially conformant"
NOT_CONFORMANT = "Not conformant"
NOT_CERTIFIED = "Not certified"
RANK = {CERTIFIED: 0, PARTIAL: 1, NOT_CONFORMANT: 2, NOT_CERTIFIED: 2}  # worse is higher
MET = (Status.PASS, Status.SKIP)  # a MUST requirement whose rows all have these is met (certified mode: PASS)
INCOMPLETE = "the run did not end: its results stream has no footer"


class ProfileVerdict(NamedTuple):  # not a dataclass: `bpfcert check` defines it at start-up, 0.6 ms cheaper
    profile: str
    verdict: str
    statistics: dict[str, int]  # rows of the profile's requirements, per status
    must: int  # MUST requirements the profile has
    met: int  # of them, those met
    targets: dict[str, str]  # target -> the verdict on its rows alone (targets with rows of the profile)

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "statistics": self.statistics,
            "requirements": {"must": self.must, "met": self.met},
            "targets": self.targets,
        }


def requirements_of(profile: str) -> dict[str, spec.Requirement]:
    """The requirements a profile's verdict covers: its own and its included profiles'."""
    covered = spec.profiles().get(profile, [profile])
    return {i: r for i, r in spec.catalogue().items() if r.profile in covered}


def _judge(reqs: dict[str, spec.Requirement], rows: list[Result], *, strict: bool, ended: bool) -> tuple[str, int]:
    """(verdict, MUST requirements met) of `rows`, the rows of requirements `reqs`."""
    by_id: dict[str, list[Status]] = {}
    for r in rows:
        by_id.setdefault(r.id, []).append(r.status)
    must = [i for i, req in reqs.items() if req.level == "MUST"]
    ok = (Status.PASS,) if strict else MET
    met = sum(1 for i in must if by_id.get(i) and all(s in ok for s in by_id[i]))
    if strict:
        clean = ended and all(i in by_id for i in reqs) and all(r.status is Status.PASS for r in rows)
        return (CERTIFIED if clean else NOT_CERTIFIED), met
    if met == len(must) and ended:
        return CERTIFIED, met
    return (PARTIAL if met else NOT_CONFORMANT), met


def profile_verdict(report: Report, profile: str, engine: str | None = None) -> ProfileVerdict:
    """The verdict of `profile` on the report's rows (of ISA `engine` alone when given: named "PROFILE (ENGINE)")."""
    reqs = requirements_of(profile)
    rows = [r for r in report.results if r.id in reqs and (engine is None or engine_of(r) == engine)]
    strict = report.certified_mode
    verdict, met = _judge(reqs, rows, strict=strict, ended=report.complete)
    counts = Counter(r.status for r in rows)
    per_target = {}
    for target in report.targets:
        on_target = [r for r in rows if r.target == target]
        judged = {i: req for i, req in reqs.items() if any(r.id == i for r in on_target)}
        if on_target:
            per_target[target] = _judge(judged, on_target, strict=strict, ended=report.complete)[0]
    must = sum(1 for r in reqs.values() if r.level == "MUST")
    name = profile if engine is None else f"{profile} ({engine})"
    return ProfileVerdict(name, verdict, {s.value: counts[s] for s in Status}, must, met, per_target)


def engine_of(row: Result) -> str | None:
    """The ISA engine a row is about (its subject engine:E[/case:C]), or None."""
    if not row.subject or not row.subject.startswith("engine:"):
        return None
    return row.subject.removeprefix("engine:").split("/", 1)[0]


def profile_verdicts(report: Report) -> list[ProfileVerdict]:
    """The verdict of each profile of `report`, in its order; an ISA profile judged on several engines gets one
    verdict per engine (each engine is a product of its own: one's failures say nothing of another)."""
    isa = {p for p, kind in spec.profile_applies_to().items() if kind == "isa"}
    out = []
    for profile in report.profiles:
        reqs = requirements_of(profile)
        engines = sorted({e for r in report.results if r.id in reqs and (e := engine_of(r))}) if profile in isa else []
        if len(engines) > 1:
            out += [profile_verdict(report, profile, e) for e in engines]
        else:
            out.append(profile_verdict(report, profile))
    return out


def reasons(report: Report) -> list[str]:
    """Certified mode: why a profile is not certified -- a run that did not end, each requirement without rows, each
    row that did not pass -- one line each, in report order; [] otherwise (and for a certified run)."""
    if not report.certified_mode:
        return []
    reqs: dict[str, spec.Requirement] = {}
    for profile in report.profiles:
        reqs |= requirements_of(profile)
    out = [] if report.complete else [INCOMPLETE]
    judged = {r.id for r in report.results}
    out += [f"{i} ({req.profile}): no row, nothing judged it" for i, req in reqs.items() if i not in judged]
    for r in report.results:
        if r.id in reqs and r.status is not Status.PASS:
            where = f"on {r.target}" + (f", {r.subject}" if r.subject else "")
            out.append(f"{r.id} ({reqs[r.id].profile}) {r.status} {where}: {r.message}")
    return out


def worst(verdicts: Iterable[ProfileVerdict]) -> str | None:
    """The worst of some profile verdicts (None for none)."""
    return max((v.verdict for v in verdicts), key=RANK.__getitem__, default=None)
