"""`bpfcert site reports/ -o DIR`: one page with every submission's verdict per profile and target, links to the
submission's files copied beside it, every text from a submission escaped; an invalid submission is shown with
its problems and makes the exit code 1."""

from __future__ import annotations

import html.parser
import json
from collections import Counter
from pathlib import Path

import pytest

from bpfcert.cli import main
from bpfcert.report import verdicts
from bpfcert.report.json_doc import document
from bpfcert.report.site import report_of, verdict_cells
from bpfcert.results import Report, Result, Status
from tests.signed_reports import key_pair, passing_rows, run_doc, submit

REGISTRY = Path(__file__).resolve().parent.parent / "reports"


class Page(html.parser.HTMLParser):
    """The page's links, table cells and any <script> element."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.cells: list[str] = []
        self.scripts = 0
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        if tag == "a":
            self.links.append(dict(attrs)["href"] or "")
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def build(capsys: pytest.CaptureFixture[str], registry: Path, out: Path) -> tuple[int, Page]:
    code = main(["site", str(registry), "-o", str(out)])
    capsys.readouterr()
    return code, Page((out / "index.html").read_text())


VERDICTS = (verdicts.CERTIFIED, verdicts.PARTIAL, verdicts.NOT_CONFORMANT, verdicts.NOT_CERTIFIED)


def stored_cells(doc: dict[str, object]) -> dict[tuple[str, str | None], str]:
    """(profile, target or None for all) -> the verdict the report document states (json_doc, from verdicts.py)."""
    out: dict[tuple[str, str | None], str] = {}
    for profile, v in doc["verdicts"].items():  # type: ignore[attr-defined]
        out[(profile, None)] = v["verdict"]
        out |= {(profile, t): on_target for t, on_target in v["targets"].items()}
    return out


def test_site_of_the_tree_links_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, page = build(capsys, REGISTRY, tmp_path)
    assert code == 0
    assert "1.0/bpfcert-reference/report.json" in page.links and "1.0/bpfcert-reference/README.md" in page.links
    for link in page.links:
        assert (tmp_path / link).is_file()
    # the partial reports (third-party loaders, DPDK) are truthful: their failures show
    assert {verdicts.CERTIFIED, verdicts.PARTIAL, verdicts.NOT_CONFORMANT, verdicts.NOT_CERTIFIED} <= set(page.cells)
    assert sum(c.startswith("valid, by ") for c in page.cells) == len(list((REGISTRY / "1.0").iterdir()))


def test_every_cell_is_the_reports_own_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """On every committed submission, the site's cells are the verdicts its report states, target by target, and
    the page shows exactly those (no line for a profile the report does not judge)."""
    stated: Counter[str] = Counter()
    for path in sorted(REGISTRY.glob("*/*/report.json")):
        doc = json.loads(path.read_text())
        assert {k: c.text for k, c in verdict_cells(report_of(doc)).items()} == stored_cells(doc), path
        stated.update(stored_cells(doc).values())
    _, page = build(capsys, REGISTRY, tmp_path)
    assert Counter(c for c in page.cells if c in VERDICTS) == stated


def test_certified_mode_and_included_profiles_judge_the_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where a site judging rows by itself would say "conformant": a skip in certified mode is Not certified, and a
    failed runtime-core row is runtime-upgrade's too (it includes runtime-core)."""
    pem, public = key_pair()
    registry = tmp_path / "reports"
    registry.mkdir()
    (registry / "trusted-keys").write_text(f"{public} signer\n")
    run = {"targets": {"host": {"name": "host"}}, "runners": [], "started": "2026-01-01T00:00:00+00:00",
           "mode": "certified"}
    rows = [*passing_rows(), Result.of("RT-UNI-001", Status.SKIP, "not applicable", subject="package:x", target="host")]
    certified = document(Report("runtime example", rows, ["runtime-core"], kind="runtime", run=run))
    submit(registry, certified, pem, vendor="acme", product="strict", certified_mode=True)
    rows = [*passing_rows(), Result.of("RT-UNI-001", Status.FAIL, "leaked", subject="package:x", target="6.1")]
    run["mode"] = "normal"
    upgrade = document(Report("runtime example", rows, ["runtime-upgrade"], kind="runtime", run=run))
    submit(registry, upgrade, pem, vendor="acme", product="upgrade")
    code, page = build(capsys, registry, tmp_path / "site")
    assert code == 0
    strict = verdict_cells(report_of(certified))
    assert strict[("runtime-core", "host")].text == strict[("runtime-core", None)].text == verdicts.NOT_CERTIFIED
    cells = verdict_cells(report_of(upgrade))
    assert (cells[("runtime-upgrade", "6.1")].text, cells[("runtime-upgrade", None)].text) == (
        verdicts.NOT_CONFORMANT, verdicts.PARTIAL)
    assert page.cells[3:7] == ["runtime-core", verdicts.NOT_CERTIFIED, verdicts.NOT_CERTIFIED, "—"]  # host, 6.1
    assert page.cells[10:] == ["runtime-upgrade", verdicts.PARTIAL, verdicts.CERTIFIED, verdicts.NOT_CONFORMANT]


