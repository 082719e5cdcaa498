"""`bpfcert site reports/ -o DIR`: one page with every submission's verdict per profile and target, links to the
submission's files copied beside it, every text from a submission escaped; an invalid submission is shown with
its problems and makes the exit code 1."""

from __future__ import annotations

import html.parser
import json
import re
from pathlib import Path

import pytest

from bpfcert.cli import main
from bpfcert.results import Result, Status
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


def test_site_of_the_tree_links_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, page = build(capsys, REGISTRY, tmp_path)
    assert code == 0
    assert "1.0/bpfcert-reference/report.json" in page.links and "1.0/bpfcert-reference/README.md" in page.links
    for link in page.links:
        assert (tmp_path / link).is_file()
    assert any(re.fullmatch(r"conformant \((\d+)/\1\)", c) for c in page.cells)
    # the partial reports (third-party loaders, DPDK) are truthful: their failures show
    assert any(re.fullmatch(r"nonconformant \(\d+/\d+\)", c) for c in page.cells)
    assert sum(c.startswith("valid, by ") for c in page.cells) == len(list((REGISTRY / "1.0").iterdir()))


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
    # acme's rows: runtime-core nonconformant on 6.1 (the failure), conformant on host; package-core static
    header = ["static", "host", "6.1"]
    assert [t for t in header if f"<th>{t}</th>" in text] == header
    assert text.index("<th>static</th>") < text.index("<th>host</th>") < text.index("<th>6.1</th>")
    cells = page.cells
    assert "nonconformant (0/1)" in cells and "conformant (1/1)" in cells


def test_a_profile_whose_rows_all_skipped_is_not_shown_as_conformant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # an ISA engine's rows of groups it does not claim are all skips: nothing was checked, nothing is conformant
    pem, public = key_pair()
    registry = tmp_path / "reports"
    registry.mkdir()
    (registry / "trusted-keys").write_text(f"{public} signer\n")
    rows = [Result.of("ISA-ATOM-001", Status.SKIP, "outside the engine's claims", subject=f"case-{i}", target="host")
            for i in range(3)]
    submit(registry, run_doc(*passing_rows(), *rows), pem)
    code, page = build(capsys, registry, tmp_path / "site")
    assert code == 0 and "skipped (3)" in page.cells and "conformant (3/3)" not in page.cells


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
