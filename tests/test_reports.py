"""Reports that are complete, stable and safe to print: every requirement of every checked profile appears,
evidence says what was expected and found, JUnit names do not change with message text, and names from a
package (control characters, ANSI escapes) cannot forge report lines. Also the licence messages and SPDX."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bpfcert import spec
from bpfcert.checks import check_package
from bpfcert.checks.profiles import selected_profiles
from bpfcert.cli import main
from bpfcert.errors import BpfcertError
from bpfcert.package import open_package
from bpfcert.report import junit
from bpfcert.report.json_doc import document
from bpfcert.report.text import report_text
from bpfcert.results import Report, Result, Status, verdict

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
M = dict[str, Any]
Edit = Callable[[M, Path], None]


@pytest.fixture
def make(tmp_path: Path) -> Callable[..., Path]:
    """make(example, edit=None, dirname=None) -> an edited copy of examples/<example> (sha256s refreshed)."""
    import hashlib

    def build(example: str, edit: Edit | None = None, dirname: str | None = None) -> Path:
        root = tmp_path / (dirname or example)
        shutil.copytree(EXAMPLES / example, root, ignore=shutil.ignore_patterns("src"))
        manifest = json.loads((root / "bpfpkg.json").read_text())
        if edit is not None:
            edit(manifest, root)
        for art in manifest["artifacts"] if isinstance(manifest.get("artifacts"), list) else []:
            path = root / art["path"]
            if path.is_file():
                art["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        (root / "bpfpkg.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
        return root

    return build


def check(path: Path, profiles: list[str] | None = None) -> Report:
    with open_package(path) as pkg:
        return check_package(pkg, profiles)


def rows(report: Report, req_id: str) -> list[Result]:
    return [r for r in report.results if r.id == req_id]


def patch_license(obj: Path, text: bytes) -> None:
    from elftools.elf.elffile import ELFFile

    with obj.open("rb") as f:
        sec = ELFFile(f).get_section_by_name("license")
        offset, size = sec["sh_offset"], sec["sh_size"]
    assert len(text) < size
    raw = bytearray(obj.read_bytes())
    raw[offset : offset + size] = text.ljust(size, b"\0")
    obj.write_bytes(bytes(raw))


def required_ids(profiles: list[str]) -> set[str]:
    return {i for i, r in spec.catalogue().items() if r.profile in profiles}


# --- licences (item 9) ---------------------------------------------------------------------------------------


def test_gpl_only_helper_message_says_what_the_kernel_does(make: Callable[..., Path]) -> None:
    pkg = make("core-tracing", lambda m, root: patch_license(root / m["artifacts"][0]["path"], b"MIT"))
    (row,) = rows(check(pkg), "PKG-LIC-003")
    assert row.status is Status.FAIL
    assert "the kernel treats 'MIT' as not GPL-compatible for GPL-only helpers" in row.message
    assert row.evidence["actual"] == "MIT" and row.evidence["helpers"]


def test_license_disagreement_message_says_what_it_means(make: Callable[..., Path]) -> None:
    pkg = make("socket-filter", lambda m, root: m.update(license="MIT"))
    (row,) = rows(check(pkg), "PKG-LIC-002")
    assert row.status is Status.FAIL
    assert "the kernel treats license section 'Dual BSD/GPL' as GPL-compatible" in row.message
    assert "'MIT' offers the code under no GPL" in row.message
    assert row.evidence["path"] == "$.license"


@pytest.mark.parametrize(
    ("license", "reason"),
    [
        ("Proprietary", "Unknown license key(s): Proprietary"),
        ("GPL-2.0-only WITH MIT", 'cannot be used as an exception in a "WITH symbol" statement'),
        ("BSD-2-Clause OR NotALicence-1.0", "Unknown license key(s): NotALicence-1.0"),
    ],
)
def test_manifest_license_must_be_spdx(make: Callable[..., Path], license: str, reason: str) -> None:
    pkg = make("socket-filter", lambda m, root: m.update(license=license))
    report = check(pkg)
    assert not [r for r in report.results if r.id == "PKG-MAN-002" and r.status is Status.FAIL], "schema allows it"
    spdx = [r for r in rows(report, "PKG-LIC-002") if r.status is Status.FAIL]
    assert spdx and "is not a valid SPDX expression" in spdx[0].message and reason in spdx[0].message
    assert report.verdict == "nonconformant"


@pytest.mark.parametrize(
    "license", ["LicenseRef-Proprietary OR GPL-2.0-only", "GPL-2.0-only WITH Linux-syscall-note", "mit OR GPL-2.0"]
)
def test_valid_spdx_expressions_pass(make: Callable[..., Path], license: str) -> None:
    pkg = make("socket-filter", lambda m, root: m.update(license=license))
    assert {r.status for r in rows(check(pkg), "PKG-LIC-002")} == {Status.PASS}


def test_pack_writes_licenseref_for_a_non_spdx_section(tmp_path: Path) -> None:
    obj = tmp_path / "xdp_counter.bpf.o"
    shutil.copy(EXAMPLES / "xdp-counter-v1" / "xdp_counter.bpf.o", obj)
    patch_license(obj, b"Proprietary")
    out = tmp_path / "pkg"
    assert main(["pack", str(obj), "-o", str(out)]) == 0
    assert json.loads((out / "bpfpkg.json").read_text())["license"] == "LicenseRef-Proprietary"
    assert check(out).verdict == "conformant"


def test_spdx_for_section() -> None:
    from bpfcert.knowledge.licenses import spdx_for_section

    assert spdx_for_section("Dual BSD/GPL") == "BSD-2-Clause OR GPL-2.0-only"
    assert spdx_for_section("Apache-2.0") == "Apache-2.0"
    assert spdx_for_section("Proprietary") == "LicenseRef-Proprietary"
    assert spdx_for_section("Acme Corp. v2") == "LicenseRef-Acme-Corp.-v2"
    assert spdx_for_section("\x01") is None and spdx_for_section(None) is None


# --- complete reports (item 11) ------------------------------------------------------------------------------


def _drop_objects(m: M, root: Path) -> None:
    for art in m["artifacts"]:
        (root / art["path"]).unlink()


@pytest.mark.parametrize(
    ("edit", "status_of_rest"),
    [
        (None, None),
        (lambda m, root: m.update(version="1.0"), Status.NOT_RUN),
        (_drop_objects, None),
    ],
    ids=["good", "schema-failing", "objects-missing"],
)
def test_every_requirement_appears_exactly_once(
    make: Callable[..., Path], edit: Edit | None, status_of_rest: Status | None
) -> None:
    report = check(make("xdp-counter-v1", edit))
    assert report.profiles == ["package-core", "package-service"]
    assert {r.id for r in report.results} == set(required_ids(report.profiles))
    once = Counter((r.id, r.subject) for r in report.results)
    assert [pair for pair, n in once.items() if n > 1] == []  # each requirement once per subject
    if status_of_rest is not None:
        rest = [r for r in report.results if not r.id.startswith("PKG-MAN-")]
        assert {r.status for r in rest} == {status_of_rest}
        assert all("not run: the manifest failed PKG-MAN-002" in r.message for r in rest)
    jsonschema.Draft202012Validator(spec.schema("report")).validate(document(report))


def test_missing_objects_are_not_a_pass(make: Callable[..., Path]) -> None:
    report = check(make("xdp-counter-v1", _drop_objects))
    assert [r.status for r in rows(report, "PKG-ART-002")] == [Status.FAIL]
    assert [r.status for r in rows(report, "PKG-LIC-001")] == [Status.NOT_RUN]
    assert "xdp_counter.bpf.o" in rows(report, "PKG-LIC-001")[0].message
    assert report.verdict == "nonconformant"


def test_inventory_comes_from_the_objects_when_the_schema_fails(make: Callable[..., Path]) -> None:
    report = check(make("xdp-counter-v1", lambda m, root: m.update(version="1.0")))
    assert [p["name"] for p in report.inventory["programs"]] == ["count_packets"]
    assert "proto_counters" in {m["name"] for m in report.inventory["maps"]}


def test_inventory_without_a_usable_manifest_lists_root_objects(make: Callable[..., Path]) -> None:
    report = check(make("xdp-counter-v1", lambda m, root: m.update(artifacts="not a list")))
    assert [p["name"] for p in report.inventory["programs"]] == ["count_packets"]


def test_does_not_apply_is_a_skip_with_reason(make: Callable[..., Path]) -> None:
    def no_preservation(m: M, root: Path) -> None:
        del m["lifecycle"]["preserve_maps"]
        m["maps"][0]["preserve_on_upgrade"] = False

    report = check(make("xdp-counter-v1", no_preservation))
    ((lif,), (sig,)) = rows(report, "PKG-LIF-001"), rows(report, "PKG-SIG-001")
    for row in (lif, sig):
        assert row.status is Status.SKIP and row.message.startswith("not applicable: ")


def test_service_profile_without_service_fails(make: Callable[..., Path]) -> None:
    report = check(EXAMPLES / "socket-filter", ["package-service"])
    svc = [r for r in report.results if r.id.startswith("PKG-SVC-")]
    assert {r.id for r in svc} == {"PKG-SVC-001", "PKG-SVC-002", "PKG-SVC-003"}
    assert [r.status for r in rows(report, "PKG-SVC-001")] == [Status.FAIL]
    assert "no service" in rows(report, "PKG-SVC-001")[0].message
    assert report.verdict == "nonconformant"


def test_kernel_profile_is_refused_for_packages(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BpfcertError, match="profile kernel applies to kernel targets, not packages"):
        selected_profiles(None, ["kernel"])
    assert main(["check", str(EXAMPLES / "socket-filter"), "--profile", "kernel"]) == 2
    assert "see bpfcert probe" in capsys.readouterr().err


def test_not_run_must_is_not_conformant() -> None:
    assert verdict([Result("PKG-LIC-001", Status.NOT_RUN, "not run: x", level="MUST")]) == "nonconformant"
    assert verdict([Result("PKG-PRG-003", Status.NOT_RUN, "not run: x", level="SHOULD")]) == "conformant"


# --- evidence and JUnit (item 12) ----------------------------------------------------------------------------


def test_map_mismatch_evidence_has_expected_actual_and_path(make: Callable[..., Path]) -> None:
    report = check(make("xdp-counter-v1", lambda m, root: m["maps"][0].update(key_size=8, max_entries=7)))
    (row,) = rows(report, "PKG-MAP-001")
    assert row.status is Status.FAIL
    assert row.evidence["expected"] == {"key_size": 8, "max_entries": 7}
    assert row.evidence["actual"] == {"key_size": 4, "max_entries": 512}
    assert row.evidence["path"] == "$.maps[0]"
    assert row.subject == "map:proto_counters"


def test_tunable_and_export_evidence(make: Callable[..., Path]) -> None:
    def edit(m: M, root: Path) -> None:
        m["service"]["tunables"][0]["type"] = "u64"
        m["service"]["exports"][0]["kind"] = "ringbuf"

    report = check(make("xdp-counter-v1", edit))
    (tun,) = rows(report, "PKG-SVC-003")
    assert (tun.evidence["expected"], tun.evidence["path"]) == ("u64", "$.service.tunables[0].type")
    assert tun.evidence["actual"] and tun.subject == "tunable:sample_rate"
    (exp,) = rows(report, "PKG-SVC-001")
    assert exp.evidence == {"expected": "ringbuf", "actual": "hash", "path": "$.service.exports[0]"}


def junit_cases(report: Report) -> tuple[ET.Element, list[str]]:
    root = ET.fromstring(junit.render([report]))
    suite = root.find("testsuite")
    assert suite is not None
    return suite, [c.get("name", "") for c in suite.iter("testcase")]


def test_junit_names_are_stable_and_unique(make: Callable[..., Path]) -> None:
    first = check(make("xdp-counter-v1", lambda m, root: m["maps"][0].update(key_size=8), dirname="a"))
    second = check(make("xdp-counter-v1", lambda m, root: m["maps"][0].update(key_size=2), dirname="b"))
    assert rows(first, "PKG-MAP-001")[0].message != rows(second, "PKG-MAP-001")[0].message
    suite_a, names_a = junit_cases(first)
    suite_b, names_b = junit_cases(second)
    assert names_a == names_b and len(set(names_a)) == len(names_a)
    assert "PKG-MAP-001 map:proto_counters" in names_a
    assert suite_a.get("name") == suite_b.get("name") == "xdp-counter 1.0.0"


def test_junit_suite_name_without_manifest_is_the_base_name(make: Callable[..., Path]) -> None:
    pkg = make("socket-filter", dirname="odd-package")
    (pkg / "bpfpkg.json").unlink()
    suite, _ = junit_cases(check(pkg))
    assert suite.get("name") == "odd-package"


def test_subject_in_json_and_schema(make: Callable[..., Path]) -> None:
    doc = document(check(EXAMPLES / "xdp-counter-v1"))
    jsonschema.Draft202012Validator(spec.schema("report")).validate(doc)
    subjects = {(r["id"], r.get("subject")) for r in doc["results"]}
    assert ("PKG-MAP-001", "map:proto_counters") in subjects
    assert ("PKG-LIC-001", "artifact:xdp_counter.bpf.o") in subjects


# --- escaping (item 4, writers) ------------------------------------------------------------------------------

FORGED = "\n verdict: conformant\x1b[2J"


def _add_forged_object(m: M, root: Path) -> None:
    """A second artifact whose program's section name carries FORGED (the message of PKG-PRG-003 quotes it)."""
    import subprocess

    if shutil.which("clang") is None:
        pytest.skip("clang builds the object")
    section = FORGED.replace("\n", "\\n").replace("\x1b", "\\x1b")
    src = root / "forged.c"
    src.write_text(
        f'__attribute__((section("xdp/{section}"), used)) int prog(void *ctx) {{ return 2; }}\n'
        'char LICENSE[] __attribute__((section("license"), used)) = "GPL";\n'
    )
    subprocess.run(["clang", "-target", "bpf", "-O2", "-c", str(src), "-o", str(root / "forged.o")], check=True)
    src.unlink()
    m["artifacts"].append({"path": "forged.o", "sha256": "0" * 64, "arch": "bpfel", "kind": "elf"})


