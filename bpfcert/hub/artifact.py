"""The hub format (STANDARD.md section 9): a package as an OCI artifact, built from a package directory and read
back into one. Manifests are serialised deterministically (sorted keys, no whitespace, no timestamps), so the same
package always gets the same digest.

- native: config = the package's `bpfpkg.json` bytes (`application/vnd.bpfcert.package.v1+json`), one layer per
  artifact (`application/vnd.bpfcert.object.v1+elf`, its path in `org.opencontainers.image.title`), `artifactType`,
  and annotations a catalogue reads without fetching a blob (title, version, description, source, licenses, requires);
- bpfman: an image config with the `io.ebpf.programs` / `io.ebpf.maps` labels and one reproducible tar+gzip layer
  holding the objects and `bpfpkg.json` at its root;
- index: one manifest per byte order (`bpfel`, `bpfeb`) in an OCI image index;
- signature: a `sha256-<hex>.sig` tag artifact whose one layer holds an Ed25519 signature over the signed manifest's
  descriptor."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from bpfcert.errors import BpfcertError, HubError
from bpfcert.hub.verify import digest_of

ARTIFACT_TYPE = "application/vnd.bpfcert.package.v1"
CONFIG_TYPE = "application/vnd.bpfcert.package.v1+json"
OBJECT_TYPE = "application/vnd.bpfcert.object.v1+elf"
SIGNATURE_TYPE = "application/vnd.bpfcert.signature.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
IMAGE_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
TAR_GZIP_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
TITLE = "org.opencontainers.image.title"
REQUIRES = "dev.bpfcert.package.requires"
ARCH = "dev.bpfcert.package.arch"
FORMATS = ("native", "bpfman")
BYTE_ORDERS = ("bpfel", "bpfeb")
MANIFEST_NAME = "bpfpkg.json"


def encode(document: dict[str, Any]) -> bytes:
    """The one serialisation of manifests, configs and signature payloads: sorted keys, no whitespace, UTF-8."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def descriptor(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": digest_of(self.data), "size": len(self.data)}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class Artifact:
    """A manifest (or index) to push, the blobs it names and, for an index, the manifests it lists."""

    manifest: bytes
    media_type: str
    blobs: tuple[Blob, ...] = ()
    children: tuple[Artifact, ...] = ()

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    @property
    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}


@dataclass(frozen=True)
class PackageFiles:
    """A package read for pushing: its manifest, the bytes of `bpfpkg.json` and each artifact by path."""

    manifest: dict[str, Any]
    config: bytes
    files: dict[str, bytes]

    @property
    def byte_order(self) -> str:
        orders = {a.get("arch", "bpfel") for a in self.manifest.get("artifacts", []) if isinstance(a, dict)}
        return orders.pop() if len(orders) == 1 else "mixed"


def read_package(path: str) -> PackageFiles:
    """The files of the package at `path` (directory, archive or manifest); HubError ("format") for a package
    that cannot be published: no readable manifest, or an artifact missing or not matching its sha256."""
    import hashlib

    from bpfcert.package import open_package, read_artifact, resolve_artifact

    with open_package(path) as pkg:
        manifest = pkg.manifest
        if not isinstance(manifest, dict) or pkg.manifest_path is None:
            reason = pkg.problems[0].message if pkg.problems else "no manifest"
            raise HubError(f"{path}: cannot publish: {reason}", "format")
        config = (
            pkg.manifest_path.read_bytes() if pkg.manifest_path.name == MANIFEST_NAME else encode(manifest)
        )
        files: dict[str, bytes] = {}
        for art in manifest.get("artifacts", []):
            rel = art.get("path") if isinstance(art, dict) else None
            if not isinstance(rel, str):
                raise HubError(f"{path}: cannot publish: an artifact without a path", "format")
            try:
                data = read_artifact(resolve_artifact(pkg, rel), 64 << 20)
            except (OSError, ValueError) as exc:
                raise HubError(f"{path}: cannot publish: artifact {rel}: {exc}", "format") from None
            if hashlib.sha256(data).hexdigest() != art.get("sha256"):
                raise HubError(f"{path}: cannot publish: artifact {rel} does not match its sha256 (PKG-ART-003)",
                               "format")
            files[rel] = data
    return PackageFiles(manifest, config, files)


