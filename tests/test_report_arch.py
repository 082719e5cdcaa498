"""The architecture axis of a report: results counted per architecture (the targets' recorded `arch`) in the text,
Markdown and HTML writers, and the matrix columns (one per SERIES/ARCH target) labelled with their architecture;
a run on one architecture shows no per-arch table."""

from __future__ import annotations

from bpfcert.report import per_arch, writers
from bpfcert.results import Report, Result, Status

TARGETS = {
    "6.1": {"name": "6.1", "arch": "x86_64"},
    "6.1/arm64": {"name": "6.1/arm64", "arch": "aarch64"},
    "6.1/s390x": {"name": "6.1/s390x", "arch": "s390x"},
}


def _report(targets: dict[str, dict[str, str]]) -> Report:
    rows = [Result.of("RT-INS-001", Status.PASS, "installed", target=t, subject="package:xdp-counter") for t in targets]
    rows.append(Result.of("RT-REJ-001", Status.FAIL, "installed it", target="6.1/s390x", subject="package:bad"))
    rows.append(Result.of("PKG-MAN-001", Status.PASS, "parses", target="static", subject="package:xdp-counter"))
    return Report("run", [r for r in rows if r.target in targets or r.target == "static"], ["runtime-core"],
                  kind="runtime", run={"targets": targets})


def test_results_are_counted_per_architecture() -> None:
    arches = per_arch(_report(TARGETS))
    assert list(arches) == ["x86_64", "aarch64", "s390x"]  # the static row has no architecture
    assert arches["s390x"]["pass"] == 1 and arches["s390x"]["fail"] == 1 and arches["aarch64"]["fail"] == 0
    assert per_arch(_report({"6.1": TARGETS["6.1"]})) == {}


def test_every_writer_for_people_shows_the_architectures() -> None:
    report = _report(TARGETS)
    text = writers()["text"].render([report])
    assert "arch s390x: 1 passed, 1 failed" in text and "arch aarch64: 1 passed, 0 failed" in text
    markdown = writers()["markdown"].render([report])
    assert "| arch |" in markdown and "| s390x | 1 | 1 |" in markdown
    html = writers()["html"].render([report])
    assert "Per architecture" in html and '6.1/arm64<br><small class="arch">aarch64</small>' in html
    single = writers()["text"].render([_report({"6.1": TARGETS["6.1"]})])
    assert "arch " not in single
