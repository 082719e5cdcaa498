"""Access to the standard as data: schemas, the requirement catalogue and the clauses of STANDARD.md under spec/."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from bpfcert import bundled
from bpfcert.errors import BpfcertError

SPEC_DIR = bundled.directory("spec")


@dataclasses.dataclass(frozen=True)
class Requirement:
    id: str
    level: str  # MUST | SHOULD | MAY (RFC 2119)
    profile: str
    title: str
    clause: str  # "STANDARD.md#<anchor>"
    fix: str  # one line: how to fix a failure


def _read(name: str) -> str:
    path = SPEC_DIR / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BpfcertError(f"cannot read the standard's {name}: {exc.strerror} ({path})") from None


def _load(name: str) -> Any:
    return json.loads(_read(name))


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """A schema from spec/, e.g. schema("package") for spec/package.schema.json."""
    loaded: dict[str, Any] = _load(f"{name}.schema.json")
    return loaded


@functools.cache
def catalogue() -> dict[str, Requirement]:
    """Requirement ID -> Requirement, from spec/requirements.json."""
    data = _load("requirements.json")
    fields = [f.name for f in dataclasses.fields(Requirement)]
    return {r["id"]: Requirement(**{k: r[k] for k in fields}) for r in data["requirements"]}


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


def clause(req_id: str) -> str:
    """The text of a requirement's clause in STANDARD.md: what follows its anchor and heading, up to the next."""
    anchor = f'<a id="{requirement(req_id).clause.partition("#")[2]}"></a>'
    lines = _read("STANDARD.md").splitlines()
    if anchor not in lines:
        raise BpfcertError(f"{req_id}: STANDARD.md has no clause {anchor}")
    body: list[str] = []
    for line in lines[lines.index(anchor) + 2 :]:
        if line.startswith(("<a id=", "#")):
            break
        body.append(line)
    return "\n".join(body).strip()
