"""The schema-validation seam (bpfcert/json_schema.py): jsonschema-rs where it imports, the pure-Python jsonschema
where it does not (s390x has no jsonschema-rs wheel), with the same violations either way; manifests and runner
protocol messages are judged alike with jsonschema-rs unimportable."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfcert import json_schema, spec
from bpfcert.package import _validator as package_validator
from bpfcert.package import validate_manifest
from bpfcert.runners import protocol

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads((ROOT / "examples" / "xdp-counter-v1" / "bpfpkg.json").read_text())


@pytest.fixture
def without_rs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """jsonschema-rs cannot be imported (as on s390x); the cached validators are rebuilt on both sides."""
    monkeypatch.setitem(sys.modules, "jsonschema_rs", None)
    package_validator.cache_clear()
    protocol._validator.cache_clear()
    yield
    package_validator.cache_clear()
    protocol._validator.cache_clear()


def _broken() -> dict[str, Any]:
    manifest = json.loads(json.dumps(MANIFEST))
    manifest["name"] = "Not A Valid Name!"
    manifest["programs"][0].pop("type", None)
    manifest["unknown-field"] = 1
    return manifest


def _paths(manifest: Any) -> list[str]:
    return [e.path for e in validate_manifest(manifest)]


def test_fast_path_here_and_the_fallback_without_jsonschema_rs(without_rs: None) -> None:
    assert not json_schema.fast()
    assert validate_manifest(MANIFEST) == []
    assert "$.name" in _paths(_broken()) and len(_paths(_broken())) >= 3


def test_both_validators_find_the_same_violations() -> None:
    assert json_schema.fast()  # the host has the fast path
    broken = _broken()
    fast = validate_manifest(broken)
    package_validator.cache_clear()
    python = [e.path for e in _python_violations(broken)]
    assert sorted(python) == sorted(e.path for e in fast)
    name = next(e for e in fast if e.path == "$.name")
    assert "does not match" in name.message  # a pattern error, described from the schema on both paths


def _same_but_wording(validate: json_schema.Validate) -> list[tuple[Any, ...]]:
    """The violations less their messages (each library words its own), in a stable order."""
    return sorted(((v.instance_path, json.dumps(v.instance, sort_keys=True), v.pattern) for v in validate), key=repr)


def test_both_validators_give_the_same_violations_value_for_value() -> None:
    """jsonschema-rs and the fallback, each called directly: the same places, offending values and patterns on a
    whole schema with formats asserted and on a definition reached through $ref, and a message from both."""
    package, runner = spec.schema("package"), spec.schema("runner")
    broken = _broken()
    broken["homepage"] = "https://a b/"  # matches the schema's pattern, but is no URI: the "uri" format alone
    cases = [(package, None, True, broken), (runner, "runnerFolder", False, {"name": 7, "bogus": True})]
    for schema, definition, formats, value in cases:
        root = {"$ref": f"{schema['$id']}#/$defs/{definition}"} if definition else schema
        fast = list(json_schema._rs_validator(schema, root, formats)(value))
        python = list(json_schema._python_validator(schema, root, formats)(value))
        assert len(fast) >= 2 and all(v.message for v in fast + python)
        assert _same_but_wording(iter(fast)) == _same_but_wording(iter(python))
    assert "$.homepage" in [e.path for e in _python_violations(broken)]


URIS = ["https://x", "http://", "mailto:x", "urn:isbn:1", "https://a:80/p?q#f", "http://[::1]/", "https://[v1.x]/",
        "file:///x", "a:b:c", "https://a/%41", "not a uri", "https://a b", "https://a%zz", "http://[::1",
        "https://ä.com", "https://a#f#g", "https://a:b", "//a", "1a:b", "https://a/{x}", "http://[1::2::3]/"]


def test_both_validators_judge_uris_alike() -> None:
    """The fallback checks "uri" through rfc3986-validator (jsonschema uses it when installed) as jsonschema-rs
    does; without it, jsonschema took any string."""
    schema = {"type": "string", "format": "uri"}
    fast = json_schema._rs_validator(schema, schema, True)
    python = json_schema._python_validator(schema, schema, True)
    judged = [(value, not list(fast(value)), not list(python(value))) for value in URIS]
    assert [j for j in judged if j[1] != j[2]] == []
    assert {ok for _, ok, _ in judged} == {True, False}  # both valid and invalid values among them


def _python_violations(manifest: Any) -> list[Any]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "jsonschema_rs", None)
        package_validator.cache_clear()
        try:
            return validate_manifest(manifest)
        finally:
            package_validator.cache_clear()


def test_the_fallback_describes_pattern_errors_and_asserts_formats(without_rs: None) -> None:
    broken = _broken()
    name = next(e for e in validate_manifest(broken) if e.path == "$.name")
    assert name.message.startswith('"Not A Valid Name!" does not match')
    validate = json_schema.validator({"type": "string", "format": "date"}, formats=True)
    assert [v.message for v in validate("2026-13-45")] and not list(validate("2026-12-02"))


def test_runner_messages_resolve_definitions_through_the_fallback(without_rs: None) -> None:
    assert protocol.schema_error("startReply", {"bogus": True}) is not None
    validate = json_schema.validator(spec.schema("runner"), "runnerFolder")
    assert list(validate({}))  # the required fields are missing: a $ref into $defs was followed


def test_a_value_nested_too_deeply_is_a_value_error(without_rs: None) -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    validate = json_schema.validator({"type": "array", "items": {"$ref": "#"}})
    with pytest.raises(ValueError, match="nested too deeply"):
        list(validate(deep))
