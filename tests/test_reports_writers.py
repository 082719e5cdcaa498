"""The certification report: per-profile verdicts (bpfcert.report.verdicts), certified mode and its reasons first in
every writer, the product from product.yaml, the report schema 1.1, and the HTML, Markdown and badge writers --
escaping hostile text from packages and runners -- over a results stream of real Results on three targets
(static package checks, the host, a 6.1 VM that panicked at boot). report.html is opened in headless Chromium: it
renders, shows every target, its filters work from the URL fragment, and a screenshot is kept
($BPFCERT_ARTIFACTS/report.png, else in the test's tmp dir)."""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.checks import check_package
from bpfcert.checks.kernel import krn_boot_001, krn_splat_001
from bpfcert.errors import BpfcertError, TargetError
from bpfcert.package import open_package
from bpfcert.product import load_product
from bpfcert.report import verdicts, writers
from bpfcert.report.json_doc import document
from bpfcert.results import Report, Result, Status
from bpfcert.stream import ResultsStream
from bpfcert.targets.host import HostTarget

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
HOSTILE = "<script>alert(1)</script> | *bold* [link](http://e.vil) www.e.vil `code` \x1b[2J\u202e"
PRODUCT = {"vendor": "Acme <b>", "product": "loader", "version": "1.2", "contact": "ebpf@acme.example",
           "profiles": ["package-core", "kernel"]}


def package_rows(path: Path) -> list[Result]:
    """A package's static check results as a certification records them (subject package:NAME@VERSION/...)."""
    with open_package(path) as pkg:
        report = check_package(pkg, ["package-core"])
    name = report.title.replace(" ", "@")
    return [dataclasses.replace(r, subject=f"package:{name}/{r.subject}" if r.subject else f"package:{name}")
            for r in report.results]


def broken_package(tmp_path: Path) -> Path:
    """socket-filter with a wrong artifact sha256: PKG rows FAIL."""
    pkg = Path(shutil.copytree(EXAMPLES / "socket-filter", tmp_path / "broken", ignore=shutil.ignore_patterns("src")))
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    return pkg


def write_run(path: Path, results: list[Result], *, mode: str = "normal", footer: bool = True,
              product: dict[str, Any] | None = None, profiles: tuple[str, ...] = ("package-core", "kernel")) -> Report:
    """A results stream of `results` on targets host and 6.1 (6.1 never opened), read back."""
    stream = ResultsStream(path)
    stream.header(kind="runtime", subject=f"runtime {HOSTILE}", targets=["host", "6.1"], profiles=list(profiles),
                  runtime="reference", product=product, mode=mode)
    stream.note("target", {**HostTarget().info().to_json(), "probes": {"prog_types": host_prog_types()}})
    stream.note("target", {"name": "6.1", "error": f"kernel panic at boot: {HOSTILE}"})
    for r in results:
        stream.result(r)
    if footer:
        stream.footer()
    else:
        stream.close()
    return Report.from_stream(path)


@functools.cache
def host_prog_types() -> dict[str, int]:
    """The host's program types by probe outcome: a probe summary."""
    from bpfcert.targets import bpf
    from bpfcert.targets.probes import Prober

    prober = Prober()
    return dict(Counter(prober.probe_prog_type(name).status for name in bpf.PROG_TYPES[1:]))


def kernel_rows() -> list[Result]:
    """KRN rows judged for real: the host boots and prints no splat; 6.1 failed to open (a panic, its console)."""
    host = HostTarget()
    try:
        rows = [krn_boot_001("host", host), krn_splat_001(host)]
    finally:
        host.close()
    panic = TargetError(f"6.1: guest panicked: {HOSTILE}", kind="panic",
                        console=f"[    0.1] Kernel panic - not syncing: <img src=x onerror=alert(2)>\n{HOSTILE}")
    return [*rows, krn_boot_001("6.1", panic)]


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Result]]:
    tmp = tmp_path_factory.mktemp("rows")
    return {"good": package_rows(EXAMPLES / "socket-filter"), "broken": package_rows(broken_package(tmp)),
            "kernel": kernel_rows()}


@pytest.fixture
def run(tmp_path: Path, rows: dict[str, list[Result]]) -> Report:
    """A complete run: a good and a broken package, the host conformant, 6.1 that did not boot."""
    return write_run(tmp_path / "results.jsonl", rows["good"] + rows["broken"] + rows["kernel"], product=PRODUCT)


def by_profile(report: Report) -> dict[str, verdicts.ProfileVerdict]:
    return {v.profile: v for v in verdicts.profile_verdicts(report)}


