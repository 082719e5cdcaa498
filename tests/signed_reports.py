"""Signed report documents and registry submissions that the integrity, registry and site tests build in tmp."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from bpfcert.report import sign
from bpfcert.report.json_doc import document
from bpfcert.results import Report, Result, Status
from bpfcert.signing import generate_key


def key_pair() -> tuple[bytes, str]:
    """A fresh (PEM private key, base64 public key)."""
    return generate_key()


def run_doc(*results: Result, source: str = "runtime example") -> dict[str, Any]:
    """The report document of a complete runtime run with these rows."""
    run = {"targets": {"host": {"name": "host"}}, "runners": [], "started": "2026-01-01T00:00:00+00:00"}
    return document(Report(source, list(results), ["runtime-core"], kind="runtime", run=run))


def passing_rows() -> list[Result]:
    return [
        Result.of("RT-INS-001", Status.PASS, "installed", subject="package:xdp-counter", target="host"),
        Result.of("PKG-MAN-001", Status.PASS, "parses", subject="package:xdp-counter@1.0.0"),
    ]


def submit(registry: Path, doc: dict[str, Any], key: bytes, *, vendor: str = "acme", product: str = "loader",
           issued: date | None = None, certified_mode: bool = False, spec_version: str = "1.0") -> Path:
    """A registry submission of `doc`: certificate added (issued `issued`, default today), signed with `key`, and
    the other files a submission holds. Returns its directory."""
    from bpfcert.report.registry import slug

    directory = registry / spec_version / f"{slug(vendor)}-{slug(product)}"
    directory.mkdir(parents=True)
    doc = dict(doc)
    doc["certificate"] = sign.certificate(doc, certified_mode=certified_mode, issued=issued or date.today())
    (directory / "report.json").write_text(json.dumps(doc, indent=2))
    (directory / "report.json.sig").write_text(json.dumps(sign.sign(doc, key)))
    (directory / "junit.xml").write_text("<testsuites/>")
    (directory / "product.yaml").write_text(json.dumps({"vendor": vendor, "product": product, "version": "1.2.3"}))
    (directory / "README.md").write_text("how to reproduce\n")
    return directory
