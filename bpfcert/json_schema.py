"""Validating JSON values against the standard's schemas (Draft 2020-12), the one place a validator is made.

jsonschema-rs is the fast path (it imports in ~5 ms, where jsonschema takes ~100 ms: `bpfcert check` start-up);
where it cannot be imported (s390x: no wheel for that architecture) the pure-Python jsonschema validates instead,
with the same violations. Either way a violation is a `Violation`, and a value nested too deeply to validate
raises ValueError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

Validate = Callable[[Any], Iterator["Violation"]]


class Violation(NamedTuple):
    """One way a value breaks its schema: where (keys and indexes from the root), why, the offending value and,
    for a broken "pattern", the pattern."""

    instance_path: tuple[str | int, ...]
    message: str
    instance: Any
    pattern: str | None


def fast() -> bool:
    """Whether jsonschema-rs imports here (else validation falls back to the pure-Python jsonschema)."""
    try:
        import jsonschema_rs  # noqa: F401
    except ImportError:
        return False
    return True


def validator(schema: dict[str, Any], definition: str | None = None, *, formats: bool = False) -> Validate:
    """A function yielding every violation of `schema` (of its $defs/`definition` when given; references to the
    schema's $id resolve to it) by a value; `formats` asserts "format" keywords."""
    root = {"$ref": f"{schema.get('$id', '')}#/$defs/{definition}"} if definition else schema
    if fast():
        return _rs_validator(schema, root, formats)
    return _python_validator(schema, root, formats)


def _rs_validator(schema: dict[str, Any], root: dict[str, Any], formats: bool) -> Validate:
    import jsonschema_rs

    registry = jsonschema_rs.Registry([(schema["$id"], schema)]) if root is not schema else None
    compiled = jsonschema_rs.Draft202012Validator(root, validate_formats=formats, registry=registry)

    def validate(value: Any) -> Iterator[Violation]:
        for error in compiled.iter_errors(value):
            pattern = getattr(error.kind, "pattern", None)
            yield Violation(tuple(error.instance_path), error.message, error.instance, pattern)

    return validate


def _python_validator(schema: dict[str, Any], root: dict[str, Any], formats: bool) -> Validate:
    import jsonschema
    import referencing

    registry: referencing.Registry[Any] = referencing.Registry()
    if root is not schema:
        registry = registry.with_resource(schema["$id"], referencing.Resource.from_contents(schema))
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER if formats else None
    compiled = jsonschema.Draft202012Validator(root, registry=registry, format_checker=checker)

    def validate(value: Any) -> Iterator[Violation]:
        try:
            errors = list(compiled.iter_errors(value))
        except RecursionError:
            raise ValueError("the value is nested too deeply to validate") from None
        for error in errors:
            pattern = error.validator_value if error.validator == "pattern" else None
            yield Violation(tuple(error.absolute_path), error.message, error.instance, pattern)

    return validate
