"""Installing from a hub: a package reference (`oci://HOST:PORT/REPO:TAG`, `@sha256:` digest, or
`oci-layout:DIR:TAG` for a layout the harness exported where a guest without network sees it) is pulled through
bpfcert's hub client, every digest verified, into a private temporary directory, and installed from there; the
runtime records the reference and the digest it resolved to (HUB-CLI-004). With `$BPFCERT_REFERENCE_TRUSTED_KEYS`
(comma-separated base64 Ed25519 public keys) a signature artifact by one of them is required."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bpfcert.runners.serve import RunnerFailure

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any

TRUSTED_KEYS_ENV = "BPFCERT_REFERENCE_TRUSTED_KEYS"


@contextlib.contextmanager
def fetched(package: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(a local package path, the source record {reference, digest} or None for a local package)."""
    if os.path.exists(package):  # a local package: no need to import the hub's modules to tell
        yield package, None
        return
    from bpfcert.hub.reference import is_reference

    if not is_reference(package):
        yield package, None
        return
    import tempfile

    from bpfcert.errors import HubError
    from bpfcert.hub import reference, transfer

    keys = tuple(k.strip() for k in os.environ.get(TRUSTED_KEYS_ENV, "").split(",") if k.strip())
    try:
        ref = reference.parse(package)
        pulled = transfer.fetch(ref, transfer.Policy(require_signature=bool(keys), trusted_keys=keys))
    except HubError as exc:
        raise RunnerFailure("bad-signature" if exc.kind == "signature" else "invalid-package", str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="refruntime-pull-") as tmp:
        path = transfer.write(pulled, os.path.join(tmp, "package"))
        yield str(path), {"reference": package, "digest": pulled.digest}
