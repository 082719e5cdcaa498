"""Profile selection: which profiles `bpfcert check` judges a package against."""

from __future__ import annotations

from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError

# where the profiles that do not judge packages are judged instead
ELSEWHERE = {"kernel": "see bpfcert probe", "runtime": "run the conformance suite with --runtime NAME"}


def selected_profiles(manifest: dict[str, Any] | None, requested: list[str] | None) -> list[str]:
    """The profiles to check: those requested, else the package profiles the package claims; package-core always.

    Only profiles that apply to packages can be requested (BpfcertError otherwise)."""
    known = spec.profiles()
    applies = spec.profile_applies_to()
    names = list(requested or [])
    if not names and manifest and isinstance(manifest.get("conformsTo"), list):
        names = [p for p in manifest["conformsTo"] if isinstance(p, str) and applies.get(p) == "package"]
    out: list[str] = ["package-core"]
    for name in names:
        if name not in known:
            raise BpfcertError(f"unknown profile {name!r} (known: {', '.join(sorted(known))})")
        if applies[name] != "package":
            where = ELSEWHERE[applies[name]]
            raise BpfcertError(f"profile {name} applies to {applies[name]} targets, not packages; {where}")
        out.extend(p for p in known[name] if p not in out)
    return out
