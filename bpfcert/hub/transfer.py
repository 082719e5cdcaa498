"""Push, pull and copy packages between a package directory, registries and OCI image layouts. Pulling verifies
everything before writing anything: the manifest against its digest, every blob against its descriptor, every
artifact against the sha256 the package manifest gives it, and (when the policy asks) the signature artifact."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from bpfcert.errors import HubError
from bpfcert.hub import artifact
from bpfcert.hub.artifact import INDEX_TYPE, MANIFEST_NAME, Artifact, Blob
from bpfcert.hub.layout import Layout
from bpfcert.hub.reference import DEFAULT_TAG, Reference
from bpfcert.hub.registry import Fetched, Registry

ROUND_TRIPS = 4  # blobs of one package fetched or pushed at once
T = TypeVar("T")
R = TypeVar("R")


class Source(Protocol):
    """Where packages are pulled from: a registry or an OCI image layout; both verify what they return."""

    def manifest(self, ref: Reference) -> Fetched: ...

    def blob(self, repository: str, descriptor: dict[str, Any]) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Policy:
    """What a pull demands: a signature artifact by one of `trusted_keys` (base64 raw Ed25519 public keys)."""

    require_signature: bool = False
    trusted_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pulled:
    """A verified package: the digest it was pulled at (index or manifest), the manifest of its byte order (as
    served, verified), the package files by path (bpfpkg.json included) and the signature check's outcome."""

    digest: str
    manifest: dict[str, Any]
    files: dict[str, bytes]
    signature: str  # "verified", "absent" or "not checked"

    @property
    def package(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.files[MANIFEST_NAME])
        return data


def open_source(ref: Reference) -> Registry | Layout:
    return Layout(ref.layout) if ref.layout else Registry(ref)


def at_once(call: Callable[[T], R], items: list[T]) -> list[R]:
    """`call` on every item (a registry round trip each), up to ROUND_TRIPS at a time; the results in order."""
    if len(items) < 2:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(ROUND_TRIPS, len(items)), thread_name_prefix="bpfcert-hub") as pool:
        return list(pool.map(call, items))


# --- push ------------------------------------------------------------------------------------------------------


def build(paths: list[str], fmt: str = "native") -> tuple[Artifact, dict[str, Any]]:
    """The artifact of one package, or the index of one package per byte order; and the (first) manifest."""
    packages = [artifact.read_package(p) for p in paths]
    if len(packages) == 1:
        return artifact.build(packages[0], fmt), packages[0].manifest
    per_order: dict[str, Artifact] = {}
    for path, pkg in zip(paths, packages, strict=True):
        order = pkg.byte_order
        if order not in artifact.BYTE_ORDERS or order in per_order:
            raise HubError(f"{path}: an index needs one package per byte order (bpfel, bpfeb); this one is "
                           f"{order}" + (" again" if order in per_order else ""), "format")
        per_order[order] = artifact.build(pkg, fmt)
    return artifact.build_index(per_order, packages[0].manifest), packages[0].manifest


def upload(registry: Registry, ref: Reference, item: Artifact) -> str:
    """Push an artifact (children first, blobs before their manifest) under `ref`; its digest."""
    for child in item.children:
        upload(registry, ref.at(digest=child.digest), child)
    unique = list({b.descriptor["digest"]: b for b in item.blobs}.values())
    at_once(lambda blob: registry.put_blob(ref.repository, blob), unique)
    return registry.put_manifest(ref if ref.tag or ref.digest else ref.at(tag=DEFAULT_TAG), item.manifest,
                                 item.media_type)


def push(paths: list[str], ref: Reference, fmt: str = "native", sign_key: bytes | None = None) -> str:
    """Publish the package(s) at `paths` to the registry `ref` names; the pushed manifest's digest. With
    `sign_key`, the signature artifact goes under the tag `sha256-<hex>.sig`."""
    if ref.layout or not ref.repository:
        raise HubError(f"{ref}: push needs a registry repository (oci://HOST:PORT/REPO:TAG)", "format")
    item, _ = build(paths, fmt)
    registry = Registry(ref)
    try:
        if ref.digest and ref.digest != item.digest:
            raise HubError(f"{ref}: the package's digest is {item.digest}", "format")
        digest = upload(registry, ref, item)
        if sign_key is not None:
            signature = artifact.build_signature(item.descriptor, sign_key)
            upload(registry, ref.at(tag=artifact.signature_tag(digest)), signature)
        return digest
    finally:
        registry.close()


