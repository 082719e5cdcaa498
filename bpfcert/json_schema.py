"""Validating JSON values against the standard's schemas (Draft 2020-12), the one place a validator is made.

jsonschema-rs is the fast path (it imports in ~5 ms, where jsonschema takes ~100 ms: `bpfcert check` start-up);
where it cannot be imported (s390x: no wheel for that architecture) the pure-Python jsonschema validates instead,
with the same violations. Either way a violation is a `Violation`, and a value nested too deeply to validate
raises ValueError.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import jsonschema

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
    checker = _format_checker() if formats else None
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


@functools.cache
def _format_checker() -> jsonschema.FormatChecker:
    """Draft 2020-12's format checker, with "uri" and "email" (the formats the package schema asserts) checked as
    jsonschema-rs checks them: jsonschema alone takes any string as a URI (it needs an optional package for it) and
    anything with an "@" as an e-mail address, so a manifest the fast path refuses would pass the fallback."""
    import ipaddress
    import re

    import jsonschema

    # RFC 3986 section 3 (URI) and appendix A, and RFC 5321 section 4.1.2 (Mailbox), as regular expressions
    unreserved, pct, sub = r"[A-Za-z0-9\-._~]", r"%[0-9A-Fa-f]{2}", r"[!$&'()*+,;=]"
    pchar = rf"(?:{unreserved}|{pct}|{sub}|[:@])"
    h16, dec = r"[0-9A-Fa-f]{1,4}", r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{dec}\.{dec}\.{dec}\.{dec}"
    ls32 = rf"(?:{h16}:{h16}|{ipv4})"
    ipv6 = "|".join([
        rf"(?:{h16}:){{6}}{ls32}", rf"::(?:{h16}:){{5}}{ls32}", rf"(?:{h16})?::(?:{h16}:){{4}}{ls32}",
        *(rf"(?:(?:{h16}:){{0,{n}}}{h16})?::(?:{h16}:){{{3 - n}}}{ls32}" for n in (1, 2)),
        rf"(?:(?:{h16}:){{0,3}}{h16})?::{h16}:{ls32}", rf"(?:(?:{h16}:){{0,4}}{h16})?::{ls32}",
        rf"(?:(?:{h16}:){{0,5}}{h16})?::{h16}", rf"(?:(?:{h16}:){{0,6}}{h16})?::",
    ])  # fmt: skip
    host = rf"(?:\[(?:{ipv6}|[vV][0-9A-Fa-f]+\.(?:{unreserved}|{sub}|:)+)\]|{ipv4}|(?:{unreserved}|{pct}|{sub})*)"
    authority = rf"(?:(?:{unreserved}|{pct}|{sub}|:)*@)?{host}(?::[0-9]*)?"
    segments = rf"{pchar}+(?:/{pchar}*)*"
    hier = rf"(?://{authority}(?:/{pchar}*)*|/(?:{segments})?|{segments}|)"
    uri = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:{hier}(?:\?(?:{pchar}|[/?])*)?(?:#(?:{pchar}|[/?])*)?")
    atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    local = re.compile(rf'{atom}(?:\.{atom})*|"(?:[^"\\]|\\.)*"')
    domain = re.compile(rf"{label}(?:\.{label})*")

    def is_uri(value: object) -> bool:
        return not isinstance(value, str) or uri.fullmatch(value) is not None

    def is_email(value: object) -> bool:
        if not isinstance(value, str):
            return True
        name, at, where = value.rpartition("@")
        if not (at and len(name) <= 64 and local.fullmatch(name)):
            return False
        if where.startswith("[") and where.endswith("]"):  # an address literal: [IPv4] or [IPv6:...]
            literal = where[1:-1]
            try:
                ipaddress.IPv6Address(literal[5:]) if literal.startswith("IPv6:") else ipaddress.IPv4Address(literal)
            except ValueError:
                return False
            return True
        return len(where) <= 253 and domain.fullmatch(where) is not None

    checker = jsonschema.FormatChecker(())
    checker.checkers = {**jsonschema.Draft202012Validator.FORMAT_CHECKER.checkers}
    checker.checks("uri")(is_uri)
    checker.checks("email")(is_email)
    return checker