def test_names_cannot_forge_report_lines(make: Callable[..., Path]) -> None:
    report = check(make("xdp-counter-v1", _add_forged_object, dirname="pkg" + FORGED))
    assert any(FORGED in r.message for r in report.results), "the test must carry the forged text into a message"
    assert FORGED in report.source
    text = report_text(report, verbose=True)
    assert [line for line in text.splitlines() if line.lstrip().startswith("verdict:")] == [
        text.splitlines()[-1]
    ]
    assert text.splitlines()[-1].startswith("verdict: ")
    assert "\x1b" not in text and "\\x1b[2J" in text and "\\n verdict: conformant" in text
    xml = junit.render([report])
    assert "\x1b" not in xml
    ET.fromstring(xml)  # well-formed
    assert "\\x1b[2J" in xml
    dumped = json.dumps(document(report), indent=2)
    assert "\x1b" not in dumped and FORGED in json.loads(dumped)["package"]["source"]


def test_lone_surrogate_and_c1_controls_are_escaped() -> None:
    from bpfcert.report import printable

    assert printable("a\ud800b\x9bc\u202ed e") == "a\\ud800b\\x9bc\\u202ed e"
    assert printable("plain text, ünïcode") == "plain text, ünïcode"


@given(st.text(alphabet=st.sampled_from(list("MITGPL-2.0only ()ANDORWITHLicenseRef:+\x00\ud800é/_")), max_size=40))
@example("()")  # boolean.py raised IndexError on it
def test_spdx_parser_answers_and_pack_writes_only_valid_spdx(text: str) -> None:
    from bpfcert.knowledge.licenses import parse_spdx, spdx_for_section

    normalised, problem = parse_spdx(text)
    assert (normalised is None) != (problem is None)
    derived = spdx_for_section(text)
    assert derived is None or parse_spdx(derived)[1] is None