# --- pull ------------------------------------------------------------------------------------------------------


def document(fetched: Fetched, what: str) -> dict[str, Any]:
    try:
        data = json.loads(fetched.data)
    except ValueError:
        raise HubError(f"{what}: the manifest is not JSON", "format") from None
    if not isinstance(data, dict):
        raise HubError(f"{what}: the manifest is not a JSON object", "format")
    return data


def signature_of(source: Source, ref: Reference, digest: str, policy: Policy) -> str:
    """"verified" if the signature artifact of `digest` verifies with a trusted key, "absent" if there is none
    and the policy allows it; HubError ("signature") otherwise."""
    try:
        fetched = source.manifest(ref.at(tag=artifact.signature_tag(digest)))
    except HubError as exc:
        if exc.kind != "not-found":
            raise
        if policy.require_signature:
            raise HubError(f"{ref}: no signature artifact ({artifact.signature_tag(digest)}) and the policy "
                           "requires one (HUB-CLI-003)", "signature") from None
        return "absent"
    layers = document(fetched, f"signature of {ref}").get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise HubError(f"{ref}: the signature artifact does not hold exactly one layer", "signature")
    payload = source.blob(ref.repository, layers[0])
    problem = artifact.verify_signature(payload, digest, list(policy.trusted_keys))
    if problem:
        raise HubError(f"{ref}: signature refused: {problem} (HUB-CLI-003)", "signature")
    return "verified"


def fetch(ref: Reference, policy: Policy | None = None, byte_order: str | None = None,
          source: Source | None = None) -> Pulled:
    """Pull and verify the package `ref` names, in memory; HubError on any mismatch. `source`: an open source for
    `ref` (left open), whose connections a pull of many packages reuses."""
    policy = policy or Policy()
    if source is None:
        with contextlib.closing(open_source(ref)) as opened:
            return fetch(ref, policy, byte_order, opened)
    top = source.manifest(ref)
    signature = "not checked"
    if policy.require_signature or policy.trusted_keys:
        signature = signature_of(source, ref, top.digest, policy)
    fetched, data = top, document(top, str(ref))
    if data.get("mediaType", fetched.media_type) == INDEX_TYPE:
        order = byte_order or ("bpfel" if sys.byteorder == "little" else "bpfeb")
        entry = next((m for m in data.get("manifests", []) if isinstance(m, dict)
                      and m.get("annotations", {}).get(artifact.ARCH) == order), None)
        if entry is None:
            raise HubError(f"{ref}: the index has no {order} package", "not-found")
        fetched = source.manifest(ref.at(digest=str(entry.get("digest"))))
        data = document(fetched, str(ref))
    return Pulled(top.digest, data, unpack(source, ref, data), signature)


def unpack(source: Source, ref: Reference, data: dict[str, Any]) -> dict[str, bytes]:
    """The package files a (verified) manifest describes, every blob verified, then checked against the sha256
    values of the package manifest (a layer whose verified digest is that sha256 is not hashed again)."""
    import hashlib

    config, layers = data.get("config"), data.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
        raise HubError(f"{ref}: the manifest has no config or layers", "format")
    verified: dict[str, str] = {}  # path -> the digest its bytes were verified against
    if config.get("mediaType") == artifact.CONFIG_TYPE:
        names = [artifact.safe_path(layer.get("annotations", {}).get(artifact.TITLE)) for layer in layers]
        duplicate = next((n for i, n in enumerate(names) if n in names[:i] or n == MANIFEST_NAME), None)
        if duplicate is not None:
            raise HubError(f"{ref}: two layers named {duplicate}", "format")
        config_data, *contents = at_once(lambda d: source.blob(ref.repository, d), [config, *layers])
        files = {MANIFEST_NAME: config_data, **dict(zip(names, contents, strict=True))}
        verified = {n: str(layer.get("digest")) for n, layer in zip(names, layers, strict=True)}
    elif config.get("mediaType") == artifact.IMAGE_CONFIG_TYPE and len(layers) == 1:
        files = artifact.untar_layer(source.blob(ref.repository, layers[0]))
    else:
        raise HubError(f"{ref}: not a bpfcert package (config media type {config.get('mediaType')!r})", "format")
    try:
        package = json.loads(files[MANIFEST_NAME])
        named = {a["path"]: a["sha256"] for a in package["artifacts"]}
    except (KeyError, ValueError, TypeError):
        raise HubError(f"{ref}: the package manifest is missing or has no readable artifacts list", "format") from None
    for rel, sha in named.items():
        if rel not in files or (verified.get(rel) != f"sha256:{sha}"
                                and hashlib.sha256(files[rel]).hexdigest() != sha):
            raise HubError(f"{ref}: artifact {rel} is missing or does not match the sha256 in {MANIFEST_NAME}",
                           "digest-mismatch")
    return files


