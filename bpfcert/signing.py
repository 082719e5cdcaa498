"""Ed25519 manifest signatures over the canonical manifest (STANDARD.md, "Canonical form and signing"), and the key
handling that report signatures (bpfcert.report.sign) share."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from bpfcert.errors import BpfcertError, ManifestError
from bpfcert.package import canonical_manifest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "ed25519"
# The encodings of Ed25519's points of small order (8P = identity; libsodium refuses the same list). With such a
# public key an all-zero signature verifies on some OpenSSL builds (seen in an s390x guest), so none is accepted.
SMALL_ORDER_KEYS = frozenset(bytes.fromhex(h) for h in (
    "01" + "00" * 31, "ec" + "ff" * 30 + "7f", "00" * 32, "00" * 31 + "80",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
))  # fmt: skip


def generate_key() -> tuple[bytes, str]:
    """A new key pair: (PKCS#8 PEM private key, base64 of the raw 32-byte public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, base64.b64encode(raw).decode("ascii")


def load_private_key(private_key_pem: bytes | str) -> Ed25519PrivateKey:
    """The Ed25519 private key of an unencrypted PEM; BpfcertError saying why for anything else."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BpfcertError(f"cannot use the signing key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BpfcertError(f"the signing key is a {type(key).__name__}, not an Ed25519 private key")
    return key


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """Base64 of the raw 32-byte public half of `key`: how signatures and trusted-keys files name a signer."""
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign_manifest(manifest: dict[str, Any], private_key_pem: bytes | str) -> dict[str, Any]:
    """A copy of the manifest carrying a signature made with the given PEM Ed25519 private key; ManifestError if
    the manifest has no canonical form."""
    key = load_private_key(private_key_pem)
    signed = {k: v for k, v in manifest.items() if k != "signature"}
    signed["signature"] = {
        "algorithm": ALGORITHM,
        "public_key": public_key_b64(key),
        "value": base64.b64encode(key.sign(canonical_manifest(signed))).decode("ascii"),
    }
    return signed


def verify_ed25519(public_key: str, signature: str, message: bytes, what: str) -> str | None:
    """None if `signature` (base64) is `public_key`'s (base64 of a raw Ed25519 key) over `message`, else the
    reason, naming the message as `what`. Keys of small order are refused (SMALL_ORDER_KEYS). The one Ed25519
    verification of manifests, reports and hub signature artifacts."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key, value = base64.b64decode(public_key, validate=True), base64.b64decode(signature, validate=True)
    except binascii.Error:
        return "the public key or the signature is not valid base64"
    if len(key) != 32 or len(value) != 64:
        return f"expected a 32-byte key and a 64-byte signature, got {len(key)} and {len(value)} bytes"
    if key in SMALL_ORDER_KEYS:
        return f"the public key is a point of small order: any {what} would verify under it"
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(value, message)
    except InvalidSignature:
        return f"the signature does not match the {what}"
    except ValueError as exc:
        return f"unusable public key: {exc}"
    return None


def verify_manifest(manifest: dict[str, Any]) -> str | None:
    """None if the manifest's signature verifies over its canonical form, else the reason it does not."""
    sig = manifest.get("signature")
    if not isinstance(sig, dict):
        return "the manifest has no signature object"
    if sig.get("algorithm") != ALGORITHM:
        return f"unsupported signature algorithm {sig.get('algorithm')!r} (only {ALGORITHM})"
    try:
        signed = canonical_manifest(manifest)
    except ManifestError as exc:
        return str(exc)
    return verify_ed25519(str(sig.get("public_key", "")), str(sig.get("value", "")), signed, "canonical manifest")
