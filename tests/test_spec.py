"""The standard as data stays coherent: STANDARD.md and requirements.json list the same requirements with the same
level and profile, the schemas are valid 2020-12 schemas, the catalogue validates, the enumerations follow the
kernel UAPI, and every MUST requirement is exercised by at least one test."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bpfcert import bundled, spec
from bpfcert.errors import BpfcertError

ROOT = Path(__file__).resolve().parent.parent
STANDARD = spec.SPEC_DIR / "STANDARD.md"
HEADING = re.compile(r"^#{2,6} ([A-Z]+(?:-[A-Z]+)+-\d{3}) · (MUST|SHOULD|MAY) · ([a-z][a-z0-9-]*)\s*$")
ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
UAPI_BPF_H = Path("/usr/include/linux/bpf.h")
ATTACH_DISPATCH = "#/properties/programs/items/properties/attach"  # an object; its family's $def closes it


def catalogue_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((spec.SPEC_DIR / "requirements.json").read_text())
    return data


def standard_requirements() -> dict[str, tuple[str, str, str]]:
    """ID -> (level, profile, the clause's first sentence) from the requirement headings of STANDARD.md."""
    lines = STANDARD.read_text(encoding="utf-8").splitlines()
    found: dict[str, tuple[str, str, str]] = {}
    for i, line in enumerate(lines):
        match = HEADING.match(line)
        if match:
            req_id, level, profile = match.groups()
            assert req_id not in found, f"{req_id} has two clauses in STANDARD.md"
            body = " ".join(next_paragraph(lines, i + 1))
            found[req_id] = (level, profile, body)
    return found


def next_paragraph(lines: list[str], start: int) -> list[str]:
    out: list[str] = []
    for line in lines[start:]:
        if not line.strip():
            if out:
                break
            continue
        if line.startswith(("#", "<a ")):
            break
        out.append(line.strip())
    return out


def test_standard_and_catalogue_list_the_same_requirements() -> None:
    document = {k: v[:2] for k, v in standard_requirements().items()}
    catalogue = {r["id"]: (r["level"], r["profile"]) for r in catalogue_data()["requirements"]}
    assert sorted(document.keys() - catalogue.keys()) == [], "in STANDARD.md but not in requirements.json"
    assert sorted(catalogue.keys() - document.keys()) == [], "in requirements.json but not in STANDARD.md"
    assert {k: v for k, v in document.items() if catalogue[k] != v} == {}, "level or profile differ"


def test_every_clause_states_its_level_in_a_sentence() -> None:
    for req_id, (level, _, body) in standard_requirements().items():
        assert body.endswith("."), f"{req_id}: no sentence under the heading"
        assert re.search(rf"\b{level}\b", body), f"{req_id}: the clause does not say {level}"


def test_catalogue_clauses_point_at_anchors() -> None:
    anchors = set(ANCHOR.findall(STANDARD.read_text(encoding="utf-8")))
    for requirement in catalogue_data()["requirements"]:
        clause = requirement.get("clause")
        assert clause == f"STANDARD.md#{requirement['id'].lower()}", requirement["id"]
        assert clause.split("#", 1)[1] in anchors, f"{requirement['id']}: no anchor in STANDARD.md"


def test_catalogue_profiles_are_declared() -> None:
    data = catalogue_data()
    declared = set(data["profiles"])
    assert {r["profile"] for r in data["requirements"]} <= declared
    for profile in data["profiles"].values():
        assert set(profile.get("includes", [])) <= declared
    assert spec.profiles()["package-portable"] == ["package-portable", "package-core"]


@pytest.mark.parametrize(
    "name", ["package", "requirements", "runner", "report", "report-signature", "expected-failures"]
)
def test_schemas_are_valid_2020_12_schemas(name: str) -> None:
    schema = spec.schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert re.fullmatch(rf"https://bpfcert\.dev/schemas/{name}/1\.\d+", schema["$id"])  # versioned: major 1
    jsonschema.Draft202012Validator.check_schema(schema)


def test_requirements_json_validates_against_its_schema() -> None:
    validator = jsonschema.Draft202012Validator(spec.schema("requirements"))
    assert [e.message for e in validator.iter_errors(catalogue_data())] == []
    broken = catalogue_data()
    broken["requirements"][0]["level"] = "MUST NOT"
    assert list(validator.iter_errors(broken))


def test_every_package_schema_field_is_described() -> None:
    """Every property of every object in the package schema carries a description (the standard's prose)."""
    missing: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            properties = {} if where.endswith(("/if", "/then")) else node.get("properties", {})
            for key, sub in properties.items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{where}.{key}")
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(spec.schema("package"), "#")
    assert missing == []


def test_package_schema_forbids_unknown_keys_everywhere() -> None:
    """Every object schema with properties closes itself (additionalProperties: false) but allows x-* keys."""
    open_objects: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            partial = where.endswith(("/if", "/then")) or where == ATTACH_DISPATCH  # closed by the $defs
            closed = node.get("additionalProperties") is False and "^x-" in node.get("patternProperties", {})
            if "properties" in node and not partial and not closed:
                open_objects.append(where)
            for key, sub in node.items():
                walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(spec.schema("package"), "#")
    assert open_objects == []


def uapi_enum(name: str, prefix: str) -> list[str]:
    text = UAPI_BPF_H.read_text()
    body = re.search(rf"enum {name} \{{(.*?)\}};", text, re.S)
    assert body is not None
    names = re.findall(rf"\b{prefix}([A-Z0-9_]+)\b", body.group(1))
    return [n.lower() for n in names if n != "UNSPEC" and not n.startswith("_")]


@pytest.mark.skipif(not UAPI_BPF_H.exists(), reason="kernel UAPI headers not installed")
@pytest.mark.parametrize(
    ("enum", "prefix", "definition"),
    [
        ("bpf_prog_type", "BPF_PROG_TYPE_", "progType"),
        ("bpf_map_type", "BPF_MAP_TYPE_", "mapType"),
        ("bpf_attach_type", "BPF_", "attachType"),
    ],
)
def test_type_enums_cover_the_kernel_uapi(enum: str, prefix: str, definition: str) -> None:
    """Every program, map and attach type of the installed UAPI header is a valid manifest value."""
    schema_values = spec.schema("package")["$defs"][definition]["enum"]
    kernel_values = uapi_enum(enum, prefix)
    assert kernel_values, f"no values parsed from enum {enum}"
    assert [v for v in kernel_values if v not in schema_values] == []


def test_every_program_type_has_one_attach_family() -> None:
    program = spec.schema("package")["properties"]["programs"]["items"]
    families = [rule["if"]["properties"]["type"]["enum"] for rule in program["allOf"]]
    flattened = [t for family in families for t in family]
    assert sorted(flattened) == sorted(spec.schema("package")["$defs"]["progType"]["enum"])


def test_every_must_requirement_is_tested() -> None:
    """A MUST requirement whose ID appears in no test under tests/ or conformance/ is untested. This fails until
    the checks and their tests exist: it is the standard's to-do list, never to be marked xfail."""
    sources = [
        path.read_text(encoding="utf-8", errors="replace")
        for folder in ("tests", "conformance")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.resolve() != Path(__file__).resolve()
    ]
    text = "\n".join(sources)
    untested = [r["id"] for r in catalogue_data()["requirements"] if r["level"] == "MUST" and r["id"] not in text]
    assert untested == [], f"MUST requirements no test mentions: {', '.join(untested)}"


def test_every_requirement_says_how_to_fix_a_failure() -> None:
    """`fix` is required by the catalogue's schema and is one line of advice, shown under failed report rows."""
    validator = jsonschema.Draft202012Validator(spec.schema("requirements"))
    for requirement in catalogue_data()["requirements"]:
        fix = requirement.get("fix", "")
        assert fix.strip() and "\n" not in fix and fix.endswith("."), f"{requirement['id']}: fix {fix!r}"
    broken = catalogue_data()
    del broken["requirements"][0]["fix"]
    assert [e.message for e in validator.iter_errors(broken)] == ["'fix' is a required property"]


def test_clause_is_the_requirements_section_of_the_standard() -> None:
    clauses = standard_requirements()
    for req_id in spec.catalogue():
        text = " ".join(spec.clause(req_id).split())
        assert text.startswith(clauses[req_id][2]), req_id
        assert not (set(re.findall(r"[A-Z]+-[A-Z]+-\d{3} ·", text))), f"{req_id}: runs into the next clause"
    with pytest.raises(BpfcertError, match="PKG-NONE-001"):
        spec.clause("PKG-NONE-001")


def test_data_is_found_in_the_package_first_then_beside_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed wheel holds bpfcert/spec; a checkout holds spec/ beside bpfcert/."""
    package = tmp_path / "bpfcert"
    (tmp_path / "spec").mkdir(parents=True)
    package.mkdir()
    monkeypatch.setattr(bundled, "PACKAGE", package)
    assert bundled.directory("spec") == tmp_path / "spec"
    (package / "spec").mkdir()
    assert bundled.directory("spec") == package / "spec"
    with pytest.raises(BpfcertError, match="examples"):
        bundled.directory("examples")
    assert spec.SPEC_DIR == ROOT / "spec"  # this checkout


def test_pyproject_ships_every_package_and_the_data() -> None:
    """pyproject.toml lists the packages by hand (spec/ and examples/ are mapped into bpfcert): none may be missing."""
    setuptools_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "bpfcert").rglob("__init__.py")
    }
    mapped = set(setuptools_config["package-dir"])
    assert set(setuptools_config["packages"]) == on_disk | mapped
    assert {setuptools_config["package-dir"][m] for m in mapped} == {"spec", "examples", "runners", "conformance"}
