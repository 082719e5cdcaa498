"""Markdown for CI step summaries (GitHub's $GITHUB_STEP_SUMMARY): in certified mode the reasons for any "Not
certified" first, then each profile's verdict, the targets and the rows that did not pass. Text from packages and
runners goes through `md`: made printable (one line), every ASCII punctuation character backslash-escaped, so it
cannot open a table cell, a link, an autolink, HTML or emphasis."""

from __future__ import annotations

from collections.abc import Sequence

from bpfcert.report import per_arch, printable, summary, verdicts, writer
from bpfcert.results import Report, Status

ROWS_SHOWN = 50  # rows that did not pass, listed per report (report.html has them all)
PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # ASCII's, as CommonMark escapes them


def md(text: object) -> str:
    """`text` as literal Markdown text on one line."""
    return "".join(f"\\{c}" if c in PUNCTUATION else c for c in printable(str(text)))


def report_markdown(report: Report) -> str:
    judged = verdicts.profile_verdicts(report)
    headline = verdicts.worst(judged) or report.verdict
    lines = [f"## bpfcert: {md(report.title)}: {md(headline)}", ""]
    why = verdicts.reasons(report)
    if why:
        lines += [f"**Not certified**, {len(why)} reason{'s' * (len(why) > 1)}:", ""]
        lines += [f"- {md(reason)}" for reason in why[:ROWS_SHOWN]]
        lines += [f"- … and {len(why) - ROWS_SHOWN} more (report.html)"] if len(why) > ROWS_SHOWN else []
        lines.append("")
    if not report.complete:
        lines += ["**Incomplete**: the run stopped before its end (its results stream has no footer).", ""]
    s = summary(report)
    lines += [f"Overall: {report.verdict} ({s['pass']} passed, {s['fail']} failed, {s['skip']} skipped, "
              f"{s['error']} errors, {s['not-run']} not run)", ""]
    if judged:
        lines += ["| profile | verdict | MUST met | " + " | ".join(x.value for x in Status) + " |",
                  "|---|---|---|" + "---|" * len(Status)]
        lines += [f"| {md(v.profile)} | {v.verdict} | {v.met} of {v.must} | "
                  + " | ".join(str(v.statistics[x.value]) for x in Status) + " |" for v in judged]
        lines.append("")
    arches = per_arch(report)
    if arches:
        lines += ["| arch | " + " | ".join(x.value for x in Status) + " |", "|---|" + "---|" * len(Status)]
        lines += [f"| {md(a)} | " + " | ".join(str(c[x.value]) for x in Status) + " |" for a, c in arches.items()]
        lines.append("")
    infos = report.run.get("targets", {})
    if infos:
        lines += ["| target | kernel | Debian version | arch | accelerator |", "|---|---|---|---|---|"]
        for name in report.targets:
            i = infos.get(name, {})
            about = [md(i.get(k) or "") for k in ("release", "version", "arch", "accel")]
            if i.get("error"):
                about = [f"did not open: {md(i['error'])}", "", "", ""]
            lines.append(f"| {md(name)} | " + " | ".join(about) + " |")
        lines.append("")
    failed = [r for r in report.results if r.status not in (Status.PASS, Status.SKIP)]
    if failed:
        lines += [f"### Rows that did not pass ({len(failed)})", ""]
        for r in failed[:ROWS_SHOWN]:
            where = f" on {md(r.target)}" + (f", {md(r.subject)}" if r.subject else "")
            lines.append(f"- **{r.status}** {md(r.id)} {r.level}{where}: {md(r.message)}")
        lines += [f"- … and {len(failed) - ROWS_SHOWN} more (report.html)"] if len(failed) > ROWS_SHOWN else []
        lines.append("")
    return "\n".join(lines)


@writer("markdown", ".md")
def render(reports: Sequence[Report]) -> str:
    return "\n".join(report_markdown(r) for r in reports)
