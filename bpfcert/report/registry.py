"""The registry of submitted certifications, `reports/<spec-version>/<vendor>-<product>/`: each holds report.json
(spec/report.schema.json), its signature report.json.sig (spec/report-signature.schema.json), junit.xml,
product.yaml (vendor, product, version, contact, claimed profiles) and a README.md on reproducing the run;
`reports/trusted-keys` lists the signers the registry accepts. A submission is valid when every file is there, the
report is valid against the schema, its signature verifies by a trusted signer, its certificate has not expired,
and it states "Certified" only if it was made in certified mode."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from bpfcert import spec
from bpfcert.errors import BpfcertError
from bpfcert.report import sign

FILES = ("report.json", "report.json.sig", "junit.xml", "product.yaml", "README.md")
TRUSTED_KEYS = "trusted-keys"
VERSION_DIR = re.compile(r"[0-9]+\.[0-9]+")


def slug(text: str) -> str:
    """A vendor's or product's name as it appears in a submission's directory name: "Acme Corp" -> "acme-corp"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def submissions(root: str | Path) -> list[Path]:
    """The submission directories under a registry root, in name order."""
    return sorted(p for p in Path(root).glob("*/*") if p.is_dir() and VERSION_DIR.fullmatch(p.parent.name))


def _verdicts(value: Any, key: str = "") -> Iterator[str]:
    """Every string under a "verdict" key of a report document, outside its result rows."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k != "results":
                yield from _verdicts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _verdicts(v, key)
    elif key == "verdict" and isinstance(value, str):
        yield value


@dataclass
class Submission:
    path: Path
    doc: dict[str, Any] = field(default_factory=dict)
    product: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    signer: str = ""

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"


def validate(path: str | Path, trusted: dict[str, str], today: date) -> Submission:
    """The submission at `path` with every problem found (none: it is valid)."""
    from bpfcert import json_schema
    from bpfcert.pack import read_regular_file
    from bpfcert.product import MAX_BYTES, safe_yaml

    sub = Submission(Path(path))
    missing = [f for f in FILES if not (sub.path / f).is_file()]
    if missing:
        sub.problems.append(f"missing {', '.join(missing)}")
    try:
        doc = sign.read_json(sub.path / "report.json", "a report") if "report.json" not in missing else None
        sidecar = sign.read_json(sub.path / "report.json.sig", "a signature") if "report.json.sig" not in missing \
            else None
        product = safe_yaml(read_regular_file(sub.path / "product.yaml", MAX_BYTES), "product.yaml") \
            if "product.yaml" not in missing else {}  # read as certify --product reads it (bounded)
    except (BpfcertError, OSError) as exc:
        sub.problems.append(str(exc).splitlines()[0])
        return sub
    if doc is None:
        return sub
    error = next(json_schema.validator(spec.schema("report"))(doc), None)
    if error is not None:
        sub.problems.append(f"report.json is not valid against report.schema.json: {error.message[:200]}")
    sub.doc = doc if isinstance(doc, dict) else {}
    sub.product = product if isinstance(product, dict) else {}
    if sub.doc.get("specVersion") != sub.path.parent.name:
        sub.problems.append(f"a spec {sub.doc.get('specVersion')!r} report under {sub.path.parent.name}/")
    expected = f"{slug(str(sub.product.get('vendor', '')))}-{slug(str(sub.product.get('product', '')))}"
    if sub.path.name != expected:
        sub.problems.append(f"product.yaml names {expected!r} (vendor-product), not {sub.path.name!r}")
    if sidecar is not None:
        try:
            verification = sign.verify(doc, sign.check_sidecar(sidecar, "report.json.sig"), trusted=trusted,
                                       today=today)
        except BpfcertError as exc:
            sub.problems.append(str(exc))
        else:
            sub.problems += verification.problems
            sub.signer = verification.signer
    cert = sub.doc.get("certificate")
    if not isinstance(cert, dict):
        sub.problems.append("the report carries no certificate (sign it with bpfcert certify --sign)")
    elif "Certified" in _verdicts(sub.doc) and cert.get("certifiedMode") is not True:
        sub.problems.append('it states "Certified" but was not made in certified mode')
    return sub