# --- verdicts --------------------------------------------------------------------------------------------------


def test_verdicts_of_a_real_run(run: Report) -> None:
    judged = by_profile(run)
    core, kernel = judged["package-core"], judged["kernel"]
    assert core.verdict == verdicts.PARTIAL and 0 < core.met < core.must  # the broken package's hash fails
    assert core.statistics["fail"] > 0 and sum(core.statistics.values()) == sum(
        1 for r in run.results if spec.requirement(r.id).profile == "package-core")
    assert core.targets == {"static": verdicts.PARTIAL}
    assert (kernel.verdict, kernel.met, kernel.must) == (verdicts.PARTIAL, 1, 2)  # splat-free, 6.1 did not boot
    assert kernel.targets == {"host": verdicts.CERTIFIED, "6.1": verdicts.NOT_CONFORMANT}
    assert verdicts.reasons(run) == []  # not certified mode


def test_all_met_is_certified_and_skips_are_not_applicable(tmp_path: Path, rows: dict[str, list[Result]]) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["good"] + rows["kernel"][:2])
    assert any(r.status is Status.SKIP for r in report.results)
    assert {v.verdict for v in verdicts.profile_verdicts(report)} == {verdicts.CERTIFIED}


def test_nothing_met_is_not_conformant(tmp_path: Path, rows: dict[str, list[Result]]) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["kernel"][2:], profiles=("kernel",))  # 6.1's boot failure only
    (kernel,) = verdicts.profile_verdicts(report)
    assert (kernel.verdict, kernel.met) == (verdicts.NOT_CONFORMANT, 0)  # KRN-SPLAT-001 has no row: not met


def test_a_run_that_did_not_end_is_never_certified(tmp_path: Path, rows: dict[str, list[Result]]) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["good"] + rows["kernel"][:2], footer=False)
    assert {v.verdict for v in verdicts.profile_verdicts(report)} == {verdicts.PARTIAL}


# --- certified mode --------------------------------------------------------------------------------------------


def test_certified_mode_allows_no_skip_and_lists_the_reasons_first_in_every_writer(
    tmp_path: Path, rows: dict[str, list[Result]]
) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["good"] + rows["kernel"], mode="certified")
    assert report.certified_mode
    judged = by_profile(report)
    assert judged["package-core"].verdict == verdicts.NOT_CERTIFIED  # only skips: in normal mode Certified
    assert judged["kernel"].targets == {"host": verdicts.CERTIFIED, "6.1": verdicts.NOT_CERTIFIED}
    reasons = verdicts.reasons(report)
    skipped = [r for r in report.results if r.status is Status.SKIP]
    assert len(reasons) == len(skipped) + 1 and all(r.id in " ".join(reasons) for r in skipped)
    assert reasons[-1].startswith("KRN-BOOT-001 (kernel) fail on 6.1: ")
    every = writers()
    text = every["text"].render([report]).splitlines()
    assert text[1].startswith("  NOT CERTIFIED") and text[2].strip().startswith(reasons[0][:30])
    md = every["markdown"].render([report]).splitlines()
    assert md[2].startswith("**Not certified**") and all(line.startswith("- ") for line in md[4:4 + len(reasons)])
    page = every["html"].render([report])
    assert page.index('id="reasons"') < page.index("<h2>Run</h2>") and page.count("<li>") == len(reasons)
    doc = json.loads(every["json"].render([report]))
    assert list(doc).index("reasons") < list(doc).index("results") and doc["reasons"] == reasons
    assert doc["mode"] == "certified" and doc["verdicts"]["package-core"]["verdict"] == "Not certified"
    assert json.loads(every["badge"].render([report]))["message"] == "not certified"


def test_certified_mode_certifies_a_run_where_everything_passed(tmp_path: Path, rows: dict[str, list[Result]]) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["kernel"][:2], mode="certified", profiles=("kernel",))
    assert [v.verdict for v in verdicts.profile_verdicts(report)] == [verdicts.CERTIFIED]
    assert verdicts.reasons(report) == []
    unended = write_run(tmp_path / "u.jsonl", rows["kernel"][:2], mode="certified", profiles=("kernel",), footer=False)
    assert verdicts.reasons(unended) == [verdicts.INCOMPLETE]


def test_certified_mode_names_a_requirement_nothing_judged(tmp_path: Path, rows: dict[str, list[Result]]) -> None:
    report = write_run(tmp_path / "s.jsonl", rows["kernel"][:1], mode="certified", profiles=("kernel",))
    assert verdicts.reasons(report) == ["KRN-SPLAT-001 (kernel): no row, nothing judged it"]
    assert verdicts.profile_verdicts(report)[0].verdict == verdicts.NOT_CERTIFIED