def summary_annotations(manifest: dict[str, Any]) -> dict[str, str]:
    """What a catalogue shows without fetching a blob: name, version, description, source, licences and the
    `requires` summary (kernel range, program types, BTF) as compact JSON."""
    out = {
        TITLE: manifest.get("name"),
        "org.opencontainers.image.version": manifest.get("version"),
        "org.opencontainers.image.description": manifest.get("summary") or manifest.get("description"),
        "org.opencontainers.image.source": manifest.get("source") or manifest.get("homepage"),
        "org.opencontainers.image.licenses": manifest.get("license"),
    }
    requires = manifest.get("requires")
    summary = {k: requires[k] for k in ("kernel", "prog_types", "btf") if k in requires} if isinstance(
        requires, dict) else {}
    text = {k: v for k, v in out.items() if isinstance(v, str) and v}
    text[REQUIRES] = encode(summary).decode()
    return text


def build(package: PackageFiles, fmt: str = "native") -> Artifact:
    """The artifact of one package in format `fmt` (native or bpfman)."""
    if fmt == "bpfman":
        return _build_bpfman(package)
    config = Blob(CONFIG_TYPE, package.config)
    layers = tuple(Blob(OBJECT_TYPE, data, {TITLE: rel}) for rel, data in package.files.items())
    return _manifest(config, layers, ARTIFACT_TYPE, summary_annotations(package.manifest))


def _manifest(config: Blob, layers: tuple[Blob, ...], artifact_type: str | None, notes: dict[str, str],
              subject: dict[str, Any] | None = None) -> Artifact:
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": config.descriptor,
        "layers": [layer.descriptor for layer in layers],
        "annotations": notes,
    }
    if artifact_type:
        document["artifactType"] = artifact_type
    if subject:
        document["subject"] = subject
    return Artifact(encode(document), MANIFEST_TYPE, (config, *layers))


def _build_bpfman(package: PackageFiles) -> Artifact:
    from bpfcert.importers.bpfman import MAP_TYPES

    nested = [rel for rel in package.files if "/" in rel]
    if nested:
        raise HubError(f"the bpfman format holds objects at the layer root; {nested[0]} is in a directory", "format")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [*sorted(package.files.items()), (MANIFEST_NAME, package.config)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    layer = Blob(TAR_GZIP_TYPE, gzip.compress(raw.getvalue(), mtime=0))
    manifest = package.manifest
    program_types = {"sched_cls": "tc"}
    map_types = {ours: theirs for theirs, ours in MAP_TYPES.items()}
    labels = {
        "io.ebpf.programs": encode(
            {p["name"]: program_types.get(p["type"], p["type"]) for p in manifest.get("programs", [])}
        ).decode(),
        "io.ebpf.maps": encode({m["name"]: map_types.get(m["type"], m["type"]) for m in manifest.get("maps", [])})
        .decode(),
    }
    image_config = {
        "architecture": "amd64",  # bpfman's loaders ignore it; BPF byte code is not an instruction set of theirs
        "os": "linux",
        "config": {"Labels": labels},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(raw.getvalue())]},
    }
    return _manifest(Blob(IMAGE_CONFIG_TYPE, encode(image_config)), (layer,), None, summary_annotations(manifest))


def build_index(per_order: dict[str, Artifact], manifest: dict[str, Any]) -> Artifact:
    """An image index of one manifest per byte order (annotated `dev.bpfcert.package.arch`)."""
    entries = []
    for order in BYTE_ORDERS:
        if order in per_order:
            entries.append({**per_order[order].descriptor, "artifactType": ARTIFACT_TYPE,
                            "annotations": {ARCH: order}})
    document = {"schemaVersion": 2, "mediaType": INDEX_TYPE, "artifactType": ARTIFACT_TYPE, "manifests": entries,
                "annotations": summary_annotations(manifest)}
    return Artifact(encode(document), INDEX_TYPE, (), tuple(per_order[o] for o in BYTE_ORDERS if o in per_order))


