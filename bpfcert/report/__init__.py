"""Report writers: the report model (bpfcert.results.Report) in, one format out.

Each format is one module here that registers its render function with @writer and is named in MODULES;
`--format` offers whatever is registered. A writer renders a sequence of reports (a run checks one package or
several) into one text, and says the suffix of the file that holds it.

Text from a package (names, paths, manifest values) reaches every writer; the text and JUnit writers pass it
through `printable`, so that it cannot forge lines or terminal output. JSON escapes it by itself.
"""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bpfcert.results import Report, Status

Render = Callable[[Sequence[Report]], str]


class Writer(NamedTuple):  # not a dataclass: every start-up defines it, and a dataclass costs 0.6 ms more
    name: str  # the --format value
    suffix: str  # of the file it writes: ".json"
    render: Render


# Writer modules, in --format order. Importing one registers its writer.
MODULES = ("text", "json_doc", "junit", "html", "markdown", "badge")
WRITERS: dict[str, Writer] = {}


def writer(name: str, suffix: str) -> Callable[[Render], Render]:
    """Register `render` as the writer of format `name`, whose files end in `suffix`."""

    def register(render: Render) -> Render:
        WRITERS[name] = Writer(name, suffix, render)
        return render

    return register


def writers() -> dict[str, Writer]:
    """Every writer, by format name."""
    for module in MODULES:
        importlib.import_module(f"bpfcert.report.{module}")
    return WRITERS


def printable(text: str) -> str:
    """`text` with every non-printable character (controls, ANSI escapes, line separators, bidi overrides, lone
    surrogates) written as a visible Python-style escape: "\\x1b", "\\n", "\\u202e"."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(report: Report) -> dict[str, int]:
    counts = Counter(str(r.status) for r in report.results)
    out = {s.value: counts.get(s.value, 0) for s in Status}
    out["must_failed"] = sum(1 for r in report.results if r.level == "MUST" and r.status is Status.FAIL)
    out["should_failed"] = sum(1 for r in report.results if r.level != "MUST" and r.status is Status.FAIL)
    return out


def arch_of(report: Report, target: str) -> str | None:
    """The architecture (`uname -m`) target `target` of the run had, None where the report does not say (a static
    row, a target that did not open)."""
    info = report.run.get("targets", {}).get(target)
    arch = info.get("arch") if isinstance(info, dict) else None
    return str(arch) if arch else None


def per_arch(report: Report) -> dict[str, dict[str, int]]:
    """Status counts per architecture (in order of first appearance), of the results on targets whose architecture
    the run recorded; empty when they all ran on one architecture (nothing to tell apart)."""
    out: dict[str, Counter[str]] = {}
    for r in report.results:
        arch = arch_of(report, r.target)
        if arch is not None:
            out.setdefault(arch, Counter())[str(r.status)] += 1
    if len(out) < 2:
        return {}
    return {arch: {s.value: counts.get(s.value, 0) for s in Status} for arch, counts in out.items()}
