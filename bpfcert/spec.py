"""Access to the standard as data: schemas and the requirement catalogue under spec/."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcert.errors import BpfcertError

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"


@dataclass(frozen=True)
class Requirement:
    id: str
    level: str  # MUST | SHOULD | MAY (RFC 2119)
    profile: str
    title: str


def _load(name: str) -> Any:
    path = SPEC_DIR / name
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise BpfcertError(f"cannot read the standard's {name}: {exc.strerror} ({path})") from None


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """A schema from spec/, e.g. schema("package") for spec/package.schema.json."""
    loaded: dict[str, Any] = _load(f"{name}.schema.json")
    return loaded


@functools.cache
def catalogue() -> dict[str, Requirement]:
    """Requirement ID -> Requirement, from spec/requirements.json."""
    data = _load("requirements.json")
    return {r["id"]: Requirement(r["id"], r["level"], r["profile"], r["title"]) for r in data["requirements"]}


@functools.cache
def profiles() -> dict[str, list[str]]:
    """Profile name -> the profiles it includes (itself first)."""
    data = _load("requirements.json")
    out: dict[str, list[str]] = {}
    for name, spec in data["profiles"].items():
        out[name] = [name, *spec.get("includes", [])]
    return out


@functools.cache
def profile_applies_to() -> dict[str, str]:
    """Profile name -> what its requirements judge: "package" or "kernel"."""
    return {name: p["appliesTo"] for name, p in _load("requirements.json")["profiles"].items()}


def requirement(req_id: str) -> Requirement:
    try:
        return catalogue()[req_id]
    except KeyError:
        raise BpfcertError(f"unknown requirement ID {req_id}") from None
