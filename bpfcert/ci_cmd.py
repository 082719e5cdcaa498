"""`bpfcert ci matrix`: the certification split into CI shards, one per target x profile, as a GitHub Actions matrix
(`strategy.matrix: ${{ fromJSON(...) }}`); each entry names its shard, whose results stream `bpfcert report
merge` expects (.github/workflows/certify.yml)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.targets.series import HOST, SERIES


def matrix(targets: list[str], profiles: list[str]) -> dict[str, list[dict[str, Any]]]:
    """{"include": [{"target", "profile", "shard"}, ...]}: every target with every profile."""
    return {"include": [{"target": t, "profile": p, "shard": f"{t}-{p}"} for t in targets for p in profiles]}


def command(args: argparse.Namespace) -> int:
    known_targets, known_profiles = [HOST, *SERIES], list(spec.profiles())
    targets = args.target or known_targets
    profiles = args.profile or known_profiles
    for what, chosen, known in (("target", targets, known_targets), ("profile", profiles, known_profiles)):
        unknown = [x for x in chosen if x not in known]
        if unknown:
            raise BpfcertError(f"unknown {what}(s) {', '.join(unknown)} (known: {', '.join(known)})")
    print(json.dumps(matrix(targets, profiles), separators=(",", ":")))
    return 0