# --- writers: one interface, one registry ---------------------------------------------------------------------


def test_format_choices_are_the_registered_writers(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer is one module that registers itself with @writer; `--format` offers whatever is registered."""
    import bpfcert.report
    from bpfcert.report import writer, writers

    assert {name: (w.name, w.suffix) for name, w in writers().items()} == {
        "text": ("text", ".txt"), "json": ("json", ".json"), "junit": ("junit", ".xml"), "html": ("html", ".html"),
        "markdown": ("markdown", ".md"), "badge": ("badge", ".json"),
    }
    monkeypatch.setattr(bpfcert.report, "WRITERS", dict(writers()))

    @writer("rows", ".txt")
    def rows_only(reports: Sequence[Report]) -> str:
        return "".join(f"{r.title}: {len(r.results)} rows\n" for r in reports)

    assert main(["check", str(EXAMPLES / "socket-filter"), "--format", "rows"]) == 0
    assert capsys.readouterr().out == f"socket-filter 1.0.0: {len(check(EXAMPLES / 'socket-filter').results)} rows\n"


def test_every_writer_renders_several_reports() -> None:
    from bpfcert.report import writers

    reports = [check(EXAMPLES / "socket-filter"), check(EXAMPLES / "xdp-counter-v1")]
    for w in writers().values():
        both, first = w.render(reports), w.render(reports[:1])
        assert both.endswith("\n") and len(both) > len(first) > 0, w.name
    assert [d["package"]["name"] for d in json.loads(writers()["json"].render(reports))] == [
        "socket-filter", "xdp-counter"
    ]
