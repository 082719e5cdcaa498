"""The catalogue commands: `bpfcert requirements` lists the standard's requirements, `bpfcert explain ID` prints
one with its clause from STANDARD.md and how to fix a failure."""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json

from bpfcert import spec
from bpfcert.errors import BpfcertError


def selected(profiles: list[str] | None) -> list[spec.Requirement]:
    """The requirements of `profiles` and of the profiles they include (all of them for None), in catalogue order."""
    known = spec.profiles()
    if profiles is None:
        return list(spec.catalogue().values())
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise BpfcertError(f"unknown profile {unknown[0]!r} (known: {', '.join(known)})")
    wanted = {included for p in profiles for included in known[p]}
    return [r for r in spec.catalogue().values() if r.profile in wanted]


def requirements(args: argparse.Namespace) -> int:
    rows = selected(args.profile)
    if args.format == "json":
        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=2))
        return 0
    width = max(len(r.profile) for r in rows)
    print(f"{'ID':<13} {'LEVEL':<6} {'PROFILE':<{width}} TITLE")
    for r in rows:
        print(f"{r.id:<13} {r.level:<6} {r.profile:<{width}} {r.title}")
    return 0


def explain(args: argparse.Namespace) -> int:
    req_id = args.id.strip().upper()
    catalogue = spec.catalogue()
    if req_id not in catalogue:
        close = difflib.get_close_matches(req_id, catalogue, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "`bpfcert requirements` lists them"
        raise BpfcertError(f"unknown requirement ID {args.id!r}; {hint}")
    r = catalogue[req_id]
    clause = "\n".join(f"  {line}" for line in spec.clause(req_id).splitlines())
    print(f"{r.id} · {r.level} · {r.profile}\n{r.title}\n")
    print(f"clause ({r.clause}):\n{clause}\n")
    print(f"fix: {r.fix}")
    return 0
