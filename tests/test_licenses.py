"""Licences: the SPDX fast path of parse_spdx (a single listed identifier, or what the kernel's license strings
map to) answers exactly what the `license-expression` library answers (tests/test_check_startup.py: without
importing it)."""

from __future__ import annotations

from typing import Any

import pytest

from bpfcert.knowledge.licenses import SECTION_TO_SPDX, parse_spdx
from bpfcert.knowledge.spdx_ids import SPDX_LICENSE_IDS


@pytest.fixture(scope="module")
def library() -> Any:
    """The library's licensing over its whole index: the reference every fast answer is held to."""
    from license_expression import build_spdx_licensing, get_license_index

    return build_spdx_licensing(get_license_index())


def library_ids() -> list[str]:
    """What bpfcert/knowledge/spdx_ids.py must list: the library's SPDX licence keys (no exceptions, no
    LicenseRef-), sorted."""
    from license_expression import get_license_index

    keys = {
        e["spdx_license_key"]
        for e in get_license_index()
        if e.get("spdx_license_key")
        and not e.get("is_exception")
        and not e["spdx_license_key"].startswith("LicenseRef-")
    }
    return sorted(keys)


def test_the_compact_index_is_in_step_with_the_installed_library() -> None:
    assert list(SPDX_LICENSE_IDS) == library_ids(), (
        "license-expression's index changed: regenerate bpfcert/knowledge/spdx_ids.py from library_ids() here"
    )


def test_every_listed_identifier_is_what_the_library_makes_of_it(library: Any) -> None:
    for key in SPDX_LICENSE_IDS:
        for spelling in (key, key.lower()):
            assert str(library.parse(spelling, strict=True)) == key, spelling
            assert parse_spdx(spelling) == (key, None)


@pytest.mark.parametrize("expression", sorted(set(SECTION_TO_SPDX.values())))
def test_the_kernel_table_expressions_are_valid_and_normalised(library: Any, expression: str) -> None:
    for spelling in (expression, expression.lower()):
        parsed = library.parse(spelling, strict=True)
        assert not library.unknown_license_keys(parsed)
        assert str(parsed) == expression
        assert parse_spdx(spelling) == (expression, None)


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("GPL-2.0", ("GPL-2.0-only", None)),  # a deprecated alias: the library normalises it
        ("mit OR gpl-2.0-only", ("MIT OR GPL-2.0-only", None)),
        ("GPL-2.0-only WITH Linux-syscall-note", ("GPL-2.0-only WITH Linux-syscall-note", None)),
        ("LicenseRef-Acme", ("LicenseRef-Acme", None)),
        (" MIT", ("MIT", None)),
    ],
)
def test_what_is_not_a_single_listed_identifier_goes_to_the_library(text: str, answer: tuple[str, None]) -> None:
    assert parse_spdx(text) == answer


@pytest.mark.parametrize("text", ["Linux-syscall-note", "Proprietary", "MIT OR", "MIT WITH", ""])
def test_exceptions_unknown_words_and_broken_expressions_are_refused(text: str) -> None:
    normalised, problem = parse_spdx(text)
    assert normalised is None and problem
