"""Handlers of the hub commands: push, pull, and hub ls / export / import."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _trusted(values: list[str]) -> tuple[str, ...]:
    """--trusted-key values: base64 public keys, or files holding one (as `bpfcert pack` prints them)."""
    from bpfcert.pack import read_key_file

    keys = []
    for value in values:
        path = Path(value)
        key = read_key_file(path).decode("utf-8", "replace") if path.exists() else value
        keys.append(key.strip())
    return tuple(keys)


def push(args: argparse.Namespace) -> int:
    from bpfcert.hub import reference, transfer
    from bpfcert.pack import read_key_file

    ref = reference.parse(args.ref)
    digest = transfer.push(args.package, ref, args.format, read_key_file(args.sign_key) if args.sign_key else None)
    print(f"pushed {ref.at(tag=ref.tag or reference.DEFAULT_TAG, digest=digest)}")
    return 0


def pull(args: argparse.Namespace) -> int:
    from bpfcert.hub import reference, transfer

    ref = reference.parse(args.ref)
    policy = transfer.Policy(args.require_signature, _trusted(args.trusted_key))
    pulled = transfer.fetch(ref, policy, args.arch)
    root = transfer.write(pulled, args.output)
    print(f"pulled {ref.at(tag=ref.tag, digest=pulled.digest)} into {root} (signature: {pulled.signature})")
    return 0


def hub(args: argparse.Namespace) -> int:
    from bpfcert.hub import reference, transfer

    if args.action == "ls":
        from bpfcert.hub.registry import Registry

        ref = reference.parse(args.where, repository_required=False)
        registry = Registry(ref)
        try:
            names = registry.tags(ref.repository, args.n) if ref.repository else registry.catalogue(args.n)
        finally:
            registry.close()
        key = "tags" if ref.repository else "repositories"
        sys.stdout.write(json.dumps({key: names}, indent=2) + "\n" if args.format == "json" else
                         "".join(f"{name}\n" for name in names))
        return 0
    if args.action == "export":
        digest = transfer.copy(reference.parse(args.ref), reference.parse(f"oci-layout:{args.directory}"))
    else:
        target = reference.parse(args.ref)
        name = args.name or target.tag or reference.DEFAULT_TAG
        digest = transfer.copy(reference.parse(f"oci-layout:{args.directory}:{name}"), target)
    print(f"copied {digest}")
    return 0
