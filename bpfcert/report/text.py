"""Plain text for people: in certified mode the reasons for any "Not certified" first, then one line per result
(a failure followed by its "fix:" hint), failures first, then each profile's verdict and the verdict. Text from
the package is escaped (report.printable), so that only this writer ends lines."""

from __future__ import annotations

from collections.abc import Sequence

from bpfcert import spec
from bpfcert.report import isa, per_arch, printable, summary, verdicts, writer
from bpfcert.results import Report, Status

ORDER = {s: n for n, s in enumerate((Status.XPASS, Status.ERROR, Status.FAIL, Status.NOT_RUN, Status.XFAIL,
                                        Status.SKIP, Status.PASS))}


def report_text(report: Report, verbose: bool = False) -> str:
    """One report as text; `verbose` shows passes too."""
    lines = [f"{printable(report.source)}  (profiles: {', '.join(report.profiles)})"]
    why = verdicts.reasons(report)
    if why:
        lines.append(f"  NOT CERTIFIED ({len(why)} reason{'s' * (len(why) > 1)}):")
        lines += [f"    {printable(reason)}" for reason in why]
    for name, info in report.run.get("targets", {}).items():  # those opened (or failed to)
        about = info.get("error") or ", ".join(str(info[k]) for k in ("release", "accel") if info.get(k))
        if about:
            lines.append(f"  target {printable(name)}: {printable(str(about))}")
    if not report.complete:
        lines.append("  INCOMPLETE: the run stopped before its end (the results stream has no footer)")
    for shard in report.run.get("shards", []):  # a merged report (bpfcert.report.merge) names each shard
        if shard.get("state") != "complete":
            lines.append(f"  shard {printable(str(shard.get('stream')))}: {shard.get('state')}: "
                         f"{printable(str(shard.get('reason')))}")
    for r in sorted(report.results, key=lambda r: ORDER[r.status]):
        if r.status is Status.PASS and not verbose:
            continue
        tag = "WARN" if r.status is Status.FAIL and r.level != "MUST" else str(r.status).upper()
        about = f"{r.subject} on {r.target}: " if report.run and r.target != "static" else ""
        about = about or (f"{r.subject}: " if report.run and r.subject else "")
        lines.append(f"  {tag:<7} {r.id:<13} {r.level:<6} {printable(about + r.message)}")
        if r.status is Status.FAIL:
            lines.append(f"{'':10}fix: {spec.requirement(r.id).fix}")
        if report.kind == "isa" and r.status in (Status.FAIL, Status.ERROR):
            lines += isa.failure_lines(r)
    if report.kind == "isa":
        lines += isa.table_lines(report)
    for arch, counts in per_arch(report).items():
        lines.append(f"arch {printable(arch)}: {counts['pass']} passed, {counts['fail']} failed, "
                     f"{counts['skip']} skipped, {counts['error']} errors, {counts['not-run']} not run")
    for v in verdicts.profile_verdicts(report):
        lines.append(f"profile {v.profile}: {v.verdict} ({v.met} of {v.must} MUST requirements met)")
    s = summary(report)
    lines.append(
        f"verdict: {report.verdict} ({s['pass']} passed, {s['must_failed']} failed, "
        f"{s['should_failed']} warnings, {s['skip']} skipped, {s['not-run']} not run, {s['error']} errors"
        + "".join(f", {s[k]} {k}" for k in ("xfail", "xpass") if s[k])
        + ")"
    )
    return "\n".join(lines) + "\n"


@writer("text", ".txt")
def render(reports: Sequence[Report]) -> str:
    return "".join(report_text(r) for r in reports)