def signature_tag(digest: str) -> str:
    """The tag of the signature artifact of the manifest `digest` (`sha256-<hex>.sig`)."""
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}.sig"


def build_signature(subject: dict[str, Any], private_key_pem: bytes) -> Artifact:
    """The signature artifact of the manifest `subject` (a descriptor): one layer {algorithm, public_key, value,
    signed}, `value` the Ed25519 signature of the canonical descriptor `signed`."""
    from bpfcert.signing import load_private_key, public_key_b64

    try:
        key = load_private_key(private_key_pem)
    except BpfcertError as exc:
        raise HubError(str(exc), "signature") from None
    signed = {k: subject[k] for k in ("mediaType", "digest", "size")}
    payload = {
        "algorithm": "ed25519",
        "public_key": public_key_b64(key),
        "value": base64.b64encode(key.sign(encode(signed))).decode(),
        "signed": signed,
    }
    empty = Blob(EMPTY_TYPE, b"{}")
    layer = Blob(SIGNATURE_TYPE, encode(payload))
    return _manifest(empty, (layer,), SIGNATURE_TYPE, {"dev.bpfcert.signature.subject": subject["digest"]},
                     subject=signed)


def verify_signature(payload: bytes, digest: str, trusted: list[str]) -> str | None:
    """None if `payload` (a signature layer) signs the manifest `digest` with one of the `trusted` public keys
    (base64 raw Ed25519), else the reason."""
    from bpfcert.signing import verify_ed25519

    try:
        data = json.loads(payload)
        signed, key, value = data["signed"], data["public_key"], data["value"]
        if not isinstance(signed, dict) or not isinstance(key, str) or not isinstance(value, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return "the signature payload is not {algorithm, public_key, value, signed}"
    if signed.get("digest") != digest:
        return f"the signature signs {signed.get('digest')}, not {digest}"
    if key not in trusted:
        return f"signed by an untrusted key {key}"
    problem = verify_ed25519(key, value, encode(signed), "signed manifest digest")
    return f"the signature does not verify: {problem}" if problem else None


def safe_path(rel: Any) -> str:
    """An artifact path from a pulled manifest, refused unless it is relative, plain and inside the package."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\0" in rel:
        raise HubError(f"unsafe artifact path {rel!r} in the pulled manifest", "format")
    parts = PurePosixPath(rel).parts
    if rel.startswith("/") or any(p in ("..", ".") for p in parts) or len(rel) > 1024:
        raise HubError(f"unsafe artifact path {rel!r} in the pulled manifest", "format")
    return rel


def untar_layer(data: bytes) -> dict[str, bytes]:
    """The regular files at the root of a bpfman layer (tar+gzip); HubError for anything else in it."""
    import zlib

    from bpfcert.package import ARCHIVE_MAX_BYTES

    files: dict[str, bytes] = {}
    try:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip, bounded: a layer is no gzip bomb
        raw = inflate.decompress(data, ARCHIVE_MAX_BYTES + 1)
        if len(raw) > ARCHIVE_MAX_BYTES or inflate.unconsumed_tail:
            raise HubError(f"the bpfman layer inflates to over {ARCHIVE_MAX_BYTES} bytes", "format")
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isreg() or "/" in name or name in ("", "..", ".") or name in files:
                    raise HubError(f"the bpfman layer holds {member.name!r}: only regular files at its root",
                                   "format")
                if len(files) >= 1000:
                    raise HubError("the bpfman layer holds over 1000 files", "format")
                stream = tar.extractfile(member)
                assert stream is not None
                files[name] = stream.read()
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise HubError(f"the bpfman layer is not tar+gzip: {exc}", "format") from None
    return files
