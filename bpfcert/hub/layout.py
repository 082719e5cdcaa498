"""OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), for offline sites and for guests
without network: read as a hub (every blob verified against its digest, like a registry's), written by export."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from bpfcert.errors import HubError
from bpfcert.hub.artifact import INDEX_TYPE, encode
from bpfcert.hub.reference import DEFAULT_TAG, Reference
from bpfcert.hub.registry import Fetched
from bpfcert.hub.verify import BLOB_MAX_BYTES, MANIFEST_MAX_BYTES, check_descriptor, digest_of

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_FILE = {"imageLayoutVersion": "1.0.0"}


class Layout:
    """The OCI image layout at `directory`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)

    def close(self) -> None:
        """Nothing to release (a registry's client has a session)."""

    def index(self) -> dict[str, Any]:
        """index.json, or HubError ("not-found"/"format") for a directory that is not an OCI image layout."""
        try:
            layout = json.loads((self.root / "oci-layout").read_bytes())
            index = json.loads(_read(self.root / "index.json", MANIFEST_MAX_BYTES))
        except FileNotFoundError:
            raise HubError(f"{self.root} is not an OCI image layout (no oci-layout, index.json)", "not-found") from None
        except (OSError, ValueError) as exc:
            raise HubError(f"{self.root}: unreadable OCI image layout: {exc}", "format") from None
        if not isinstance(layout, dict) or not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
            raise HubError(f"{self.root}: oci-layout or index.json is not what the OCI image layout says", "format")
        return index

    def tags(self) -> dict[str, dict[str, Any]]:
        """ref name -> descriptor, from index.json."""
        out: dict[str, dict[str, Any]] = {}
        for entry in self.index()["manifests"]:
            name = entry.get("annotations", {}).get(REF_NAME) if isinstance(entry, dict) else None
            if isinstance(name, str):
                out[name] = entry
        return out

    def manifest(self, ref: Reference) -> Fetched:
        """The manifest `ref` names (by digest, or by its ref name in index.json), verified."""
        if ref.digest:
            descriptor: dict[str, Any] = {"digest": ref.digest}
        else:
            found = self.tags().get(ref.tag or DEFAULT_TAG)
            if found is None:
                raise HubError(f"{ref}: no manifest named {ref.tag or DEFAULT_TAG!r} in {self.root}/index.json",
                               "not-found")
            descriptor = found
        data = self._blob_bytes(str(descriptor.get("digest", "")), MANIFEST_MAX_BYTES)
        digest = check_descriptor(data, descriptor, f"manifest {ref}")
        try:
            media_type = json.loads(data).get("mediaType", "")
        except (ValueError, AttributeError):
            raise HubError(f"manifest {ref} is not a JSON object", "format") from None
        return Fetched(data, str(descriptor.get("mediaType") or media_type), digest)

    def blob(self, repository: str, descriptor: dict[str, Any]) -> bytes:
        size = descriptor.get("size")
        if not isinstance(size, int) or size < 0 or size > BLOB_MAX_BYTES:
            raise HubError(f"blob {descriptor.get('digest')}: size {size!r} outside 0..{BLOB_MAX_BYTES}", "format")
        data = self._blob_bytes(str(descriptor.get("digest", "")), size)
        check_descriptor(data, descriptor, f"blob {descriptor.get('digest')} of {self.root}")
        return data

    def _blob_bytes(self, digest: str, limit: int) -> bytes:
        algorithm, _, hexdigest = digest.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
            raise HubError(f"{self.root}: bad digest {digest!r}", "format")
        try:
            return _read(self.root / "blobs" / "sha256" / hexdigest, limit)
        except FileNotFoundError:
            raise HubError(f"{self.root}: blob {digest} is missing", "not-found") from None
        except OSError as exc:
            raise HubError(f"{self.root}: cannot read blob {digest}: {exc.strerror}", "format") from None

    # --- writing -------------------------------------------------------------------------------------------------

    def create(self) -> None:
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        if not (self.root / "oci-layout").exists():
            (self.root / "oci-layout").write_bytes(encode(LAYOUT_FILE))
        if not (self.root / "index.json").exists():
            (self.root / "index.json").write_bytes(encode({"schemaVersion": 2, "mediaType": INDEX_TYPE,
                                                           "manifests": []}))

    def put_blob(self, data: bytes) -> None:
        """Write a blob (already verified) under its digest, atomically."""
        path = self.root / "blobs" / "sha256" / digest_of(data).split(":", 1)[1]
        if not path.exists():
            partial = path.with_suffix(".partial")
            partial.write_bytes(data)
            partial.replace(path)

    def tag(self, name: str, descriptor: dict[str, Any]) -> None:
        """Name a manifest in index.json (replacing what the name named before)."""
        index = self.index()
        kept = [e for e in index["manifests"] if e.get("annotations", {}).get(REF_NAME) != name]
        entry = {k: descriptor[k] for k in ("mediaType", "digest", "size")}
        entry["annotations"] = {REF_NAME: name}
        index["manifests"] = [*kept, entry]
        partial = self.root / "index.json.partial"
        partial.write_bytes(encode(index))
        partial.replace(self.root / "index.json")


def _read(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file, not through a symbolic link; OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(21, "not a regular file")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(27, f"larger than {limit} bytes")
    return data