# --- the report document ---------------------------------------------------------------------------------------


def test_report_document_carries_run_product_targets_and_verdicts(run: Report) -> None:
    doc = document(run)
    jsonschema.validate(doc, spec.schema("report"))
    assert doc["product"] == PRODUCT and "product" not in doc["run"] and doc["mode"] == "normal"
    run_meta = doc["run"]
    assert {"bpfcert", "specVersion", "started", "ended", "host", "accelerator"} <= set(run_meta)
    assert run_meta["accelerator"] == "none"  # the host; 6.1 never opened
    assert run_meta["targets"]["host"]["probes"]["prog_types"]["available"] > 0
    assert "probes: prog_types" in writers()["html"].render([run])
    assert run_meta["targets"]["host"]["release"] and run_meta["targets"]["6.1"]["error"].startswith("kernel panic")
    assert doc["verdicts"]["kernel"] == by_profile(run)["kernel"].to_json()
    assert spec.schema("report")["$id"].endswith("/1.1")


def test_schema_rejects_a_bad_verdict_and_checks_the_certificate(run: Report) -> None:
    schema = spec.schema("report")
    doc = document(run)
    doc["certificate"] = {"specVersion": "1.0", "issued": "2026-01-01", "expires": "2027-01-01",
                          "certifiedMode": False}
    jsonschema.validate(doc, schema)
    for edit in (lambda d: d["certificate"].pop("expires"), lambda d: d["verdicts"]["kernel"].update(verdict="Gold"),
                 lambda d: d["product"].pop("contact"), lambda d: d["run"]["targets"]["host"].update(deb_sha256="x")):
        bad = copy.deepcopy(doc)
        edit(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


# --- product.yaml ------------------------------------------------------------------------------------------------


def test_product_yaml_loads(tmp_path: Path) -> None:
    path = tmp_path / "product.yaml"
    path.write_text("vendor: Acme\nproduct: loader\nversion: '1.2'\ncontact: ebpf@acme.example\n"
                    "profiles: [runtime-core, kernel]\n")
    assert load_product(path) == {"vendor": "Acme", "product": "loader", "version": "1.2",
                                  "contact": "ebpf@acme.example", "profiles": ["runtime-core", "kernel"]}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("vendor: Acme\nproduct: p\nversion: 1\ncontact: c\nprofiles: [kernel]\n", "$['version']: 1 is not of type"),
        ("vendor: Acme\nproduct: p\nversion: '1'\nprofiles: [kernel]\n", '"contact" is a required property'),
        ("vendor: A\nproduct: p\nversion: '1'\ncontact: c\nprofiles: [gold]\n", "unknown profile(s) gold"),
        ("vendor: A\nproduct: p\nversion: '1'\ncontact: c\nprofiles: [kernel]\nextra: 1\n", "'extra' was unexpected"),
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "YAML aliases are not allowed"),
        ("vendor: [unclosed\n", "not YAML (line 2)"),
        ("vendor: A\nvendor: B\nproduct: p\nversion: '1'\ncontact: c\nprofiles: [kernel]\n", "duplicate key 'vendor'"),
        ("- a list\n", "is not of type \"object\""),
        ("x" * 70_000, "larger than 65536 bytes"),
    ],
)
def test_bad_product_yaml_is_one_line_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "product.yaml"
    path.write_text(text)
    with pytest.raises(BpfcertError) as info:
        load_product(path)
    assert says in str(info.value) and "\n" not in str(info.value) and str(path) in str(info.value)


# --- writers: escaping and formats -------------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes, and the text of its <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1][0] == "script" and self.lasttag == "script":
            self.scripts.append(data)


