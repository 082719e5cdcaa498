"""`bpfcert ci matrix`: the certification split into CI shards, one per target x profile (or, `--shard-by arch`, one
per architecture x profile, running that architecture's targets), as a GitHub Actions matrix (`strategy.matrix:
${{ fromJSON(...) }}`); each entry names its shard, whose results stream `bpfcert report merge` expects
(.github/workflows/certify.yml), and its architecture (Debian's name: amd64, arm64, s390x)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.targets.machines import ARCHES
from bpfcert.targets.series import TargetName


def arch_of(target: str) -> str:
    """The Debian architecture a target name runs on ("amd64" for "6.1" and the host here, "arm64" for "6.1/arm64")."""
    machine = TargetName.parse(target).arch
    return ARCHES[machine].debian if machine in ARCHES else machine


def matrix(targets: list[str], profiles: list[str], by: str = "target") -> dict[str, list[dict[str, Any]]]:
    """{"include": [{"target", "arch", "profile", "shard"}, ...]}: every target with every profile, or (`by`
    "arch") every architecture with every profile, `target` then listing its targets comma-separated."""
    groups: dict[str, list[str]] = {}
    for t in targets:
        groups.setdefault(t if by == "target" else arch_of(t), []).append(t)
    return {"include": [
        {"target": ",".join(ts), "arch": arch_of(ts[0]), "profile": p, "shard": f"{key.replace('/', '-')}-{p}"}
        for key, ts in groups.items() for p in profiles
    ]}  # fmt: skip


def _targets(chosen: list[str] | None) -> list[str]:
    """The target names chosen (default all: host and every x86_64 series), each as `--target` resolves it
    (bpfcert.targets.target.resolve_names), in their canonical spelling; TargetError naming an unknown one."""
    from bpfcert.targets.target import resolve_names

    return list(dict.fromkeys(name for text in chosen or ["all"] for name in resolve_names(text)))


def command(args: argparse.Namespace) -> int:
    known_profiles = list(spec.profiles())
    targets = _targets(args.target)
    profiles = args.profile or known_profiles
    unknown = [x for x in profiles if x not in known_profiles]
    if unknown:
        raise BpfcertError(f"unknown profile(s) {', '.join(unknown)} (known: {', '.join(known_profiles)})")
    print(json.dumps(matrix(targets, profiles, args.shard_by), separators=(",", ":")))
    return 0
