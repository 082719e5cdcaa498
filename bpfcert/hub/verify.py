"""Digest verification: every manifest and blob a hub serves is checked against the digest (and size) that names
it before anything is written or used. Registries serve what their storage holds, and common clients pass it on
unchecked; bpfcert does not."""

from __future__ import annotations

import hashlib
from typing import Any

from bpfcert.errors import HubError

MANIFEST_MAX_BYTES = 4 << 20  # the distribution spec lets registries refuse manifests over 4 MiB
BLOB_MAX_BYTES = 64 << 20  # an artifact's limit (PKG-ART-002); the package config is far smaller


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(data: bytes, digest: str, what: str) -> str:
    """`digest`, once `data` is seen to hash to it; HubError ("digest-mismatch") otherwise."""
    if not digest.startswith("sha256:"):
        raise HubError(f"{what}: unsupported digest algorithm in {digest!r} (only sha256)", "format")
    actual = digest_of(data)
    if actual != digest:
        raise HubError(f"{what}: digest mismatch, expected {digest}, the bytes served hash to {actual}; refused, "
                       "nothing written", "digest-mismatch")
    return digest


def check_descriptor(data: bytes, descriptor: dict[str, Any], what: str) -> str:
    """The descriptor's digest, once `data` is seen to have its size (when it gives one) and digest; HubError
    otherwise."""
    size = descriptor.get("size")
    if isinstance(size, int) and len(data) != size:
        raise HubError(f"{what}: {len(data)} bytes served, the descriptor says {size}; refused, nothing written",
                       "digest-mismatch")
    return check_digest(data, str(descriptor.get("digest", "")), what)