def test_runtimes_by_kernels_by_profiles_and_everything_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem, public = key_pair()
    registry = tmp_path / "reports"
    (registry).mkdir()
    (registry / "trusted-keys").write_text(f"{public} <b>signer</b>\n")
    hostile = '<script>alert(1)</script>"&'
    rows = [*passing_rows(), Result.of("RT-UNI-001", Status.FAIL, hostile, subject="package:x", target="6.1")]
    submit(registry, run_doc(*rows), pem, vendor="acme", product="loader")
    doc = run_doc(*passing_rows())
    submit(registry, doc, pem, vendor=hostile, product="p")
    code, page = build(capsys, registry, tmp_path / "site")
    assert code == 0 and page.scripts == 0
    text = (tmp_path / "site" / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&amp;" in text and "&lt;b&gt;signer&lt;/b&gt;" in text
    # acme's runtime-core: partially conformant, Not conformant on 6.1 (the failure), Certified on host
    header = ["host", "6.1"]
    assert [t for t in header if f"<th>{t}</th>" in text] == header
    assert text.index("<th>host</th>") < text.index("<th>6.1</th>") and "<th>static</th>" not in text
    assert page.cells[3:7] == ["runtime-core", verdicts.PARTIAL, verdicts.CERTIFIED, verdicts.NOT_CONFORMANT]


def test_rows_of_a_profile_the_report_does_not_judge_get_no_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an ISA engine's rows of groups it does not claim are all skips: the report judges no such profile
    pem, public = key_pair()
    registry = tmp_path / "reports"
    registry.mkdir()
    (registry / "trusted-keys").write_text(f"{public} signer\n")
    rows = [Result.of("ISA-ATOM-001", Status.SKIP, "outside the engine's claims", subject=f"case-{i}", target="host")
            for i in range(3)]
    submit(registry, run_doc(*passing_rows(), *rows), pem)
    code, page = build(capsys, registry, tmp_path / "site")
    assert code == 0 and "runtime-core" in page.cells
    assert not any(c.startswith("isa-") for c in page.cells)


def test_an_invalid_submission_is_shown_with_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pem, _ = key_pair()
    registry = tmp_path / "reports"
    path = submit(registry, run_doc(*passing_rows()), pem)
    doc = json.loads((path / "report.json").read_text())
    doc["verdict"] = "nonconformant"
    (path / "report.json").write_text(json.dumps(doc))
    code, page = build(capsys, registry, tmp_path / "site")
    assert code == 1
    assert any("changed after it was signed" in c and "not a trusted key" in c for c in page.cells)


def test_not_a_registry_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", str(tmp_path / "none"), "-o", str(tmp_path / "site")]) == 2
    assert "is not a directory" in capsys.readouterr().err
