"""Importers: turn other eBPF package formats (bpfman images, eunomia-bpf package.json) into bpfcert packages."""

from __future__ import annotations

import json
import sys
from typing import Any

from bpfcert.errors import BpfcertError
from bpfcert.pack import read_regular_file


def read_json_file(path: str, limit: int) -> Any:
    """A JSON document from a regular file of at most `limit` bytes, which must be UTF-8."""
    data = read_regular_file(path, limit)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpfcertError(f"{path} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    return parse_json(text, path)


def parse_json(text: str, what: str) -> Any:
    """Strict JSON: no NaN or Infinity; too deep nesting and integers of more than 4,300 digits are refused
    with a one-line error rather than a crash."""

    def no_constant(token: str) -> Any:
        raise BpfcertError(f"{what}: {token} is not JSON")

    try:
        return json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as exc:
        raise BpfcertError(f"{what} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise BpfcertError(f"{what} is nested too deeply") from None
    except ValueError:  # the only other ValueError json raises: an integer beyond the interpreter's digit limit
        raise BpfcertError(f"{what} holds an integer of more than {sys.get_int_max_str_digits()} digits") from None
