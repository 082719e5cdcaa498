"""Report integrity: an Ed25519 signature over the report document's canonical JSON (RFC 8785, JCS) in a sidecar
file beside it (`report.json.sig`, spec/report-signature.schema.json), trusted-keys files naming the signers a
verifier accepts, and the certificate (spec version, issue and expiry dates, certified mode) a signed certification
carries in its report (spec/report.schema.json `certificate`).

The signature covers the whole document, certificate included. Re-indenting or re-ordering keys leaves the
canonical bytes as they were (not an edit); any changed value, key or row changes them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.signing import verify_ed25519

FORMAT = "bpfcert-report-signature/1"
ALGORITHM = "ed25519"
SIDECAR_SUFFIX = ".sig"  # report.json -> report.json.sig
MAX_BYTES = 64 << 20  # a report or sidecar larger than this is refused unread
VALID_DAYS = 365  # how long a certificate is valid unless said otherwise


def read_json(path: str | Path, what: str) -> Any:
    """The JSON value of the regular file at `path`; BpfcertError naming `what` it should have been."""
    from bpfcert.pack import read_regular_file

    data = read_regular_file(path, MAX_BYTES)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise BpfcertError(f"{path} is not JSON (expected {what})") from None


def canonical(doc: Any) -> bytes:
    """The RFC 8785 canonical JSON of `doc` (rfc8785, a well-kept implementation: number formatting and key order by
    UTF-16 code units are easy to get subtly wrong); BpfcertError for what JCS cannot represent."""
    import rfc8785

    try:
        return rfc8785.dumps(doc)
    except (rfc8785.CanonicalizationError, TypeError, ValueError, RecursionError) as exc:
        raise BpfcertError(f"the report has no canonical JSON form: {exc}") from None


def digest(doc: Any) -> str:
    """ "sha256:<hex>" of the canonical JSON: what a signature names, and what changes on any edit."""
    return "sha256:" + hashlib.sha256(canonical(doc)).hexdigest()


def certificate(doc: dict[str, Any], *, certified_mode: bool, issued: date, days: int = VALID_DAYS) -> dict[str, Any]:
    """The certificate of a certification signed on `issued`: the standard's version the report was judged
    against, and its validity (`days` long)."""
    return {
        "specVersion": doc.get("specVersion"),
        "issued": issued.isoformat(),
        "expires": (issued + timedelta(days=days)).isoformat(),
        "certifiedMode": certified_mode,
    }


def sign(doc: dict[str, Any], private_key_pem: bytes | str) -> dict[str, Any]:
    """The signature sidecar of `doc` made with a PEM Ed25519 private key (bpfcert.signing's key handling)."""
    from bpfcert.signing import load_private_key, public_key_b64

    key = load_private_key(private_key_pem)
    return {
        "format": FORMAT,
        "algorithm": ALGORITHM,
        "publicKey": public_key_b64(key),
        "digest": digest(doc),
        "signature": base64.b64encode(key.sign(canonical(doc))).decode("ascii"),
    }


def read_trusted_keys(path: str | Path) -> dict[str, str]:
    """A trusted-keys file: base64 public key -> signer name. One key a line, "<base64 raw Ed25519 key> <name>",
    blank lines and "#" comments ignored; BpfcertError naming the first bad line."""
    from bpfcert.pack import read_regular_file

    try:
        text = read_regular_file(path, MAX_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise BpfcertError(f"trusted keys {path} is not UTF-8 text") from None
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split(None, 1)
        if not fields or fields[0].startswith("#"):
            continue
        if len(_public_key(fields[0])) != 32:
            raise BpfcertError(f"trusted keys {path}, line {number}: not a base64 Ed25519 public key")
        keys[fields[0]] = fields[1].strip() if len(fields) > 1 else fields[0]
    return keys


def _public_key(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return b""


@dataclass(frozen=True)
class Verification:
    """What `verify` found: `problems` (empty: the report is intact, by a trusted signer, and not expired), who
    signed it (the trusted-keys name, else the key), and the certificate the report carries, if any."""

    problems: list[str]
    signer: str
    certificate: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        return not self.problems


def check_sidecar(sidecar: Any, where: str) -> dict[str, Any]:
    """The sidecar if it has the shape spec/report-signature.schema.json gives it; BpfcertError otherwise."""
    from bpfcert import json_schema

    error = next(json_schema.validator(spec.schema("report-signature"))(sidecar), None)
    if error is not None:
        raise BpfcertError(f"{where} is not a bpfcert report signature: {error.message[:200]}")
    assert isinstance(sidecar, dict)  # the schema says so
    return sidecar


def verify(doc: Any, sidecar: dict[str, Any], *, trusted: dict[str, str] | None, today: date) -> Verification:
    """Whether `doc` is what `sidecar` (checked by check_sidecar) signed, by a key in `trusted` (when given), with
    a certificate not expired on `today`. A report that has no canonical form is a problem, not an error."""
    problems: list[str] = []
    key = str(sidecar["publicKey"])
    try:
        signed = canonical(doc)
    except BpfcertError as exc:
        signed = b""
        problems.append(str(exc))
    found = "sha256:" + hashlib.sha256(signed).hexdigest()
    if signed and found != sidecar["digest"]:
        problems.append(f"the report was changed after it was signed (its digest is {found}, the signature's "
                        f"{sidecar['digest']})")
    elif signed:  # a digest re-signed without the key does not match the report
        problem = verify_ed25519(key, str(sidecar["signature"]), signed, "report")
        problems += [problem] if problem else []
    if trusted is not None and key not in trusted:
        problems.append(f"the signer {key} is not a trusted key")
    cert = doc.get("certificate") if isinstance(doc, dict) else None
    if cert is not None:
        problems += _certificate_problems(cert, doc.get("specVersion"), today)
    signer = trusted.get(key, key) if trusted is not None else key
    return Verification(problems, signer, cert if isinstance(cert, dict) else None)


def _certificate_problems(cert: Any, spec_version: Any, today: date) -> list[str]:
    if not isinstance(cert, dict):
        return ["the certificate is not an object"]
    try:
        issued, expires = date.fromisoformat(str(cert.get("issued"))), date.fromisoformat(str(cert.get("expires")))
    except ValueError:
        return ["the certificate's issued and expires are not dates (YYYY-MM-DD)"]
    problems = []
    if cert.get("specVersion") != spec_version:
        problems.append(f"the certificate is for spec {cert.get('specVersion')!r}, the report for {spec_version!r}")
    if issued > expires:
        problems.append(f"the certificate expires ({expires}) before it was issued ({issued})")
    if expires < today:
        problems.append(f"the certificate expired on {expires}")
    return problems