def write(pulled: Pulled, out: str | os.PathLike[str]) -> Path:
    """Write a verified package into `out` (a new or empty directory)."""
    root = Path(out)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if any(root.iterdir()):
            raise HubError(f"{root} is not empty; pull writes into a new or empty directory", "format")
        for rel, data in pulled.files.items():
            path = root / artifact.safe_path(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "xb") as f:
                f.write(data)
    except OSError as exc:
        raise HubError(f"cannot write the package into {root}: {exc.strerror or exc}", "format") from None
    return root


# --- copy (export, import, mirroring) -------------------------------------------------------------------------


def graph(source: Source, ref: Reference) -> list[tuple[Fetched, list[tuple[dict[str, Any], bytes]]]]:
    """Every manifest under `ref` (children first) with its blobs, all verified."""
    top = source.manifest(ref)
    data = document(top, str(ref))
    out: list[tuple[Fetched, list[tuple[dict[str, Any], bytes]]]] = []
    if data.get("mediaType", top.media_type) == INDEX_TYPE:
        for entry in data.get("manifests", []):
            out += graph(source, ref.at(digest=str(entry.get("digest"))))
        out.append((top, []))
        return out
    descriptors = [data.get("config"), *(data.get("layers") or [])]
    named = [d for d in descriptors if isinstance(d, dict)]
    blobs = list(zip(named, at_once(lambda d: source.blob(ref.repository, d), named), strict=True))
    out.append((top, blobs))
    return out


def copy(src: Reference, dst: Reference) -> str:
    """Copy the package `src` names, its index children and its signature artifact (if any) to `dst` (a registry
    repository or a layout), verifying everything read; the copied manifest's digest (unchanged by the copy)."""
    source = open_source(src)
    target = open_source(dst)
    if isinstance(target, Layout):
        target.create()
    try:
        items = graph(source, src)
        digest = items[-1][0].digest
        tags = {digest: dst.tag or src.tag or DEFAULT_TAG}
        try:
            signature = graph(source, src.at(tag=artifact.signature_tag(digest)))
        except HubError as exc:
            if exc.kind != "not-found":
                raise
            signature = []
        if signature:
            items += signature
            tags[signature[-1][0].digest] = artifact.signature_tag(digest)
        for fetched, blobs in items:
            _store(target, dst, fetched, blobs, tags.get(fetched.digest, ""))
        return digest
    finally:
        source.close()
        target.close()


def _store(target: Registry | Layout, dst: Reference, fetched: Fetched, blobs: list[tuple[dict[str, Any], bytes]],
           tag: str) -> None:
    media_type = fetched.media_type or str(json.loads(fetched.data).get("mediaType", ""))
    if isinstance(target, Layout):
        for _, data in blobs:
            target.put_blob(data)
        target.put_blob(fetched.data)
        if tag:
            target.tag(tag, {"mediaType": media_type, "digest": fetched.digest, "size": len(fetched.data)})
        return
    for descriptor, data in blobs:
        target.put_blob(dst.repository, Blob(str(descriptor.get("mediaType")), data))
    target.put_manifest(dst.at(tag=tag) if tag else dst.at(digest=fetched.digest), fetched.data, media_type)

