"""Property tests of the manifest layer: generated manifests validate, every mutation is rejected with the
right requirement ID, the two validators agree, YAML and JSON read the same, the canonical form is stable.

Example counts scale with the loaded Hypothesis profile: with HYPOTHESIS_PROFILE=ci (300 examples) the tests
of this module run >= 10,000 examples in total (see test_ci_profile_runs_ten_thousand_examples).
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bpfcert import spec
from bpfcert.errors import ManifestError
from bpfcert.package import (
    MANIFEST_MAX_DEPTH,
    canonical_manifest,
    load_manifest,
    manifest_reference_errors,
    validate_manifest,
)
from bpfcert.strategies import (
    kernel_ranges,
    manifest_mutations,
    manifests,
    package_names,
    relative_paths,
    semvers,
    spdx_expressions,
)

BASE = settings.default.max_examples
# multiplier of the profile's max_examples per test; the sum must reach 10,000 / 300 in the ci profile
SCALE = {
    "valid": 2,
    "mutations": 2,
    "reference": 1,
    "yaml": 1,
    "canonical": 1,
    "fields": 16,
    "unsafe_paths": 11,
    "hostile": 2,
    "bounds": 1,
}


def scaled(name: str) -> settings:
    return settings(max_examples=BASE * SCALE[name])


@pytest.fixture(scope="module")
def reference_validator() -> jsonschema.Draft202012Validator:
    """The pure-Python jsonschema validator, as an independent oracle for jsonschema_rs."""
    schema = spec.schema("package")
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


MINIMAL: dict[str, Any] = {
    "specVersion": "1.0",
    "name": "minimal",
    "version": "1.0.0",
    "license": "MIT",
    "artifacts": [{"path": "prog.o", "sha256": "0" * 64, "arch": "bpfel"}],
}


def with_value(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    manifest = copy.deepcopy(MINIMAL)
    target: Any = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return manifest


@scaled("valid")
@given(manifests())
def test_generated_manifests_validate_and_resolve(manifest: dict[str, Any]) -> None:
    assert validate_manifest(manifest) == []
    assert manifest_reference_errors(manifest) == []


@scaled("mutations")
@given(manifest_mutations())
def test_every_mutation_fails_its_requirement(case: tuple[dict[str, Any], str]) -> None:
    manifest, req_id = case
    schema_errors = validate_manifest(manifest)
    if req_id == "PKG-MAN-002":
        assert schema_errors, "a schema violation validated"
        assert all(e.path.startswith("$") and e.message for e in schema_errors)
    else:
        assert req_id == "PKG-MAN-003"
        assert schema_errors == [], "reference mutations must stay schema-valid (else they test PKG-MAN-002)"
        assert manifest_reference_errors(manifest)


@scaled("reference")
@given(st.one_of(manifests().map(lambda m: (m, "")), manifest_mutations()))
def test_jsonschema_rs_agrees_with_reference_validator(
    reference_validator: jsonschema.Draft202012Validator, case: tuple[dict[str, Any], str]
) -> None:
    """Valid manifests and schema mutations: jsonschema_rs and the reference validator give the same verdict."""
    manifest, req_id = case
    reference_errors = list(reference_validator.iter_errors(manifest))
    assert bool(validate_manifest(manifest)) == bool(reference_errors)
    assert bool(reference_errors) == (req_id == "PKG-MAN-002")


@scaled("yaml")
@given(manifests())
def test_yaml_and_json_manifests_load_identically(tmp_path_factory: pytest.TempPathFactory, manifest: Any) -> None:
    folder = tmp_path_factory.mktemp("equiv")
    as_json, as_yaml = folder / "bpfpkg.json", folder / "bpfpkg.yaml"
    as_json.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    as_yaml.write_text(yaml.dump(manifest, Dumper=dumper, allow_unicode=True, sort_keys=False), encoding="utf-8")
    from_json, from_yaml = load_manifest(as_json), load_manifest(as_yaml)
    assert from_json == from_yaml == manifest
    assert canonical_manifest(from_json) == canonical_manifest(from_yaml)


@scaled("canonical")
@given(manifests(), st.randoms(use_true_random=False))
def test_canonical_form_ignores_key_order_and_signature(manifest: dict[str, Any], rng: Any) -> None:
    def shuffled(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            rng.shuffle(items)
            return {k: shuffled(v) for k, v in items}
        if isinstance(value, list):
            return [shuffled(v) for v in value]
        return value

    canonical = canonical_manifest(manifest)
    assert canonical_manifest(shuffled(manifest)) == canonical
    decoded = json.loads(canonical.decode("utf-8"))
    assert "signature" not in decoded
    assert decoded == {k: v for k, v in manifest.items() if k != "signature"}
    signed = manifest | {"signature": {"algorithm": "ed25519", "public_key": "A" * 43 + "=", "value": "B" * 86 + "=="}}
    assert canonical_manifest(signed) == canonical


FIELD_VALUES = st.one_of(
    package_names.map(lambda v: (("name",), v)),
    semvers.map(lambda v: (("version",), v)),
    spdx_expressions.map(lambda v: (("license",), v)),
    relative_paths.map(lambda v: (("artifacts", 0, "path"), v)),
    kernel_ranges.map(lambda v: (("requires",), {"kernel": v})),
)
BAD_FIELD_VALUES = st.one_of(
    package_names.map(lambda v: (("name",), v.upper() if v.upper() != v else "-" + v)),
    semvers.map(lambda v: (("version",), "v" + v)),
    spdx_expressions.map(lambda v: (("license",), v.replace(" ", "  ", 1) if " " in v else v + "/GPL")),
    relative_paths.map(lambda v: (("artifacts", 0, "path"), v + "/")),
    kernel_ranges.map(lambda v: (("requires",), {"kernel": v.lstrip("<>=")})),
)


@scaled("fields")
@given(st.one_of(FIELD_VALUES.map(lambda c: (*c, True)), BAD_FIELD_VALUES.map(lambda c: (*c, False))))
def test_field_grammars_accept_and_reject(case: tuple[tuple[str | int, ...], Any, bool]) -> None:
    """Names, SemVer, SPDX, artifact paths and kernel ranges: generated values pass, broken ones are reported
    at their JSON path."""
    path, value, valid = case
    errors = validate_manifest(with_value(path, value))
    if valid:
        assert errors == []
    else:
        assert errors
        assert all(e.path.startswith("$." + str(path[0])) for e in errors)


UNSAFE_PATHS = st.one_of(
    relative_paths.map(lambda p: "/" + p),
    relative_paths.map(lambda p: "../" + p),
    st.tuples(relative_paths, relative_paths).map(lambda p: f"{p[0]}/../{p[1]}"),
    relative_paths.map(lambda p: p + "/.."),
    relative_paths.map(lambda p: p.replace("/", "\\") if "/" in p else "sub\\" + p),
    st.tuples(relative_paths, relative_paths).map(lambda p: f"{p[0]}/./{p[1]}"),
    relative_paths.map(lambda p: p + "//x"),
    st.just(""),
)


@scaled("unsafe_paths")
@given(UNSAFE_PATHS)
def test_unsafe_artifact_paths_are_schema_violations(path: str) -> None:
    """'..', absolute and backslash paths fail PKG-MAN-002 at the schema (the artifact check PKG-ART-001 then
    only has to catch symlinks)."""
    errors = validate_manifest(with_value(("artifacts", 0, "path"), path))
    assert [e.path for e in errors] == ["$.artifacts[0].path"]


def test_ci_profile_runs_ten_thousand_examples() -> None:
    """The per-test multipliers give >= 10,000 examples in the ci profile (300 per test)."""
    ci = settings.get_profile("ci").max_examples
    counted = sum(SCALE.values()) * ci
    assert counted >= 10_000, counted


def test_minimal_manifest_is_valid() -> None:
    assert validate_manifest(MINIMAL) == []
    assert Path(spec.SPEC_DIR / "package.schema.json").is_file()


# -- hostile values: each once crashed a later stage (int-str conversion, UTF-8 encoding, recursion) ------------

_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_with_surrogate = st.tuples(st.text(max_size=4), _surrogates, st.text(max_size=4)).map("".join)
_int_outside_64_bits = st.one_of(st.integers(min_value=1 << 64), st.integers(max_value=-(1 << 63) - 1))
_nesting = st.integers(MANIFEST_MAX_DEPTH + 1, 1500)
# (JSON text, YAML text) of one hostile value; huge literals as text, since Python will not print them
HOSTILE_VALUES = st.one_of(
    st.integers(4_301, 6_000).map(lambda n: ("9" * n,) * 2),
    st.integers(1_500, 6_000).map(lambda n: ("-" + "1" * n, "0x" + "f" * n)),
    _int_outside_64_bits.map(lambda i: (str(i), str(i))),
    _with_surrogate.map(lambda t: (json.dumps(t), json.dumps(t))),  # "\udXXX" escapes in both
    _with_surrogate.map(lambda k: ("{" + json.dumps(k) + ": 1}",) * 2),
    _nesting.map(lambda d: ("[" * d + "]" * d,) * 2),
    _nesting.map(lambda d: ('{"a": ' * d + "1" + "}" * d,) * 2),
)


def embed(manifest: dict[str, Any], fragment: str, wrap: int) -> str:
    """The manifest as JSON text, with `fragment` as the value of an extension key, inside `wrap` arrays."""
    return json.dumps(manifest)[:-1] + ', "x-hostile": ' + "[" * wrap + fragment + "]" * wrap + "}"


@scaled("hostile")
@given(manifests(), HOSTILE_VALUES, st.integers(0, 3), st.booleans())
def test_hostile_values_are_manifest_errors(
    tmp_path_factory: pytest.TempPathFactory, manifest: dict[str, Any], value: tuple[str, str], wrap: int, as_yaml: bool
) -> None:
    """Huge integers, lone surrogates and deep nesting in any manifest: a one-line ManifestError (PKG-MAN-001)
    from load_manifest, never another exception from it or from the stages after it."""
    path = tmp_path_factory.mktemp("hostile") / ("bpfpkg.yaml" if as_yaml else "bpfpkg.json")
    path.write_text(embed(manifest, value[as_yaml], wrap), encoding="utf-8")  # JSON is YAML (flow style)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@scaled("bounds")
@given(
    manifests(),
    st.one_of(
        st.integers(-(1 << 63), (1 << 64) - 1),
        st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn")), max_size=8),  # text YAML can carry raw
        st.integers(0, MANIFEST_MAX_DEPTH - 2).map(lambda d: functools.reduce(lambda v, _: [v], range(d), [])),
    ),
    st.booleans(),
)
def test_values_within_the_bounds_load_and_canonicalise(
    tmp_path_factory: pytest.TempPathFactory, manifest: dict[str, Any], value: Any, as_yaml: bool
) -> None:
    """The limits refuse nothing they promise to keep: 64-bit integers, Unicode text, 64 levels of nesting."""
    path = tmp_path_factory.mktemp("bounds") / ("bpfpkg.yaml" if as_yaml else "bpfpkg.json")
    expected = manifest | {"x-value": value}
    path.write_text(json.dumps(expected, ensure_ascii=not as_yaml), encoding="utf-8")  # YAML lacks \ud83d pairs
    loaded = load_manifest(path)
    assert loaded == expected
    assert json.loads(canonical_manifest(loaded)) == {k: v for k, v in expected.items() if k != "signature"}