def test_html_is_self_contained_and_escapes_hostile_text(run: Report) -> None:
    page = writers()["html"].render([run])
    parsed = Elements()
    parsed.feed(page)
    tags = [t for t, _ in parsed.tags]
    assert tags.count("script") == 1 and "img" not in tags and "a" not in tags and "link" not in tags
    assert not [a for _, attrs in parsed.tags for k, a in attrs.items() if k in ("src", "href") or k.startswith("on")]
    (csp,) = [a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    digest = hashlib.sha256(parsed.scripts[0].encode()).digest()
    assert f"'sha256-{base64.b64encode(digest).decode()}'" in (csp or "") and "default-src 'none'" in (csp or "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "\x1b" not in page and "\u202e" not in page
    assert "\\x1b[2J" in page and "&lt;img src=x onerror=alert(2)&gt;" in page  # the console tail, as evidence
    headers = [a["data-col"] for t, a in parsed.tags if t == "th" and "data-col" in a]
    assert headers == ["host", "6.1", "static"]
    ids = [a["data-id"] for t, a in parsed.tags if t == "tr" and "data-id" in a]
    assert ids == list(dict.fromkeys(i for i in spec.catalogue() if i in {r.id for r in run.results}))


def test_markdown_renders_hostile_text_as_plain_text(run: Report) -> None:
    from markdown_it import MarkdownIt

    text = writers()["markdown"].render([run])
    html = MarkdownIt("gfm-like").render(text)
    assert "<script" not in html and "<a " not in html and "<em>" not in html and "<code>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | *bold* [link](http://e.vil) www.e.vil `code`" in html
    table = [line for line in text.splitlines() if line.startswith("| 6")]
    assert len(re.findall(r"(?<!\\)\|", table[0])) == 6  # the target row: 5 cells, escaped pipes inside
    assert "| kernel | Partially conformant | 1 of 2 |" in text


def test_badge_is_a_shields_endpoint(run: Report, rows: dict[str, list[Result]], tmp_path: Path) -> None:
    badge = json.loads(writers()["badge"].render([run]))
    assert badge == {"schemaVersion": 1, "label": "bpfcert", "message": "partially conformant", "color": "yellow"}
    good = write_run(tmp_path / "g.jsonl", rows["good"] + rows["kernel"][:2])
    assert json.loads(writers()["badge"].render([good]))["color"] == "brightgreen"
    none = write_run(tmp_path / "n.jsonl", rows["kernel"][2:], profiles=("kernel",))
    assert json.loads(writers()["badge"].render([none]))["message"] == "not conformant"
    assert json.loads(writers()["badge"].render([good, none]))["message"] == "1/2 certified"


# --- report.html in headless Chromium ----------------------------------------------------------------------------

CHROMIUM = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(page: Path, fragment: str = "", *args: str) -> Elements:
    """The DOM of `page` once Chromium loaded it (its script run) at URL fragment `fragment`."""
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed (./run installs it)")
    with tempfile.TemporaryDirectory(dir=page.parent) as profile:
        proc = subprocess.run([exe, *CHROMIUM, f"--user-data-dir={profile}", *args, f"{page.as_uri()}{fragment}"],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = Elements()
    dom.feed(proc.stdout)
    return dom


def shown(dom: Elements, tag: str, key: str) -> list[str]:
    """The `key` attribute of every `tag` element that has it and is not hidden."""
    return [str(a[key]) for t, a in dom.tags if t == tag and key in a and "hidden" not in a]


def test_report_html_in_chromium_shows_every_target_and_its_filters_work(run: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(writers()["html"].render([run]), encoding="utf-8")
    ids = list(dict.fromkeys(i for i in spec.catalogue() if i in {r.id for r in run.results}))

    dom = chromium(page, "", "--dump-dom")
    assert next(a for t, a in dom.tags if t == "form").get("hidden", "no") == "no"  # the script ran under the CSP
    assert shown(dom, "th", "data-col") == ["host", "6.1", "static"]
    assert shown(dom, "tr", "data-id") == ids

    dom = chromium(page, "#status=fail&target=6.1", "--dump-dom")
    assert shown(dom, "th", "data-col") == ["6.1"]
    assert shown(dom, "tr", "data-id") == ["KRN-BOOT-001"]
    assert shown(dom, "details", "data-target") == ["6.1"]

    dom = chromium(page, "#profile=kernel", "--dump-dom")
    assert shown(dom, "tr", "data-id") == [i for i in ids if spec.requirement(i).profile == "kernel"] != []
    assert shown(dom, "tr", "data-profile") == ["kernel"]  # the profile verdicts table

    dom = chromium(page, "#status=skip", "--dump-dom")
    skipped = {r.id for r in run.results if r.status is Status.SKIP}
    assert skipped and shown(dom, "tr", "data-id") == [i for i in ids if i in skipped]
    assert set(shown(dom, "details", "data-status")) == {"skip"}

    artifacts = Path(os.environ.get("BPFCERT_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "report.png"
    chromium(page, "#status=fail", f"--screenshot={shot}", "--window-size=1280,1800", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_a_product_file_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "product.yaml"
    os.mkfifo(fifo)
    with pytest.raises(BpfcertError, match="not a regular file"):
        load_product(fifo)
